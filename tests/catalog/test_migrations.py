"""The catalog's schema: Alembic revisions applied when a catalog opens."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import update
from sqlalchemy.engine import make_url

from refstore.blobs import BlobStore
from refstore.catalog import migrations
from refstore.catalog.engine import open_engine
from refstore.catalog.sql import SqlCatalog, current_revision, upgrade
from refstore.catalog.tables import metadata
from refstore.errors import CatalogError


def test_head_matches_the_revision_files() -> None:
    assert migrations.head_revision() == migrations.HEAD


def test_a_fresh_database_reaches_head(catalog_url: str) -> None:
    assert current_revision(catalog_url) is None

    assert upgrade(catalog_url) == migrations.HEAD

    assert current_revision(catalog_url) == migrations.HEAD


def test_opening_a_current_catalog_migrates_nothing(
    catalog_url: str, blobs: BlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    SqlCatalog(catalog_url, blobs).close()
    caplog.set_level(logging.INFO)

    SqlCatalog(catalog_url, blobs).close()
    assert upgrade(catalog_url) == migrations.HEAD

    assert not [r for r in caplog.records if r.name.startswith(("alembic", "refstore"))]


def test_the_tables_match_the_newest_revision(catalog: SqlCatalog) -> None:
    engine, _ = open_engine(catalog.url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()

    unexpected = [
        change
        for change in diff
        if not (
            change[0] == "remove_table" and change[1].name == "refstore_alembic_version"
        )
    ]
    assert unexpected == []


def test_a_schema_newer_than_refstore_is_refused(
    catalog: SqlCatalog, catalog_url: str, blobs: BlobStore
) -> None:
    engine, _ = open_engine(catalog_url)
    try:
        with engine.begin() as conn:
            conn.execute(update(migrations._version_table).values(version_num="9999"))
    finally:
        engine.dispose()

    with pytest.raises(CatalogError, match=r"revision 9999.*Upgrade refstore"):
        SqlCatalog(catalog_url, blobs)


def test_sqlite_catalogs_use_wal(sqlite_url: str, blobs: BlobStore) -> None:
    SqlCatalog(sqlite_url, blobs).close()

    database = make_url(sqlite_url).database
    assert database is not None
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    assert Path(database + ".lock").exists()
