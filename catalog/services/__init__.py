"""Service functions: they take a session keyword-only and never commit; the command or
request that started the work commits once."""
