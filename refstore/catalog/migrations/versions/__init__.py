"""Alembic revisions of the SQL catalog, oldest first; never edit a released one."""
