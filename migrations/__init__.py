"""Alembic migrations, shipped inside the package as `catalog.migrations`."""
