"""Revision 0004 (disabled users) on a catalog with users, tokens and data."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from refstore.blobs import BlobStore
from refstore.catalog import migrations
from refstore.catalog.access import Principal, Refusal
from refstore.catalog.served import ServedCatalog
from refstore.catalog.sql import current_revision
from tests.catalog.migrating import migrate, open_connection
from tests.catalog.support import NAME, PROJECT, new_version


@pytest.fixture
def connection(catalog_url: str) -> Iterator[Connection]:
    with open_connection(catalog_url) as conn:
        yield conn


def entity_columns(conn: Connection) -> set[str]:
    with conn.begin():
        return {column["name"] for column in sa.inspect(conn).get_columns("entities")}


def test_users_of_a_0003_catalog_stay_enabled(
    connection: Connection, catalog_url: str, blobs: BlobStore
) -> None:
    migrate(connection, "0003")
    with connection.begin():
        connection.execute(
            sa.text(
                "INSERT INTO entities (name, kind, is_admin, created_at) "
                "VALUES ('olga', 'user', false, CURRENT_TIMESTAMP)"
            )
        )

    with contextlib.closing(ServedCatalog(catalog_url, blobs)) as catalog:
        users = catalog.users()

    assert current_revision(catalog_url) == migrations.HEAD
    assert [(u.name, u.disabled, u.disabled_at) for u in users] == [
        ("olga", False, None)
    ]


def test_0004_down_and_up_again_keeps_the_data_and_the_lockout(
    connection: Connection, catalog_url: str, blobs: BlobStore
) -> None:
    with contextlib.closing(ServedCatalog(catalog_url, blobs)) as catalog:
        catalog.log_version(new_version("before"))
        catalog.create_user("root", is_admin=True)
        _, kept = catalog.create_user("kept")
        _, gone = catalog.create_user("gone")
        catalog.create_team("crew", "gone")
        catalog.disable_user("root", "gone")

    migrate(connection, "0003", down=True)
    assert current_revision(catalog_url) == "0003"
    assert "disabled_at" not in entity_columns(connection)

    with contextlib.closing(ServedCatalog(catalog_url, blobs)) as catalog:
        assert current_revision(catalog_url) == migrations.HEAD
        assert "disabled_at" in entity_columns(connection)
        assert [r.version for r in catalog.list_versions(PROJECT, NAME)] == [0]
        assert [u.disabled for u in catalog.users()] == [False, False, False]
        assert [m.user for m in catalog.team_members("crew")] == ["gone"]
        # 0003 cannot say "disabled": the downgrade deleted the user's tokens.
        assert catalog.tokens_of("gone") == []
        assert isinstance(catalog.principal_for_token(gone), Refusal)
        assert isinstance(catalog.principal_for_token(kept), Principal)
