"""Services: functions of the rows. Each takes a `session` keyword-only and never commits:
the caller (a command, a request, an operation) owns the transaction. Services touch no
files: what needs blobs is an operation.
"""
