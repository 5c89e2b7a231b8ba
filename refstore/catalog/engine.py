"""Engines for the SQL catalog: URLs, connection settings, error translation.

SQLite needs two things SQLAlchemy's defaults do not give it to serve
several processes: a busy timeout, so that a writer waits for another's
transaction instead of failing, and write transactions that start with
``BEGIN IMMEDIATE``, so that the wait happens before the transaction reads
what its writes depend on. PostgreSQL is reached with psycopg 3.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from refstore.errors import CatalogError, ConfigError, MissingDependencyError

__all__ = ["BUSY_TIMEOUT", "catalog_error", "open_engine", "redacted", "translating"]

# How long a SQLite writer waits for another process's write transaction.
BUSY_TIMEOUT = 30.0


def open_engine(url: str) -> tuple[Engine, Path | None]:
    """The engine for ``url`` and, for a SQLite file, its migration lock file."""
    parsed = _parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend in ("postgresql", "postgres"):
        return _postgres_engine(parsed), None
    raise ConfigError(
        f"{redacted(url)} is not a catalog URL refstore can open: use a path, "
        "sqlite:////absolute/path/catalog.db or postgresql://user@host/database"
    )


def _parse_url(url: str) -> URL:
    if "://" not in url:
        return URL.create("sqlite", database=str(Path(url).expanduser().absolute()))
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"{redacted(url)} is not a valid catalog URL: {exc}; write a path, "
            "sqlite:////absolute/path/catalog.db or postgresql://user@host/database"
        ) from exc


def _sqlite_engine(url: URL) -> tuple[Engine, Path | None]:
    lock_path = None
    database = url.database or ""
    if database not in ("", ":memory:") and not database.startswith("file:"):
        path = Path(database)
        _make_folder(path.parent)
        lock_path = path.with_name(path.name + ".lock")
    engine = sqlalchemy.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT})
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine, lock_path


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatalogError(
            f"cannot create the catalog's folder {folder}: {exc.strerror}; choose "
            "another REFSTORE_HOME or REFSTORE_URL"
        ) from exc


def _on_sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    # pysqlite's own BEGIN is DEFERRED and comes only before the first write:
    # two writers could both read max(version), and the second would then fail
    # at once with "database is locked" (its snapshot is stale, so waiting
    # cannot help). With pysqlite's handling off, _on_sqlite_begin emits BEGIN.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA foreign_keys=ON").close()


def _on_sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock (waiting up to the busy timeout) before
    # the transaction reads anything it will base its writes on.
    if conn.get_execution_options().get("refstore_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _postgres_engine(url: URL) -> Engine:
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if (
        url.drivername == "postgresql+psycopg"
        and importlib.util.find_spec("psycopg") is None
    ):
        raise MissingDependencyError("postgres", "a PostgreSQL catalog")
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
    return sqlalchemy.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


@contextlib.contextmanager
def translating(url: str) -> Iterator[None]:
    """Turn the database driver's errors into CatalogError naming ``url``."""
    try:
        yield
    except DBAPIError as exc:
        raise catalog_error(url, exc) from exc


def catalog_error(url: str, exc: DBAPIError) -> CatalogError:
    """The CatalogError for a driver error: what failed, where, what to do."""
    where = redacted(url)
    reason = (str(exc.orig).strip().splitlines() or ["unknown error"])[0]
    if not isinstance(exc, OperationalError):
        return CatalogError(f"the catalog {where} failed: {reason}")
    if "locked" in reason or "busy" in reason:
        return CatalogError(
            f"the catalog {where} stayed locked by another refstore process for "
            f"more than {BUSY_TIMEOUT:.0f} s; retry, and look for a process "
            "stuck while writing to it"
        )
    if where.startswith("postgres"):
        return CatalogError(
            f"cannot reach the catalog {where}: {reason}; check that the "
            "PostgreSQL server is running and that REFSTORE_URL names the right "
            "host, port, user and database"
        )
    return CatalogError(
        f"cannot use the catalog {where}: {reason}; check that its folder exists "
        "and is writable, or point REFSTORE_URL elsewhere"
    )


def redacted(url: str) -> str:
    """``url`` fit for messages and logs: the password shown as ***."""
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://", 1)[0] + "://..."
