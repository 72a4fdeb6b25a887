"""The database: the engine and its sessions (`engine`), the tables (`models`), the
schema's revision through Alembic (`schema`). No files.
"""
