"""Go's and Docker's conventions, ported as they behave: filter arguments, path.Match,
Go's time and duration parsing, go-units' human sizes and durations, text/tabwriter,
encoding/json's output.

Pure: no SQLAlchemy, no Typer; it imports nothing of catalog but `catalog.errors`.
"""
