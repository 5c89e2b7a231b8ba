"""GCS stores for the provider tests: fake-gcs-server, over real HTTP.

Fixtures (a pytest plugin, listed in ``tests/conftest.py``):

* ``fake_gcs`` (session): a running fake-gcs-server (memory backend, the
  only one that keeps generations) with ``.endpoint_url``; not installed
  skips with an install hint, or fails under ``REFSTORE_REQUIRE_EMULATORS=1``;
* ``gcs`` (function): a :class:`GcsStore` for GCS-specific tests: a setup
  client, the settings a user would write, and the provider under test;
* ``gcs_store`` (function): the same, as the conformance suite's
  :class:`~tests.providers.stores.Store`.

What fake-gcs-server cannot express (see EMULATORS.md), and where it is
tested instead:

* deleting one generation for good: in a versioned bucket, deleting a
  noncurrent generation archives the live object instead, and archived
  generations cannot be deleted at all. ``delete_version`` skips; gone
  generations are tested in buckets without versioning, where an overwrite
  deletes the old generation as on GCS (``test_gcs.py``);
* access denied and rejected credentials: it checks neither, so
  ``denied_ref`` skips; ``test_gcs.py`` sends those answers from a scripted
  HTTP server;
* composite objects without md5Hash: its compose computes one, unlike GCS;
  ``test_gcs.py`` lists one from a scripted server;
* lifecycle rules: it keeps none (and a bucket PATCH turns versioning off);
  ``test_gcs.py`` reads them from a scripted server.

Two more quirks the provider copes with, tested in ``test_gcs.py``: the
SDK's ``versions=True`` is sent as "True", which it reads as false (the
provider sends "true"), and a versioned listing resumes at the name the
previous page ended on, repeating its generations (the provider yields each
generation once). Preconditions on reads are not enforced either (the
provider compares the generation and ETag it is served).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from refstore.config import Settings
from refstore.providers.gcs import GcsProvider
from refstore.uri import ObjectRef
from tests import emulators

REQUIRE_EMULATORS = os.environ.get("REFSTORE_REQUIRE_EMULATORS") == "1"
NO_DELETE_VERSION = (
    "fake-gcs-server cannot delete one generation for good: in a versioned "
    "bucket it archives the live object instead (see EMULATORS.md); "
    "test_gcs.py tests gone generations in a bucket without versioning"
)
NO_DENIED_ACCESS = (
    "fake-gcs-server checks no credentials or permissions, so it never "
    "answers 401 or 403; test_gcs.py sends those from a scripted HTTP server"
)

# Credentials, projects and endpoints that no real account or login can leak
# into; CLOUDSDK_CONFIG is pointed at an empty folder (no gcloud login).
_CLEARED_GOOGLE_VARS = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "GOOGLE_API_USE_CLIENT_CERTIFICATE",
    "STORAGE_EMULATOR_HOST",
    "API_ENDPOINT_OVERRIDE",
)


def unique_bucket(prefix: str = "t") -> str:
    """A bucket name no test has used."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def setup_client(endpoint_url: str) -> Any:
    """A google-cloud-storage client for arranging data (not the code under test)."""
    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint_url},
    )
    # Without this the SDK GETs each bucket it touches from a background thread.
    client._bucket_metadata_cache = None
    return client


@pytest.fixture(scope="session", autouse=True)
def _isolated_google_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in _CLEARED_GOOGLE_VARS:
            patch.delenv(name, raising=False)
        patch.setenv("CLOUDSDK_CONFIG", str(tmp_path_factory.mktemp("gcloud")))
        yield


@pytest.fixture(scope="session")
def fake_gcs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[emulators.Emulator]:
    try:
        server = emulators.start_fake_gcs(tmp_path_factory.mktemp("fake-gcs"))
    except emulators.EmulatorUnavailableError as exc:
        if REQUIRE_EMULATORS:
            pytest.fail(f"{exc} (REFSTORE_REQUIRE_EMULATORS=1)")
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture(scope="session")
def _gcs_setup_client(fake_gcs: emulators.Emulator) -> Iterator[Any]:
    client = setup_client(fake_gcs.endpoint_url)
    yield client
    client.close()


@dataclasses.dataclass
class GcsStore:
    """fake-gcs-server, seen by a test.

    ``client`` is a plain google-cloud-storage client for arranging data;
    ``provider`` is the code under test, configured through ``settings``
    like a user would (``endpoint_url``, ``anonymous``).
    """

    endpoint_url: str
    client: Any
    settings: Settings
    provider: GcsProvider
    name: str = "gcs"
    no_versions: str | None = None
    no_version_listing: str | None = None
    no_listing: str | None = None
    no_denied_access: str | None = NO_DENIED_ACCESS
    no_missing_bucket: str | None = None
    no_delete_version: str | None = NO_DELETE_VERSION
    checksums: tuple[str, ...] = ("md5", "crc32c")
    page_size: int | None = 1000

    def make_bucket(self, versioning: bool = True) -> str:
        """A new, empty, uniquely named bucket (versioned unless told not)."""
        name = unique_bucket()
        bucket = self.client.bucket(name)
        bucket.versioning_enabled = versioning
        self.client.create_bucket(bucket)
        return name

    def ref(self, bucket: str, key: str, version: str | None = None) -> ObjectRef:
        return ObjectRef("gs", bucket, key, version)

    def upload(self, bucket: str, key: str, body: bytes = b"data") -> Any:
        """Write one object; return its Blob (generation, md5_hash, ...)."""
        blob = self.client.bucket(bucket).blob(key)
        blob.upload_from_string(body)
        return blob

    def put(self, bucket: str, key: str, body: bytes = b"data") -> ObjectRef:
        blob = self.upload(bucket, key, body)
        return self.ref(bucket, key, str(blob.generation))

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda item: self.upload(bucket, *item), objects.items()))

    def delete(self, bucket: str, key: str) -> None:
        """Delete the live object; in a versioned bucket it becomes noncurrent."""
        self.client.bucket(bucket).blob(key).delete()

    def delete_version(self, ref: ObjectRef) -> None:
        pytest.skip(NO_DELETE_VERSION)

    def missing_bucket(self) -> str:
        return unique_bucket("missing")

    def denied_ref(self) -> ObjectRef:
        pytest.skip(NO_DENIED_ACCESS)


def gcs_settings(home: Path, endpoint_url: str, **options: Any) -> Settings:
    """The settings a user would write for buckets on ``endpoint_url``."""
    store = {"endpoint_url": endpoint_url, "anonymous": True, **options}
    return Settings(home=home, stores={"gs": store})


@pytest.fixture
def gcs(
    fake_gcs: emulators.Emulator, _gcs_setup_client: Any, tmp_path: Path
) -> Iterator[GcsStore]:
    settings = gcs_settings(tmp_path / "refstore-home", fake_gcs.endpoint_url)
    provider = GcsProvider(settings)
    yield GcsStore(fake_gcs.endpoint_url, _gcs_setup_client, settings, provider)
    provider.close()


@pytest.fixture
def gcs_store(gcs: GcsStore) -> GcsStore:
    return gcs
