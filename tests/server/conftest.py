"""Fixtures of the service tests: a service per module, on SQLite and PostgreSQL.

The PostgreSQL cases use the catalog tests' server fixture, so they skip (or,
with REFSTORE_REQUIRE_POSTGRES=1, fail) the same way when it is unreachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.catalog import conftest as catalog_fixtures
from tests.service import RunningService, running_service

postgres_server = catalog_fixtures.postgres_server
postgres_url = catalog_fixtures.postgres_url


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def service_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A new, empty catalog database for one test module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'catalog.db'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    schema = f"refstore_service_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def service(
    service_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    blob_dir: Path = tmp_path_factory.mktemp("service-blobs")
    with running_service(service_db, blob_dir) as running:
        yield running
