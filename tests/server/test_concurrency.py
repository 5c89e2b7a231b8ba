"""Eight clients, two service processes, one PostgreSQL catalog."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest

from refstore.catalog.http import HttpCatalog
from refstore.config import Settings
from tests.catalog.support import run_workers
from tests.server.support import request
from tests.server.workers import NAME, PROJECT, log_versions
from tests.service import (
    ADMIN_TOKEN,
    free_port,
    spawn_process,
    stop_process,
    wait_healthy,
)

WORKERS = 8
VERSIONS_EACH = 5


@pytest.mark.postgres
def test_clients_of_two_services_take_every_number_once(
    postgres_url: str, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    with contextlib.ExitStack() as stack:
        # Started together: both migrate and create the admin at once.
        processes = [_spawn(postgres_url, tmp_path, port, stack) for port in ports]
        for url, process in zip(urls, processes, strict=True):
            wait_healthy(url, process)
        token = _member_of_acme(urls[0])

        logged = run_workers(
            log_versions, WORKERS, urls, token, tmp_path / "clients", VERSIONS_EACH
        )

        catalog = HttpCatalog.from_settings(
            Settings(home=tmp_path / "reader", url=urls[1], token=token)
        )
        stack.callback(catalog.close)
        records = catalog.list_versions(PROJECT, NAME)

    total = WORKERS * VERSIONS_EACH
    assert [r.version for r in records] == list(range(total))
    assert len({r.digest for r in records}) == total
    assert sorted(v for vs in logged.values() for v in vs) == list(range(total))
    aliases = {alias: r.version for r in records for alias in r.aliases}
    for worker, versions in logged.items():
        assert aliases[f"worker-{worker}"] == max(versions)
    assert aliases["shared"] == aliases["latest"] == total - 1


def _spawn(
    db_url: str, root: Path, port: int, stack: contextlib.ExitStack
) -> subprocess.Popen[bytes]:
    log = root / f"serve-{port}.log"
    process = spawn_process(db_url, root / "blobs", port, log)
    stack.callback(stop_process, process)
    return process


def _member_of_acme(url: str) -> str:
    user = request(url, "POST", "/api/v1/users", token=ADMIN_TOKEN, body={"name": "w"})
    request(url, "POST", "/api/v1/teams", token=ADMIN_TOKEN, body={"name": "acme"})
    request(url, "PUT", "/api/v1/teams/acme/members/w", token=ADMIN_TOKEN, body={})
    token: str = user.json["token"]
    return token
