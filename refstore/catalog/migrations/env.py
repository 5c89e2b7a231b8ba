"""Alembic's entry point for the SQL catalog's migrations.

refstore runs migrations from code (:func:`refstore.catalog.migrations.upgrade`),
which hands over a connection that is already inside a transaction and holds
the migration lock; this script only binds Alembic to it. There is no
``alembic.ini`` and no URL here on purpose: running ``alembic`` by hand would
skip the lock that keeps concurrent upgrades apart.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from refstore.catalog.migrations import VERSION_TABLE
from refstore.errors import CatalogError


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise CatalogError(
            "refstore's migrations run through refstore itself; use "
            "`refstore db upgrade` or refstore.catalog.sql.upgrade(url)"
        )
    context.configure(
        connection=connection,
        version_table=VERSION_TABLE,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        # The SQLite engine emits its own BEGIN, so DDL there is transactional too.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_run()
