"""S3 stores for the conformance suite: moto and LocalStack.

Fixtures (a pytest plugin, listed in ``tests/conftest.py``), built on the
emulator fixtures there:

* ``moto_store`` (function): a :class:`~tests.providers.stores.Store` on moto;
* ``localstack_store`` (function): the same on LocalStack.

Buckets are versioned. Neither emulator checks credentials by default, so
denied access is tested in ``test_s3.py`` on a moto server that does
(``moto_locked``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refstore.uri import ObjectRef
from tests import emulators
from tests.conftest import S3Env, make_s3_env

NO_DENIED_ACCESS = (
    "the emulator checks no credentials by default; test_s3.py::test_access_denied "
    "covers it on a moto server that checks IAM policies"
)


class S3Store:
    """The conformance suite's view of one S3 emulator."""

    no_versions: str | None = None
    no_version_listing: str | None = None
    no_listing: str | None = None
    no_denied_access: str | None = NO_DENIED_ACCESS
    no_missing_bucket: str | None = None
    no_etag: str | None = None
    #: a plain PUT gets an MD5 ETag, which the provider records as ``md5``
    checksums = ("md5",)
    #: ListObjectVersions pages hold at most 1000 entries
    page_size = 1000

    def __init__(self, env: S3Env) -> None:
        self.env = env
        self.name = env.name
        self.settings = env.settings
        self.provider = env.provider

    def make_bucket(self) -> str:
        return self.env.make_bucket("Enabled")

    def ref(self, bucket: str, key: str, version: str | None = None) -> ObjectRef:
        return ObjectRef("s3", bucket, key, version)

    def put(self, bucket: str, key: str, body: bytes) -> ObjectRef:
        answer = self.env.put(bucket, key, body)
        return self.ref(bucket, key, answer.get("VersionId"))

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        emulators.put_objects(self.env.client, bucket, objects.items(), workers=24)

    def delete(self, bucket: str, key: str) -> None:
        self.env.client.delete_object(Bucket=bucket, Key=key)

    def delete_version(self, ref: ObjectRef) -> None:
        assert ref.version is not None, f"{ref} is not pinned"
        self.env.client.delete_object(
            Bucket=ref.bucket, Key=ref.key, VersionId=ref.version
        )

    def missing_bucket(self) -> str:
        return f"refstore-missing-{uuid.uuid4().hex[:12]}"

    def denied_ref(self) -> ObjectRef:
        raise NotImplementedError(self.no_denied_access)


def _store(
    server: emulators.Emulator, tmp_path: Path, clients: dict[str, Any]
) -> Iterator[S3Store]:
    env = make_s3_env(server, tmp_path / "refstore-home", clients)
    yield S3Store(env)
    env.provider.close()


@pytest.fixture
def moto_store(
    moto_server: emulators.Emulator, tmp_path: Path, _setup_clients: dict[str, Any]
) -> Iterator[S3Store]:
    yield from _store(moto_server, tmp_path, _setup_clients)


@pytest.fixture
def localstack_store(
    localstack_server: emulators.Emulator,
    tmp_path: Path,
    _setup_clients: dict[str, Any],
) -> Iterator[S3Store]:
    yield from _store(localstack_server, tmp_path, _setup_clients)
