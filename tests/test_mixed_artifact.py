"""One artifact pointing into S3, GCS, Azure Blob and an HTTP server at once.

Each store is a real emulator or server (moto, fake-gcs-server, Azurite, an
aiohttp server); the artifact is logged, fetched and verified as a user would,
with one refstore configuration that names every store's endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refstore.api import Api
from refstore.artifact import Artifact
from refstore.config import Settings
from refstore.context import Context
from refstore.verify import Status
from tests.helpers import files_under

pytestmark = pytest.mark.slow

BODIES = {
    "s3": b"rows from s3\n",
    "gcs": b"labels from gcs\n",
    "azure": b"images from azure\n",
    "http": b"readme from http\n",
}


@pytest.fixture
def stores(
    moto_s3: Any, gcs_store: Any, azurite_store: Any, http_store: Any
) -> dict[str, Any]:
    return {
        "s3": moto_s3,
        "gcs": gcs_store,
        "azure": azurite_store,
        "http": http_store,
    }


@pytest.fixture
def context(stores: dict[str, Any], tmp_path: Path) -> Iterator[Context]:
    merged: dict[str, Any] = {}
    for store in stores.values():
        merged.update(store.settings.stores)
    context = Context(Settings(home=tmp_path / "home", stores=merged))
    yield context
    context.close()


def _put_all(stores: dict[str, Any]) -> dict[str, str]:
    """One object in each store; return the URIs a user would reference."""
    s3 = stores["s3"]
    bucket = s3.make_bucket()
    s3.put(bucket, "mixed/rows.csv", BODIES["s3"])
    uris = {"s3": f"s3://{bucket}/mixed/rows.csv"}
    for name in ("gcs", "azure", "http"):
        store = stores[name]
        ref = store.put(store.make_bucket(), "mixed/object.bin", BODIES[name])
        uris[name] = ref.with_version(None).uri
    return uris


def test_one_artifact_across_every_store(
    stores: dict[str, Any], context: Context, tmp_path: Path
) -> None:
    uris = _put_all(stores)
    artifact = Artifact("mixed", "dataset", context=context)
    for name, uri in uris.items():
        artifact.add_reference(uri, name=f"{name}.bin")
    artifact.save(project="acme/multi-cloud")

    logged = Api(context=context).artifact("acme/multi-cloud/mixed:latest")
    folder = logged.download(tmp_path / "out")
    report = logged.verify(keep_ok=True)

    assert files_under(folder) == {f"{n}.bin": body for n, body in BODIES.items()}
    assert {r.path: r.status for r in report.results} == {
        f"{n}.bin": Status.OK for n in BODIES
    }
    assert report.exit_code() == 0
    schemes = {entry.ref.split(":")[0] for entry in logged.manifest}
    assert schemes == {"s3", "gs", "az", "http"}


def test_drift_in_one_store_is_named(stores: dict[str, Any], context: Context) -> None:
    uris = _put_all(stores)
    artifact = Artifact("mixed", "dataset", context=context)
    for name, uri in uris.items():
        artifact.add_reference(uri, name=f"{name}.bin")
    artifact.save(project="acme/multi-cloud")
    http = stores["http"]
    http.server.put(uris["http"].split("/", 3)[3], b"someone edited the readme\n")

    report = artifact.verify()

    assert {r.path: r.status for r in report.results} == {"http.bin": Status.CHANGED}
    assert report.exit_code() == 1
