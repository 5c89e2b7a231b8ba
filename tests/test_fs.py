"""refstore:// through fsspec: listing, info, ranged reads, pandas."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

import refstore.fs
from refstore.errors import IntegrityError
from refstore.fs import RefstoreFileSystem
from tests.helpers import Workspace

PROJECT = "acme/fs"


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(moto_s3, tmp_path / "home")
    yield workspace
    workspace.close()


@pytest.fixture
def logged(ws: Workspace) -> dict[str, bytes]:
    """An artifact ``data:v0`` whose objects were overwritten afterwards."""
    bucket = ws.s3.make_bucket()
    objects = {
        "tables/scores.csv": b"name,score\nada,3\nbob,5\n",
        "tables/deep/more.csv": b"x\n1\n",
        "blob.bin": os.urandom(300_000),
    }
    for key, body in objects.items():
        ws.put(bucket, f"d/{key}", body)
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/d/")
    art.save(project=PROJECT)
    for key in objects:
        ws.put(bucket, f"d/{key}", b"overwritten")
    return objects


def _fs(ws: Workspace) -> Any:
    return fsspec.filesystem("refstore", context=ws.context)


def test_the_protocol_is_registered_on_import() -> None:
    assert fsspec.get_filesystem_class("refstore") is RefstoreFileSystem
    assert refstore.fs.PROTOCOL == "refstore"


def test_ls_lists_the_manifest_with_derived_folders(
    ws: Workspace, logged: dict[str, bytes]
) -> None:
    fs = _fs(ws)

    top = fs.ls(f"refstore://{PROJECT}/data:v0", detail=True)
    tables = fs.ls(f"{PROJECT}/data:v0/tables", detail=False)

    assert [(i["name"], i["type"]) for i in top] == [
        (f"{PROJECT}/data:v0/blob.bin", "file"),
        (f"{PROJECT}/data:v0/tables", "directory"),
    ]
    assert tables == [
        f"{PROJECT}/data:v0/tables/deep",
        f"{PROJECT}/data:v0/tables/scores.csv",
    ]
    assert sorted(fs.find(f"{PROJECT}/data:latest")) == sorted(
        f"{PROJECT}/data:latest/{name}" for name in logged
    )


def test_info_returns_the_entry(ws: Workspace, logged: dict[str, bytes]) -> None:
    info = _fs(ws).info(f"refstore://{PROJECT}/data/tables/scores.csv")

    assert info["type"] == "file"
    assert info["size"] == len(logged["tables/scores.csv"])
    assert info["ref"].endswith("/d/tables/scores.csv")
    assert info["version"]
    assert info["etag"]
    assert info["artifact"] == f"{PROJECT}/data:v0"


def test_random_access_reads_ranges_of_the_recorded_version(
    ws: Workspace, logged: dict[str, bytes]
) -> None:
    s3 = ws.context.providers.for_scheme("s3")
    before = s3.requests.snapshot().get("GetObject", 0)

    with _fs(ws).open(f"{PROJECT}/data:v0/blob.bin", block_size=4096) as stream:
        stream.seek(250_000)
        tail = stream.read(100)
        stream.seek(10)
        head = stream.read(10)

    assert tail == logged["blob.bin"][250_000:250_100]
    assert head == logged["blob.bin"][10:20]
    assert s3.requests.snapshot().get("GetObject", 0) - before == 2


def test_missing_paths_and_writes_are_refused(
    ws: Workspace, logged: dict[str, bytes]
) -> None:
    fs = _fs(ws)

    with pytest.raises(FileNotFoundError):
        fs.info(f"{PROJECT}/data:v0/nothing.csv")
    with pytest.raises(FileNotFoundError):
        fs.ls(f"{PROJECT}/missing:v0")
    with pytest.raises(FileNotFoundError):
        fs.ls(PROJECT)
    with pytest.raises(PermissionError):
        fs.open(f"{PROJECT}/data:v0/blob.bin", "wb")


def test_pandas_reads_the_recorded_version(
    ws: Workspace, logged: dict[str, bytes]
) -> None:
    pandas = pytest.importorskip("pandas", reason="pandas is in the dev extra")
    url = f"refstore://{PROJECT}/data:v0/tables/scores.csv"

    frame = pandas.read_csv(url, storage_options={"context": ws.context})

    expected = pandas.read_csv(io.BytesIO(logged["tables/scores.csv"]))
    assert frame.equals(expected)
    assert list(frame["score"]) == [3, 5]


@pytest.fixture
def served(http_store: Any, tmp_path: Path) -> Iterator[tuple[Workspace, bytes]]:
    """``web:v0``: one HTTP resource with its MD5 recorded, then served wrong.

    The server keeps the ETag while it serves other bytes, so the pin (If-Match
    on the ETag) holds and only the recorded checksum can tell.
    """
    workspace = Workspace(http_store, tmp_path / "web-home")
    body = b"a,b\n1,2\n" * 2000
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    bucket = http_store.make_bucket()
    http_store.server.put(f"{bucket}/table.csv", body, **{"Content-MD5": md5})
    art = workspace.artifact("web")
    art.add_reference(str(http_store.ref(bucket, "table.csv")))
    art.save(project=PROJECT)
    wrong = b"a,b\n1,3\n" * 2000  # same size, other bytes
    http_store.server.resources[f"{bucket}/table.csv"].body = wrong
    yield workspace, wrong
    workspace.close()


def test_a_whole_read_is_checked_against_the_record(
    served: tuple[Workspace, bytes],
) -> None:
    ws, wrong = served
    fs = _fs(ws)
    url = f"{PROJECT}/web:v0/table.csv"

    with fs.open(url, block_size=4096) as stream:
        assert stream.read(100) == wrong[:100]  # not the end yet: unchecked
        with pytest.raises(IntegrityError, match="md5"):
            stream.read()
    with pytest.raises(IntegrityError, match="does not match its record"):
        fs.cat_file(url)


def test_a_read_out_of_order_is_not_hashed(served: tuple[Workspace, bytes]) -> None:
    # Only whole objects have a recorded checksum: bytes read from the middle
    # and then the start are served as the pin allows, unchecked.
    ws, wrong = served
    with _fs(ws).open(f"{PROJECT}/web:v0/table.csv", block_size=4096) as stream:
        stream.seek(8000)
        middle = stream.read()
        stream.seek(0)
        start = stream.read(8000)

    assert start + middle == wrong


def test_a_copied_file_changed_in_the_blob_store_fails_its_read(
    ws: Workspace, tmp_path: Path
) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"recorded bytes")
    art = ws.artifact("copied")
    art.add_file(source)
    art.save(project=PROJECT)
    entry = art.manifest.entries["notes.txt"]
    ws.context.blobs.path(entry.digest).chmod(0o644)
    ws.context.blobs.path(entry.digest).write_bytes(b"recorded bytez")

    with pytest.raises(IntegrityError, match="sha256"):
        _fs(ws).cat_file(f"{PROJECT}/copied:v0/notes.txt")


def test_a_whole_read_of_the_recorded_version_passes(
    ws: Workspace, logged: dict[str, bytes]
) -> None:
    with _fs(ws).open(f"{PROJECT}/data:v0/blob.bin", block_size=65536) as stream:
        assert stream.read() == logged["blob.bin"]


def test_pandas_refuses_bytes_that_fail_the_record(
    served: tuple[Workspace, bytes],
) -> None:
    pandas = pytest.importorskip("pandas", reason="pandas is in the dev extra")
    ws, _ = served

    with pytest.raises(IntegrityError, match="md5"):
        pandas.read_csv(
            f"refstore://{PROJECT}/web:v0/table.csv",
            storage_options={"context": ws.context},
        )
