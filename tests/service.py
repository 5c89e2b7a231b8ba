"""A refstore service for tests: in-process on a free port, or as a subprocess.

:func:`running_service` serves a catalog from an event loop on its own
thread, so that tests (and the library under test) talk to it over real
HTTP while fixtures arrange data through its catalog directly.
:func:`service_process` starts ``refstore serve`` as a separate process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from refstore.catalog.base import Clock
from refstore.catalog.served import ServedCatalog
from refstore.errors import ConflictError
from refstore.server import ServerConfig, create_app
from refstore.server.app import AccessLogger, access_log, bootstrap_admin
from refstore.server.routing import SERVICE
from tests.helpers import Workspace

ADMIN_TOKEN = "rs_" + "A" * 43


@dataclasses.dataclass
class RunningService:
    url: str
    app: web.Application

    @property
    def catalog(self) -> ServedCatalog:
        return self.app[SERVICE].catalog

    def user(self, name: str, *teams: str, admin: bool = False) -> str:
        """Create a user, a member of ``teams`` (made when missing); its token."""
        _, token = self.catalog.create_user(name, is_admin=admin)
        for team in teams:
            try:
                self.catalog.create_team(team, name)
            except ConflictError:
                self.catalog.set_member(team, name, "member")
        return token


@contextlib.contextmanager
def running_service(
    db_url: str, blob_dir: Path, *, clock: Clock | None = None, **options: Any
) -> Iterator[RunningService]:
    options.setdefault("gc_interval", None)
    config = ServerConfig(
        db_url=db_url, blob_dir=blob_dir, port=0, admin_token=ADMIN_TOKEN, **options
    )
    app = create_app(config, clock=clock)
    bootstrap_admin(app)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(
        app, access_log=access_log, access_log_class=AccessLogger, shutdown_timeout=5
    )

    def wait(coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)

    try:
        wait(runner.setup())
        wait(web.TCPSite(runner, "127.0.0.1", 0).start())
        port = runner.addresses[0][1]
        yield RunningService(f"http://127.0.0.1:{port}", app)
    finally:
        wait(runner.cleanup())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def service_process(
    db_url: str, blob_dir: Path, port: int, log_file: Path, *extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``refstore serve`` in a subprocess, stopped with SIGTERM at the end."""
    process = start_process(db_url, blob_dir, port, log_file, *extra)
    try:
        yield process
    finally:
        stop_process(process)


def start_process(
    db_url: str,
    blob_dir: Path,
    port: int,
    log_file: Path,
    *extra: str,
    admin_token: str | None = ADMIN_TOKEN,
) -> subprocess.Popen[bytes]:
    """``refstore serve`` in a subprocess, once it answers /healthz."""
    process = spawn_process(
        db_url, blob_dir, port, log_file, *extra, admin_token=admin_token
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
    except BaseException:
        stop_process(process)
        raise
    return process


def spawn_process(
    db_url: str,
    blob_dir: Path,
    port: int,
    log_file: Path,
    *extra: str,
    admin_token: str | None = ADMIN_TOKEN,
) -> subprocess.Popen[bytes]:
    """``refstore serve`` in a subprocess, without waiting for it."""
    env = dict(os.environ)
    env.pop("REFSTORE_ADMIN_TOKEN", None)
    if admin_token is not None:
        env["REFSTORE_ADMIN_TOKEN"] = admin_token
    command = [
        sys.executable,
        "-m",
        "refstore.cli",
        "serve",
        "--db",
        db_url,
        "--blobs",
        str(blob_dir),
        "--port",
        str(port),
        *extra,
    ]
    with log_file.open("ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=log)


def stop_process(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the service at {url} did not become healthy")


@contextlib.contextmanager
def workspace(
    mode: str, s3: Any, root: Path, clock: Clock | None = None
) -> Iterator[Workspace]:
    """A workspace on the embedded catalog, or on a service (``mode``).

    The service keeps its catalog under ``root/server``; the workspace signs
    in as alice, a member of the team acme that owns the tests' projects.
    """
    if mode == "embedded":
        embedded = Workspace(s3, root / "home", clock)
        try:
            yield embedded
        finally:
            embedded.close()
        return
    server = root / "server"
    with running_service(
        f"sqlite:///{server / 'catalog.db'}", server / "blobs", clock=clock
    ) as service:
        token = service.user("alice", "acme")
        served = Workspace(s3, root / "home", clock, url=service.url, token=token)
        try:
            yield served
        finally:
            served.close()
