"""The database: the engine and its sessions (`engine`), the tables (`models`), the
schema's revision through Alembic (`schema`), and the SQL the two backends spell
differently (`sql`). No files.
"""
