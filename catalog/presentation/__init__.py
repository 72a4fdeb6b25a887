"""How results are shown to people, for the CLI and the web view alike: report values as
table cells, JSON and CSV (`reportformat`), and the reports' charts as SVG
(`reportcharts`). Nothing here prompts, serves or touches the database."""
