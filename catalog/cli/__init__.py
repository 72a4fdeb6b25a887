"""The `catalog` command line: a thin layer over catalog.services."""
