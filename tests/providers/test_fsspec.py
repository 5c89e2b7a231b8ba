"""What is fsspec's own in FsspecProvider: local files pinned by sha256, memory
files that nothing pins, and the fallback for other protocols, which records
what ``info()`` says. The shared contract is tested in
``test_conformance.py`` (stores ``file`` and ``memory``)."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from refstore.blobs import BlobStore
from refstore.capture import capture
from refstore.config import Settings
from refstore.errors import (
    AccessDeniedError,
    FetchError,
    IntegrityError,
    InvalidReferenceError,
    ObjectNotFoundError,
)
from refstore.fetch import fetch
from refstore.manifest import ManifestEntry, ObjectInfo
from refstore.providers import Providers
from refstore.providers.base import Versioning
from refstore.providers.fsspec import FsspecProvider
from refstore.uri import parse_uri

TEST_PROTOCOL = "refstoretest"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_all(provider: FsspecProvider, info: ObjectInfo, **span: int) -> bytes:
    with provider.read(info, **span) as stream:
        return stream.read()


@pytest.fixture
def provider(tmp_path: Path) -> FsspecProvider:
    return FsspecProvider(Settings(home=tmp_path / "home"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    return root


def file_uri(path: Path) -> str:
    return f"file://{path}"


# local files


def test_local_file_is_pinned_by_its_sha256(
    provider: FsspecProvider, folder: Path
) -> None:
    path = folder / "data.csv"
    path.write_bytes(b"a,b\n")
    os.utime(path, (1_800_000_000, 1_800_000_000))

    info = provider.stat(parse_uri(file_uri(path)))
    entry = ManifestEntry.from_info("data.csv", info)

    assert (info.size, info.etag) == (4, sha256(b"a,b\n"))
    assert info.checksums == {"sha256": sha256(b"a,b\n")}
    assert info.last_modified is not None
    assert info.last_modified.timestamp() == 1_800_000_000
    assert entry.digest == sha256(b"a,b\n")
    assert entry.extra["sha256"] == sha256(b"a,b\n")
    assert entry.extra["mtime"] == "2027-01-15T08:00:00+00:00"
    assert entry.ref == f"file://{path}"
    assert provider.requests.snapshot() == {"info": 1}
    assert provider.versioning(info.ref) is Versioning.OFF


def test_touched_but_unchanged_file_keeps_its_etag(
    provider: FsspecProvider, folder: Path
) -> None:
    path = folder / "same.txt"
    path.write_bytes(b"same")
    before = provider.stat(parse_uri(file_uri(path)))
    os.utime(path, (1_900_000_000, 1_900_000_000))

    after = provider.stat(parse_uri(file_uri(path)))

    assert after.etag == before.etag
    assert read_all(provider, before) == b"same"


def test_changed_file_is_refused_before_a_range_is_served(
    provider: FsspecProvider, folder: Path
) -> None:
    path = folder / "k.bin"
    path.write_bytes(b"0123456789")
    info = provider.stat(parse_uri(file_uri(path)))
    path.write_bytes(b"9876543210")

    with pytest.raises(IntegrityError, match="changed since it was recorded"):
        provider.read(info, start=2, end=4)


def test_changed_file_fails_at_the_end_of_a_whole_read(
    provider: FsspecProvider, folder: Path
) -> None:
    path = folder / "k.bin"
    path.write_bytes(b"recorded")
    info = provider.stat(parse_uri(file_uri(path)))
    path.write_bytes(b"replaced")

    with provider.read(info) as stream, pytest.raises(IntegrityError):
        stream.read()


def test_scan_is_one_find_in_key_order(provider: FsspecProvider, folder: Path) -> None:
    for name in ["b.txt", "a/z.txt", "a/y.txt"]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())

    listed = list(provider.scan(parse_uri(file_uri(folder) + "/")))

    assert [i.ref.key for i in listed] == [
        f"{folder}/a/y.txt",
        f"{folder}/a/z.txt",
        f"{folder}/b.txt",
    ]
    assert listed[2].etag == sha256(b"b.txt")
    assert provider.requests.snapshot() == {"find": 1}


def test_a_folder_is_not_an_object(provider: FsspecProvider, folder: Path) -> None:
    (folder / "sub").mkdir()

    with pytest.raises(ObjectNotFoundError, match="is a folder"):
        provider.stat(parse_uri(file_uri(folder / "sub")))


def test_relative_file_reference_is_refused(provider: FsspecProvider) -> None:
    with pytest.raises(InvalidReferenceError, match="absolute path"):
        provider.stat(parse_uri("file://data/x.csv"))


def test_pinned_reference_is_refused(provider: FsspecProvider, folder: Path) -> None:
    ref = parse_uri(file_uri(folder / "x")).with_version("3")

    with pytest.raises(InvalidReferenceError, match="no versions"):
        provider.stat(ref)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever the mode")
def test_unreadable_file_is_access_denied(
    provider: FsspecProvider, folder: Path
) -> None:
    path = folder / "secret"
    path.write_bytes(b"secret")
    path.chmod(0)

    with pytest.raises(AccessDeniedError):
        provider.stat(parse_uri(file_uri(path)))


def test_fetch_checks_the_sha256(
    provider: FsspecProvider, folder: Path, tmp_path: Path
) -> None:
    (folder / "data").mkdir()
    (folder / "data" / "x.bin").write_bytes(b"xx")
    (folder / "data" / "y.bin").write_bytes(b"yyy")
    captured = capture(parse_uri(file_uri(folder / "data") + "/"), provider)
    entries = [ManifestEntry.from_info(path, info) for path, info in captured]
    providers = Providers(provider.settings)
    blobs = BlobStore(tmp_path / "blobs")

    fetch(entries, tmp_path / "one", providers=providers, blobs=blobs)
    (folder / "data" / "y.bin").write_bytes(b"zzz")
    with pytest.raises(FetchError) as caught:
        fetch(entries, tmp_path / "two", providers=providers, blobs=blobs)

    assert (tmp_path / "one" / "y.bin").read_bytes() == b"yyy"
    ((path, error),) = caught.value.failures
    assert path == "y.bin"
    assert isinstance(error, IntegrityError)


# memory: nothing pins the content


def test_memory_files_say_that_nothing_pins_them(
    provider: FsspecProvider, caplog: pytest.LogCaptureFixture
) -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe_file("/fsspec-test/m/a", b"a")
    memory.pipe_file("/fsspec-test/m/b", b"bb")

    with caplog.at_level(logging.WARNING, logger="refstore.providers.fsspec"):
        info = provider.stat(parse_uri("memory://fsspec-test/m/a"))
        listed = list(provider.scan(parse_uri("memory://fsspec-test/m/")))

    assert (info.size, info.etag, dict(info.checksums)) == (1, None, {})
    assert [i.ref.key for i in listed] == ["fsspec-test/m/a", "fsspec-test/m/b"]
    assert "nothing pins its content" in caplog.text
    assert "2 objects under memory://fsspec-test/m/ have no ETag" in caplog.text


# another protocol, through the registry's fsspec fallback


class TaggedMemoryFileSystem(MemoryFileSystem):  # type: ignore[misc]
    """fsspec's memory filesystem, with what object stores add to info()."""

    protocol = TEST_PROTOCOL

    def __init__(self, tag: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tag = tag

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        stripped: str = super()._strip_protocol(path.removeprefix(f"{cls.protocol}://"))
        return stripped

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._tagged(super().info(path, **kwargs))

    def find(self, path: str, *args: Any, **kwargs: Any) -> Any:
        found = super().find(path, *args, **kwargs)
        if not kwargs.get("detail"):
            return found
        return {name: self._tagged(entry) for name, entry in found.items()}

    def _tagged(self, entry: dict[str, Any]) -> dict[str, Any]:
        if entry["type"] != "file":
            return entry
        data = self.cat_file(entry["name"])
        digest = hashlib.md5(data).digest()
        return {
            **entry,
            "ETag": f'"{self.tag}{digest.hex()}"',
            "md5Hash": base64.b64encode(digest).decode(),
            "generation": "1700000000000001",
        }


@pytest.fixture
def tagged() -> Iterator[MemoryFileSystem]:
    fsspec.register_implementation(TEST_PROTOCOL, TaggedMemoryFileSystem, clobber=True)
    fs = fsspec.filesystem("memory")
    fs.pipe_file("/tagged/data/a.bin", b"alpha")
    yield fs
    fs.rm("/tagged", recursive=True)


def test_other_protocols_record_what_info_returns(
    tagged: MemoryFileSystem, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path, stores={TEST_PROTOCOL: {"tag": "v1-"}})
    providers = Providers(settings)
    provider = providers.for_scheme(TEST_PROTOCOL)
    ref = parse_uri(f"{TEST_PROTOCOL}://tagged/data/a.bin")

    info = provider.stat(ref)
    (listed,) = provider.scan(parse_uri(f"{TEST_PROTOCOL}://tagged/data/"))
    entry = ManifestEntry.from_info("a.bin", info)

    md5 = hashlib.md5(b"alpha").hexdigest()
    assert isinstance(provider, FsspecProvider)
    assert (info.etag, dict(info.checksums)) == (f"v1-{md5}", {"md5": md5})
    assert info.extra == {"objectVersion": "1700000000000001"}
    assert (listed.ref, listed.etag, listed.checksums) == (
        ref,
        info.etag,
        info.checksums,
    )
    assert "versionID" not in entry.extra
    assert read_all(provider, info) == b"alpha"  # type: ignore[arg-type]


def test_other_protocols_refuse_a_changed_etag(
    tagged: MemoryFileSystem, tmp_path: Path
) -> None:
    provider = FsspecProvider(Settings(home=tmp_path))
    info = provider.stat(parse_uri(f"{TEST_PROTOCOL}://tagged/data/a.bin"))
    tagged.pipe_file("/tagged/data/a.bin", b"beta")

    with pytest.raises(IntegrityError, match="not the recorded"):
        provider.read(info)
