"""Revision 0003 (identity and access for the service) on a catalog with data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection

from refstore.blobs import BlobStore
from refstore.catalog import migrations
from refstore.catalog.sql import SqlCatalog, current_revision
from tests.catalog.migrating import open_connection
from tests.catalog.support import NAME, PROJECT, new_version

IDENTITY = {"entities", "memberships", "tokens", "project_blobs", "request_keys"}


@pytest.fixture
def connection(catalog_url: str) -> Iterator[Connection]:
    with open_connection(catalog_url) as conn:
        yield conn


def downgrade(conn: Connection, revision: str) -> None:
    with conn.begin():
        command.downgrade(migrations._config(conn), revision)


def tables(conn: Connection) -> set[str]:
    with conn.begin():
        return set(sa.inspect(conn).get_table_names())


def test_0003_down_and_up_again_keeps_the_catalog(
    connection: Connection, catalog_url: str, blobs: BlobStore
) -> None:
    with SqlCatalog(catalog_url, blobs) as catalog:
        catalog.log_version(new_version("before"))

    downgrade(connection, "0002")
    assert current_revision(catalog_url) == "0002"
    assert IDENTITY.isdisjoint(tables(connection))

    with SqlCatalog(catalog_url, blobs) as catalog:
        assert current_revision(catalog_url) == migrations.HEAD
        assert [r.version for r in catalog.list_versions(PROJECT, NAME)] == [0]
    assert tables(connection) >= IDENTITY
    with connection.begin():
        visibility = connection.execute(sa.text("SELECT visibility FROM projects"))
        assert visibility.scalar_one() == "private"
