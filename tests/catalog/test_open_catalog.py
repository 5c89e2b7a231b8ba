"""Choosing a catalog from the settings, and the errors a catalog raises."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from refstore.blobs import BlobStore
from refstore.catalog import engine, open_catalog
from refstore.catalog.http import HttpCatalog
from refstore.catalog.sql import SqlCatalog
from refstore.config import Settings
from refstore.errors import CatalogError, ConfigError
from tests.catalog.support import NAME, PROJECT, new_version


def test_default_is_sqlite_under_the_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")

    catalog = open_catalog(settings)
    catalog.close()

    assert isinstance(catalog, SqlCatalog)
    assert (tmp_path / "home" / "catalog.db").is_file()
    assert catalog.blobs.root == tmp_path / "home" / "blobs"


def test_a_plain_path_is_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "cat.db"

    with closing(open_catalog(Settings(home=tmp_path, url=str(path)))) as catalog:
        catalog.log_version(new_version("a"))

    url = f"sqlite:///{path}"
    with closing(open_catalog(Settings(home=tmp_path, url=url))) as catalog:
        assert catalog.get_version(PROJECT, NAME, "latest").version == 0


@pytest.mark.postgres
def test_postgresql_urls_open_the_sql_catalog(
    postgres_url: str, tmp_path: Path
) -> None:
    with closing(open_catalog(Settings(home=tmp_path, url=postgres_url))) as catalog:
        assert catalog.list_projects() == []


def test_http_urls_open_the_service_client_without_contacting_it(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path, url="https://refstore.example.com/team/")

    with closing(open_catalog(settings)) as catalog:
        assert isinstance(catalog, HttpCatalog)
        assert catalog.transport.url == "https://refstore.example.com/team"
        assert catalog.blobs.root == tmp_path / "blobs"


@pytest.mark.parametrize(
    "url", ["mysql://me:secret@db/refstore", "s3://bucket/catalog.db"]
)
def test_an_unknown_scheme_is_a_config_error(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="REFSTORE_URL") as caught:
        open_catalog(Settings(home=tmp_path, url=url))

    assert "secret" not in str(caught.value)


def test_an_unreachable_server_names_the_url_not_the_password(
    tmp_path: Path,
) -> None:
    url = "postgresql://me:secret@127.0.0.1:1/refstore?connect_timeout=2"

    with pytest.raises(CatalogError, match="cannot reach the catalog") as caught:
        SqlCatalog(url, BlobStore(tmp_path))

    assert "me:***@127.0.0.1:1/refstore" in str(caught.value)
    assert "secret" not in str(caught.value)
    assert isinstance(caught.value.__cause__, OperationalError)


def test_a_catalog_locked_too_long_is_a_catalog_error(
    sqlite_url: str, blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "BUSY_TIMEOUT", 0.1)
    with SqlCatalog(sqlite_url, blobs) as catalog:
        database = sqlite_url.removeprefix("sqlite:///")
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(CatalogError, match="stayed locked"):
                catalog.log_version(new_version("a"))
        finally:
            holder.close()
        assert catalog.log_version(new_version("a"))[1]


def test_a_catalog_folder_that_cannot_exist(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")

    with pytest.raises(CatalogError, match="cannot create"):
        SqlCatalog(str(tmp_path / "file" / "catalog.db"), BlobStore(tmp_path))
