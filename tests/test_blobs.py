"""The content-addressed blob store."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from refstore.blobs import BlobStore
from refstore.errors import IntegrityError, ManifestError, NotFoundError


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_put_file_stores_under_the_sha256(store: BlobStore, tmp_path: Path) -> None:
    digest, size = store.put_file(write(tmp_path, "a.txt", b"hello"))

    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert size == 5
    assert store.path(digest) == store.root / "sha256" / digest[:2] / digest[2:]
    with store.open(digest) as stream:
        assert stream.read() == b"hello"


def test_the_same_bytes_are_kept_once(store: BlobStore, tmp_path: Path) -> None:
    first = store.put_file(write(tmp_path, "a.txt", b"same"))
    second = store.put_file(write(tmp_path, "b.txt", b"same"))

    assert first == second
    assert files_in(store.root / "sha256") == [store.path(first[0])]


def test_no_temporary_file_is_left(store: BlobStore, tmp_path: Path) -> None:
    store.put_file(write(tmp_path, "a.txt", b"one"))
    store.put_stream(io.BytesIO(b"one"))

    assert files_in(store.root / "tmp") == []


def test_a_failed_write_leaves_nothing(store: BlobStore) -> None:
    def interrupted_write() -> None:
        with store.writer() as blob:
            blob.write(b"half")
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        interrupted_write()

    assert files_in(store.root) == []
    assert list(store) == []


def test_writer_reports_digest_and_size(store: BlobStore) -> None:
    with store.writer() as blob:
        blob.write(b"ab")
        blob.write(b"c")

    assert (blob.digest, blob.size) == (hashlib.sha256(b"abc").hexdigest(), 3)
    assert store.has(blob.digest)


def test_open_a_missing_blob(store: BlobStore) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()

    assert not store.has(digest)
    with pytest.raises(NotFoundError, match="not in the blob store"):
        store.open(digest)


@pytest.mark.parametrize(
    "digest",
    [
        pytest.param("../../../../etc/passwd", id="traversal"),
        pytest.param("/" + "a" * 63, id="absolute"),
        pytest.param("A" * 64, id="uppercase"),
        pytest.param("a" * 64 + "\n", id="newline"),
        pytest.param("", id="empty"),
    ],
)
def test_a_digest_that_is_not_sha256_names_no_file(
    store: BlobStore, digest: str
) -> None:
    with pytest.raises(ManifestError, match="not a blob digest"):
        store.open(digest)
    with pytest.raises(ManifestError):
        store.delete(digest)


def test_verify_detects_corruption(store: BlobStore) -> None:
    digest, _ = store.put_stream(io.BytesIO(b"original"))
    store.verify(digest)

    store.path(digest).write_bytes(b"tampered")

    with pytest.raises(IntegrityError, match="corrupt"):
        store.verify(digest)


def test_iteration_lists_every_blob_in_order(store: BlobStore) -> None:
    assert list(store) == []
    digests = [store.put_stream(io.BytesIO(bytes([i])))[0] for i in range(20)]

    assert list(store) == sorted(digests)


def test_delete(store: BlobStore) -> None:
    digest, _ = store.put_stream(io.BytesIO(b"x"))

    assert store.delete(digest)
    assert not store.delete(digest)
    assert not store.has(digest)


def test_copy_to(store: BlobStore, tmp_path: Path) -> None:
    digest, _ = store.put_stream(io.BytesIO(b"payload"))

    store.copy_to(digest, tmp_path / "out.bin")

    assert (tmp_path / "out.bin").read_bytes() == b"payload"
