"""The OCI and Docker data model: references, digests, image configs, platforms, what a
layer tar's entries may be, and the squash merge of layer trees.

Pure: no SQLAlchemy, no Typer, no files of its own (only the streams handed in).
"""
