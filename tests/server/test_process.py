"""``refstore serve`` as a process: start, admin token, access log, shutdown, gc."""

from __future__ import annotations

import datetime
import re
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from refstore.catalog import migrations
from refstore.cli import main
from refstore.ttl import INHERIT
from tests.catalog.clock import ManualClock
from tests.server.support import log, request, sha256
from tests.service import (
    ADMIN_TOKEN,
    free_port,
    running_service,
    start_process,
    stop_process,
)

TOKEN_LINE = re.compile(r"^\s+(rs_[A-Za-z0-9_-]{43})$", re.MULTILINE)


def test_the_first_start_prints_an_admin_token_once(tmp_path: Path) -> None:
    port, db = free_port(), f"sqlite:///{tmp_path / 'catalog.db'}"
    logs = tmp_path / "serve.log"

    first = start_process(db, tmp_path / "blobs", port, logs, admin_token=None)
    try:
        tokens = TOKEN_LINE.findall(logs.read_text())
        me = request(
            f"http://127.0.0.1:{port}", "GET", "/api/v1/whoami", token=tokens[0]
        )
    finally:
        assert stop_process(first) == 0
    second = start_process(db, tmp_path / "blobs", port, logs, admin_token=None)
    stop_process(second)

    assert len(tokens) == 1
    assert me.json["user"] == "admin"
    assert me.json["admin"] is True
    assert TOKEN_LINE.findall(logs.read_text()) == tokens


def test_each_request_is_logged_once(tmp_path: Path) -> None:
    port = free_port()
    logs = tmp_path / "serve.log"
    process = start_process(
        f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path / "blobs", port, logs
    )
    try:
        url = f"http://127.0.0.1:{port}"
        request(url, "GET", "/api/v1/whoami", token=ADMIN_TOKEN)
        request(url, "GET", "/api/v1/projects/a/b")
    finally:
        stop_process(process)

    lines = [line for line in logs.read_text().splitlines() if "access:" in line]
    assert re.search(
        r"method=GET path=/api/v1/whoami status=200 ms=[0-9.]+ user=admin$", lines[-2]
    )
    assert re.search(
        r"path=/api/v1/projects/a/b status=404 ms=[0-9.]+ user=-$", lines[-1]
    )


def test_sigterm_finishes_requests_in_flight(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_process(
        f"sqlite:///{tmp_path / 'catalog.db'}",
        tmp_path / "blobs",
        port,
        tmp_path / "serve.log",
    )
    data = bytes(range(256)) * 80_000  # 20 MB: more than the sockets buffer
    digest = sha256(data)
    path = f"/api/v1/projects/admin/p/blobs/{digest}"
    try:
        assert request(url, "PUT", path, token=ADMIN_TOKEN, raw=data).status == 201
        with socket.create_connection(("127.0.0.1", port), timeout=30) as download:
            download.sendall(
                f"GET /api/v1/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
            )
            received = download.recv(65536)
            process.terminate()
            time.sleep(0.5)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5)
            received += _read_all(download)
        code = process.wait(timeout=30)
    finally:
        stop_process(process)

    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    assert received.split(b"\r\n\r\n", 1)[1] == data
    assert code == 0


def _read_all(connection: socket.socket) -> bytes:
    """Read slowly, as a client on a slow network would, until the end."""
    chunks = []
    while chunk := connection.recv(1 << 20):
        chunks.append(chunk)
        time.sleep(0.01)
    return b"".join(chunks)


def test_expired_versions_are_collected_on_a_schedule(tmp_path: Path) -> None:
    clock = ManualClock()
    with running_service(
        f"sqlite:///{tmp_path / 'catalog.db'}",
        tmp_path / "blobs",
        clock=clock,
        gc_interval=datetime.timedelta(seconds=0.2),
        gc_grace=datetime.timedelta(0),
    ) as service:
        catalog = service.catalog
        short = log(
            catalog, "acme/p", "short", "lives a day", ttl=datetime.timedelta(days=1)
        )
        long = log(catalog, "acme/p", "long", "lives on", ttl=INHERIT)
        clock.advance(days=2)
        deadline = time.monotonic() + 30
        while catalog.expired_versions() and time.monotonic() < deadline:
            time.sleep(0.1)

        assert catalog.expired_versions() == []
        assert catalog.list_versions("acme/p", "short") == []
        assert [r.name for r in catalog.list_artifacts("acme/p")] == ["long", "short"]
        assert catalog.list_versions("acme/p", "long")[0].version == 0
        assert not catalog.blobs.has(short.manifest_blob)
        assert catalog.blobs.has(long.manifest_blob)


def test_db_upgrade_brings_a_catalog_to_the_newest_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["db", "upgrade", "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    )

    assert result.exit_code == 0, result.output
    assert f"revision {migrations.HEAD}" in result.output


def test_account_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    with running_service(
        f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "blobs"
    ) as service:
        monkeypatch.setenv("REFSTORE_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("REFSTORE_URL", service.url)
        monkeypatch.delenv("REFSTORE_TOKEN", raising=False)

        def run(*args: str) -> str:
            result = runner.invoke(main, list(args))
            assert result.exit_code == 0, result.output
            return result.output

        anonymous = run("whoami")
        run("login", "--token", ADMIN_TOKEN)
        credentials = tmp_path / "home" / "credentials.json"
        bob_token = re.findall(r"rs_[A-Za-z0-9_-]{43}", run("user", "add", "bob"))
        created = run("token", "create", "--label", "laptop")
        listed = run("token", "list", "--json")
        token_id = re.search(r"token (\d+) \(laptop\)", created)
        assert token_id is not None
        revoked = run("token", "revoke", token_id.group(1))
        run("team", "create", "crew")
        members = run("team", "add-member", "crew", "bob")
        visibility = run("project", "visibility", "crew/p", "public")
        refused = runner.invoke(
            main, ["user", "add", "eve"], env={"REFSTORE_TOKEN": bob_token[0]}
        )

    assert anonymous.startswith("anonymous")
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert ADMIN_TOKEN not in listed
    assert "laptop" in listed
    assert "revoked" in revoked
    assert "bob" in members
    assert visibility.strip() == "crew/p is now public"
    assert refused.exit_code == 2
    assert "site admins" in refused.output
