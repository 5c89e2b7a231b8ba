"""Schema migrations of the SQL catalog, run with Alembic from code.

A catalog brings its schema to the newest revision when it is opened, so
several processes may open a brand-new catalog at the same moment. Each
upgrade therefore runs under a lock that spans reading the current revision
and applying the missing ones: a file lock beside a SQLite database, an
advisory lock on PostgreSQL. Whoever comes second finds the work done.

Opening a catalog whose schema is current must stay cheap (every command
line call does it), so Alembic is imported only when there is work for it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, String, Table, inspect, select, text
from sqlalchemy.engine import Connection, Engine

from refstore.errors import CatalogError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "VERSION_TABLE", "current_revision", "head_revision", "upgrade"]

log = logging.getLogger(__name__)

# The newest revision in versions/; a test checks it against Alembic's view.
HEAD = "0005"
# Not Alembic's default name, so that a PostgreSQL database shared with
# another Alembic-managed application keeps the two histories apart.
VERSION_TABLE = "refstore_alembic_version"
_HERE = Path(__file__).parent
_PG_LOCK_KEY = int.from_bytes(b"refstore", "big")  # any bigint; this one reads well
# Alembic's layout of its version table, stable across Alembic releases.
_version_table = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32)))


def head_revision() -> str:
    """The newest revision according to Alembic's reading of versions/."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise CatalogError(f"no migrations found in {_HERE}; reinstall refstore")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None for an empty database."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(select(_version_table.c.version_num)).scalar()


def upgrade(engine: Engine, lock_path: Path | None = None) -> str:
    """Bring the schema to the newest revision; return that revision.

    ``lock_path`` is the lock file for SQLite databases (None for PostgreSQL,
    which locks inside the database, or for in-memory SQLite).
    """
    with engine.connect() as connection:
        current = current_revision(connection)
        ready = current == HEAD and _journal_ready(connection)
    if ready:
        return HEAD
    _check_known(current)
    with _file_lock(lock_path), engine.connect() as connection:
        _use_wal(connection)
        connection.execution_options(refstore_write=True)
        with connection.begin():
            _lock_database(connection)
            _run_alembic(connection)
    log.info("catalog schema is at revision %s (was %s)", HEAD, current)
    return HEAD


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    # Config values go through ConfigParser interpolation, which eats '%'.
    config.set_main_option("script_location", str(_HERE).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _run_alembic(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_config(connection), "head")


def _check_known(current: str | None) -> None:
    if current is None:
        return
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        ScriptDirectory.from_config(_config()).get_revision(current)
    except CommandError as exc:
        raise CatalogError(
            f"the catalog's schema is at revision {current}, which this refstore "
            f"does not know (its newest is {HEAD}); a newer refstore upgraded it. "
            "Upgrade refstore to use this catalog"
        ) from exc


def _journal_ready(connection: Connection) -> bool:
    """True unless a SQLite file database still has to switch to WAL."""
    if connection.dialect.name != "sqlite" or _in_memory(connection):
        return True
    mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    return str(mode).lower() == "wal"


def _use_wal(connection: Connection) -> None:
    """Switch a SQLite file to WAL so that readers never wait for a writer.

    The mode is stored in the file, so this runs once per database, under the
    migration lock: two connections switching at once could fail with
    SQLITE_BUSY instead of waiting. It must run outside a transaction, hence
    the driver connection.
    """
    if connection.dialect.name != "sqlite" or _in_memory(connection):
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA journal_mode=WAL").close()


def _in_memory(connection: Connection) -> bool:
    database = connection.engine.url.database
    return not database or database == ":memory:"


def _lock_database(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Released when the migration transaction ends.
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
        )


@contextlib.contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with path.open("a+b") as handle:
        _lock_file(handle.fileno())
        try:
            yield
        finally:
            _unlock_file(handle.fileno())


if sys.platform == "win32":
    import msvcrt

    def _lock_file(fd: int) -> None:
        # LK_LOCK gives up after about ten seconds; a migration may take longer.
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
            except OSError:
                continue
            return

    def _unlock_file(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
