"""Fixtures of the catalog tests: one SQLite file or one PostgreSQL schema each.

PostgreSQL comes from REFSTORE_TEST_POSTGRES_URL (default: the local server's
``test`` database). When it is unreachable the PostgreSQL cases are skipped,
unless REFSTORE_REQUIRE_POSTGRES=1 (CI), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from refstore.blobs import BlobStore
from refstore.catalog.sql import SqlCatalog
from tests.catalog.clock import ManualClock

POSTGRES_URL = os.environ.get(
    "REFSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _libpq_url(url: str) -> str:
    """The URL psycopg understands (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        psycopg.connect(_libpq_url(POSTGRES_URL), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}"
        if os.environ.get("REFSTORE_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A catalog URL whose search_path is a new, empty schema."""
    schema = f"refstore_test_{uuid.uuid4().hex[:12]}"
    admin = _libpq_url(postgres_server)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = make_url(postgres_server).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    # A folder that does not exist yet: the catalog creates it.
    return f"sqlite:///{tmp_path / 'home' / 'catalog.db'}"


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def catalog_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


@pytest.fixture
def catalog(catalog_url: str, blobs: BlobStore) -> Iterator[SqlCatalog]:
    with SqlCatalog(catalog_url, blobs) as opened:
        yield opened


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def timed_catalog(
    catalog_url: str, blobs: BlobStore, clock: ManualClock
) -> Iterator[SqlCatalog]:
    """A catalog whose clock the test moves (for TTLs and timestamps)."""
    with SqlCatalog(catalog_url, blobs, clock) as opened:
        yield opened
