"""Moving a test catalog between schema revisions, as the migration tests do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from alembic import command
from sqlalchemy.engine import Connection

from refstore.catalog import migrations
from refstore.catalog.engine import open_engine

__all__ = ["migrate", "open_connection"]


@contextlib.contextmanager
def open_connection(url: str) -> Iterator[Connection]:
    """A connection to the catalog at ``url`` that may write (and migrate)."""
    engine, _ = open_engine(url)
    try:
        with engine.connect() as conn:
            conn.execution_options(refstore_write=True)
            yield conn
    finally:
        engine.dispose()


def migrate(conn: Connection, revision: str, *, down: bool = False) -> None:
    """Upgrade (or, ``down``, downgrade) the catalog to ``revision``."""
    with conn.begin():
        config = migrations._config(conn)
        (command.downgrade if down else command.upgrade)(config, revision)
