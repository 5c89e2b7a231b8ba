"""A service that dies in the middle of a client's log: retried, or failed cleanly.

The client logs versions in a loop, each with a copied file to upload, while
the service is killed (SIGKILL: no graceful anything) and started again on
the same port. Whatever request was cut, the client's retries must end with
every version logged exactly once, and no version may be visible half made.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import refstore
from refstore.catalog.http import HttpCatalog
from refstore.catalog.http_blobs import ServiceBlobs
from refstore.catalog.http_transport import Transport
from refstore.config import Settings
from refstore.context import Context
from refstore.errors import CatalogError
from tests.server.support import request
from tests.service import ADMIN_TOKEN, free_port, start_process, stop_process

PROJECT = "admin/restart"
VERSIONS = 12


class ImpatientContext(Context):
    """A context whose service client gives up after a few quick retries."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        transport = Transport(
            settings.catalog_url, settings.token, attempts=3, backoff=0.05
        )
        self._impatient = HttpCatalog(
            transport, ServiceBlobs(settings.blob_dir, transport)
        )

    @property
    def catalog(self) -> HttpCatalog:
        return self._impatient

    def close(self) -> None:
        self._impatient.close()


class Client(threading.Thread):
    """Logs VERSIONS versions of one artifact, each with its own file."""

    def __init__(
        self, home: Path, url: str, files: list[Path], *, patient: bool = True
    ) -> None:
        super().__init__(daemon=True)
        settings = Settings(home=home, url=url, token=ADMIN_TOKEN)
        self.context = Context(settings) if patient else ImpatientContext(settings)
        self.files = files
        self.logged: list[int] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for source in self.files:
                artifact = refstore.Artifact("data", "dataset", context=self.context)
                artifact.add_file(source)
                artifact.save(project=PROJECT)
                self.logged.append(int(str(artifact.version)[1:]))
        except BaseException as exc:  # noqa: BLE001 (the test reports it)
            self.error = exc
        finally:
            self.context.close()


def _files(root: Path) -> list[Path]:
    root.mkdir()
    files = []
    for index in range(VERSIONS):
        path = root / f"part-{index}.bin"
        path.write_bytes(bytes([index]) * 2_000_000)
        files.append(path)
    return files


def _check_complete(url: str, home: Path) -> list[int]:
    """Every visible version is whole: its manifest and file download."""
    catalog = HttpCatalog.from_settings(Settings(home=home, url=url, token=ADMIN_TOKEN))
    try:
        records = catalog.list_versions(PROJECT, "data")
        for record in records:
            with catalog.blobs.open(record.manifest_blob) as manifest:
                assert manifest.read(4)
        return [r.version for r in records]
    finally:
        catalog.close()


def test_a_restart_mid_log_is_retried_and_logs_each_version_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db, blobs, logs = (
        f"sqlite:///{tmp_path / 'c.db'}",
        tmp_path / "blobs",
        tmp_path / "log",
    )
    client = Client(tmp_path / "client", url, _files(tmp_path / "files"))
    process = start_process(db, blobs, port, logs)
    try:
        client.start()
        while len(client.logged) < 3 and client.is_alive():
            time.sleep(0.01)
        process.kill()  # mid-request: uploads and logs are running all the time
        process.wait()
        time.sleep(0.5)
        process = start_process(db, blobs, port, logs)
        client.join(timeout=120)
        versions = _check_complete(url, tmp_path / "checker")
    finally:
        stop_process(process)

    assert client.error is None, repr(client.error)
    assert client.logged == list(range(VERSIONS))
    assert versions == list(range(VERSIONS))


def test_a_service_that_stays_down_fails_the_client_cleanly(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db, blobs, logs = (
        f"sqlite:///{tmp_path / 'c.db'}",
        tmp_path / "blobs",
        tmp_path / "log",
    )
    client = Client(tmp_path / "client", url, _files(tmp_path / "files"), patient=False)
    process = start_process(db, blobs, port, logs)
    try:
        client.start()
        while len(client.logged) < 2 and client.is_alive():
            time.sleep(0.01)
        process.kill()
        process.wait()
        client.join(timeout=60)
        process = start_process(db, blobs, port, logs)
        versions = _check_complete(url, tmp_path / "checker")
        answer = request(url, "GET", "/healthz")
    finally:
        stop_process(process)

    assert isinstance(client.error, CatalogError)
    assert url in str(client.error)
    # The log that was cut either happened whole or not at all.
    assert versions[: len(client.logged)] == client.logged
    assert len(versions) - len(client.logged) in (0, 1)
    assert answer.status == 200
