"""Revision 0002 (runs, lineage, sweeps, tags, TTLs) on a catalog with data."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from refstore.blobs import BlobStore
from refstore.catalog import migrations
from refstore.catalog.sql import SqlCatalog, current_revision
from refstore.catalog.tables import UtcDateTime
from tests.catalog.migrating import migrate, open_connection
from tests.catalog.support import NAME, PROJECT, new_version, sha

WHEN = datetime.datetime(2029, 6, 1, 12, tzinfo=datetime.UTC)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# The 0001 tables, as far as the rows below need them.
_projects = sa.table(
    "projects",
    sa.column("id", sa.Integer),
    sa.column("entity", sa.String),
    sa.column("name", sa.String),
    sa.column("created_at", UtcDateTime()),
)
_artifacts = sa.table(
    "artifacts",
    sa.column("id", sa.Integer),
    sa.column("project_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("type", sa.String),
    sa.column("description", sa.Text),
    sa.column("created_at", UtcDateTime()),
)
_versions = sa.table(
    "versions",
    sa.column("id", sa.Integer),
    sa.column("artifact_id", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("digest", sa.String),
    sa.column("manifest_blob", sa.String),
    sa.column("entry_count", sa.BigInteger),
    sa.column("total_size", sa.BigInteger),
    sa.column("description", sa.Text),
    sa.column("metadata", JSON),
    sa.column("created_at", UtcDateTime()),
)
_aliases = sa.table(
    "aliases",
    sa.column("artifact_id", sa.Integer),
    sa.column("alias", sa.String),
    sa.column("version_id", sa.Integer),
    sa.column("updated_at", UtcDateTime()),
)


@pytest.fixture
def connection(catalog_url: str) -> Iterator[Connection]:
    with open_connection(catalog_url) as conn:
        yield conn


def fill_0001(conn: Connection) -> None:
    """One artifact with v0, v1 and v3 (v2 was removed by hand), two aliases."""
    with conn.begin():
        conn.execute(
            sa.insert(_projects).values(
                id=1, entity="acme", name="vision", created_at=WHEN
            )
        )
        conn.execute(
            sa.insert(_artifacts).values(
                id=1,
                project_id=1,
                name=NAME,
                type="dataset",
                description="chairs",
                created_at=WHEN,
            )
        )
        for pk, number in [(1, 0), (2, 1), (3, 3)]:
            conn.execute(
                sa.insert(_versions).values(
                    id=pk,
                    artifact_id=1,
                    version=number,
                    digest=sha(f"v{number}"),
                    manifest_blob=sha(f"blob v{number}"),
                    entry_count=1,
                    total_size=10,
                    description=f"version {number}",
                    metadata={"n": number},
                    created_at=WHEN,
                )
            )
        for alias, version_pk in [("best", 1), ("latest", 3)]:
            conn.execute(
                sa.insert(_aliases).values(
                    artifact_id=1, alias=alias, version_id=version_pk, updated_at=WHEN
                )
            )


def test_upgrading_a_0001_catalog_keeps_its_data(
    connection: Connection, catalog_url: str, blobs: BlobStore
) -> None:
    migrate(connection, "0001")
    fill_0001(connection)

    with SqlCatalog(catalog_url, blobs) as catalog:
        assert current_revision(catalog_url) == migrations.HEAD
        records = catalog.list_versions(PROJECT, NAME)
        assert [(r.version, r.aliases) for r in records] == [
            (0, ("best",)),
            (1, ()),
            (3, ("latest",)),
        ]
        assert [r.metadata for r in records] == [{"n": 0}, {"n": 1}, {"n": 3}]
        assert {(r.ttl, r.expires_at, r.tags) for r in records} == {(None, None, ())}
        assert records[0].created_at == WHEN

        catalog.set_project_ttl(PROJECT, datetime.timedelta(days=1))
        assert catalog.expired_versions() == []
        record, created = catalog.log_version(new_version("new"))
        assert (record.version, created) == (4, True)


def test_0002_downgrades_to_0001_with_the_data(
    connection: Connection, catalog_url: str, blobs: BlobStore
) -> None:
    migrate(connection, "0001")
    fill_0001(connection)
    migrate(connection, "0002")

    migrate(connection, "0001", down=True)

    assert current_revision(catalog_url) == "0001"
    tables = set(sa.inspect(connection).get_table_names())
    assert {"runs", "sweeps", "lineage_edges", "version_tags"}.isdisjoint(tables)
    count = connection.execute(sa.select(sa.func.count()).select_from(_versions))
    assert count.scalar() == 3
