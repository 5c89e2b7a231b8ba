"""refstore:// through fsspec: listing, info, ranged reads, pandas."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

import refstore.fs
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
