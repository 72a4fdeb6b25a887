"""Operations: each takes the open `Catalog` and owns its transactions and its files.

Blobs are written to the content store first, then the rows that use them in one write
transaction, so a failure or a kill leaves at most unreferenced blobs (`catalog gc`
removes them); files go only after the rows that named them are gone for good. The
command or request that calls an operation does nothing around it but show the result.
"""
