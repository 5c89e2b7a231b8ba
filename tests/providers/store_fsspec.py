"""fsspec stores for the conformance suite: a local folder and fsspec's memory.

Fixtures (a pytest plugin, listed in ``tests/conftest.py``):

* ``file_store`` (function): ``file://`` references into a folder that lives
  for the session; a "bucket" is a sub-folder of it;
* ``memory_store`` (function): ``memory://`` references; a "bucket" is a
  top-level folder of fsspec's process-wide memory filesystem.

Data is arranged with plain file operations and with fsspec's memory
filesystem, never with the provider under test.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import fsspec
import pytest

from refstore.config import Settings
from refstore.providers.fsspec import FsspecProvider
from refstore.uri import ObjectRef

NO_VERSIONS = "fsspec filesystems have no object versions here"
NO_BUCKETS = "fsspec paths have no buckets; a missing folder is an empty one"


class FileStore:
    """Local files: buckets are sub-folders of ``root``."""

    name = "file"
    no_versions: str | None = NO_VERSIONS
    no_version_listing: str | None = NO_VERSIONS
    no_listing: str | None = None
    no_denied_access: str | None = (
        "the tests run as root, whom file permissions do not stop"
        if os.geteuid() == 0
        else None
    )
    no_missing_bucket: str | None = NO_BUCKETS
    no_etag: str | None = None
    checksums: tuple[str, ...] = ("sha256",)
    page_size: int | None = None

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.settings = Settings(home=home)
        self.provider = FsspecProvider(self.settings)

    def make_bucket(self) -> str:
        name = f"b-{uuid.uuid4().hex[:12]}"
        (self.root / name).mkdir()
        return name

    def ref(self, bucket: str, key: str, version: str | None = None) -> ObjectRef:
        return ObjectRef("file", "", f"{self.root}/{bucket}/{key}", version)

    def put(self, bucket: str, key: str, body: bytes) -> ObjectRef:
        path = self.root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return self.ref(bucket, key)

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        for key, body in objects.items():
            self.put(bucket, key, body)

    def delete(self, bucket: str, key: str) -> None:
        (self.root / bucket / key).unlink()

    def delete_version(self, ref: ObjectRef) -> None:
        raise NotImplementedError(self.no_versions)

    def missing_bucket(self) -> str:
        raise NotImplementedError(self.no_missing_bucket)

    def denied_ref(self) -> ObjectRef:
        bucket = self.make_bucket()
        ref = self.put(bucket, "secret.txt", b"secret")
        Path(ref.key).chmod(0)
        return ref


class MemoryStore:
    """fsspec's memory filesystem: buckets are top-level folders."""

    name = "memory"
    no_versions: str | None = NO_VERSIONS
    no_version_listing: str | None = NO_VERSIONS
    no_listing: str | None = None
    no_denied_access: str | None = "memory:// has no permissions"
    no_missing_bucket: str | None = NO_BUCKETS
    no_etag: str | None = (
        "memory:// reports no ETag or checksum: nothing pins the content"
    )
    checksums: tuple[str, ...] = ()
    page_size: int | None = None

    def __init__(self, home: Path) -> None:
        self.fs = fsspec.filesystem("memory")
        self.settings = Settings(home=home)
        self.provider = FsspecProvider(self.settings)

    def make_bucket(self) -> str:
        return f"b-{uuid.uuid4().hex[:12]}"

    def ref(self, bucket: str, key: str, version: str | None = None) -> ObjectRef:
        return ObjectRef("memory", "", f"{bucket}/{key}", version)

    def put(self, bucket: str, key: str, body: bytes) -> ObjectRef:
        self.fs.pipe_file(f"/{bucket}/{key}", body)
        return self.ref(bucket, key)

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        for key, body in objects.items():
            self.put(bucket, key, body)

    def delete(self, bucket: str, key: str) -> None:
        self.fs.rm_file(f"/{bucket}/{key}")

    def delete_version(self, ref: ObjectRef) -> None:
        raise NotImplementedError(self.no_versions)

    def missing_bucket(self) -> str:
        raise NotImplementedError(self.no_missing_bucket)

    def denied_ref(self) -> ObjectRef:
        raise NotImplementedError(self.no_denied_access)


@pytest.fixture(scope="session")
def file_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("file-store")


@pytest.fixture
def file_store(file_root: Path, tmp_path: Path) -> FileStore:
    return FileStore(file_root, tmp_path / "refstore-home")


@pytest.fixture
def memory_store(tmp_path: Path) -> MemoryStore:
    # Buckets stay in the process-wide memory filesystem (names are unique),
    # so that a session-wide bucket outlives the test that filled it.
    return MemoryStore(tmp_path / "refstore-home")
