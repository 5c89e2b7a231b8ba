"""The catalog: projects, artifacts, versions, aliases, runs, lineage and TTLs.

:func:`open_catalog` picks the implementation from the settings'
``catalog_url`` (``REFSTORE_URL``): a path, ``sqlite:///...`` or
``postgresql://...`` opens the SQL catalog; ``http(s)://...`` names a
refstore service, spoken to by :class:`refstore.catalog.http.HttpCatalog`.
"""

from __future__ import annotations

import urllib.parse

from refstore.blobs import BlobStore
from refstore.catalog.base import (
    ArtifactRecord,
    Catalog,
    Clock,
    LoadedFields,
    NewRun,
    NewVersion,
    ProjectDeletion,
    ProjectRecord,
    RunRecord,
    SweepRecord,
    VersionEdit,
    VersionRecord,
)
from refstore.config import Settings
from refstore.errors import ConfigError

__all__ = [
    "ArtifactRecord",
    "Catalog",
    "Clock",
    "LoadedFields",
    "NewRun",
    "NewVersion",
    "ProjectDeletion",
    "ProjectRecord",
    "RunRecord",
    "SweepRecord",
    "VersionEdit",
    "VersionRecord",
    "open_catalog",
]

_SQL_SCHEMES = frozenset({"sqlite", "postgresql", "postgres"})


def open_catalog(settings: Settings, clock: Clock | None = None) -> Catalog:
    """The catalog ``settings.catalog_url`` names, with the blob store beside it.

    ``clock`` (UTC-aware times) decides what has expired, and, with
    ``settings.run_timeout``, which runs have crashed; the system clock by
    default. A service keeps its own clock and timeout, so neither applies
    to it.
    """
    url = settings.catalog_url
    scheme = _scheme(url)
    if scheme in ("http", "https"):
        from refstore.catalog.http import HttpCatalog

        return HttpCatalog.from_settings(settings)
    if scheme and scheme not in _SQL_SCHEMES:
        raise ConfigError(
            f"REFSTORE_URL={_redacted(url)} names no catalog refstore knows: use a "
            "path, sqlite:////absolute/path/catalog.db, "
            "postgresql://user@host/database or https://refstore-server"
        )
    # SQLAlchemy and Alembic load only when a SQL catalog is opened.
    from refstore.catalog.sql import SqlCatalog

    blobs = BlobStore(settings.blob_dir)
    return SqlCatalog(url, blobs, clock, run_timeout=settings.run_timeout)


def _scheme(url: str) -> str:
    """The scheme without its driver (``postgresql+psycopg`` is ``postgresql``)."""
    if "://" not in url:
        return ""
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def _redacted(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. an unclosed IPv6 bracket or a bad port
        return url.split("://", 1)[0] + "://..."
    if password is None:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
