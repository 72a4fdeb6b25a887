"""Service functions: they take a session keyword-only and never commit (STYLE.md item 4)."""
