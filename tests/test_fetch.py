"""Fetch: exact versions, integrity, skipping, and refusing unsafe paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refstore.errors import (
    FetchError,
    IntegrityError,
    UnsafePathError,
    VersionNotFoundError,
)
from refstore.fetch import fetch
from refstore.manifest import Manifest, ManifestEntry
from tests.helpers import Workspace, files_under

PROJECT = "acme/fetch"


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(moto_s3, tmp_path / "home")
    yield workspace
    workspace.close()


def _fetch(ws: Workspace, entries: list[ManifestEntry], root: Path) -> Any:
    return fetch(
        Manifest(entries), root, providers=ws.context.providers, blobs=ws.context.blobs
    )


def _gets(ws: Workspace) -> int:
    counts = ws.context.providers.for_scheme("s3").requests.snapshot()
    return counts.get("GetObject", 0)


def test_fetch_returns_the_pinned_bytes_after_overwrite_and_delete(
    ws: Workspace, tmp_path: Path
) -> None:
    bucket = ws.s3.make_bucket()
    original = {f"f{i}.bin": bytes([i]) * (1000 + i) for i in range(5)}
    for name, body in original.items():
        ws.put(bucket, f"d/{name}", body)
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/d/")
    art.save(project=PROJECT)
    ws.put(bucket, "d/f1.bin", b"overwritten")
    ws.s3.client.delete_object(Bucket=bucket, Key="d/f2.bin")

    result = art.fetch(tmp_path / "out")

    assert files_under(tmp_path / "out") == original
    assert (result.fetched, result.skipped) == (5, 0)
    assert result.bytes_fetched == sum(map(len, original.values()))


def test_second_fetch_skips_everything_without_a_get(
    ws: Workspace, tmp_path: Path
) -> None:
    bucket = ws.s3.make_bucket()
    for i in range(4):
        ws.put(bucket, f"d/{i}.txt", f"content {i}".encode())
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/d/")
    art.save(project=PROJECT)
    art.fetch(tmp_path / "out")
    gets_before = _gets(ws)

    result = art.fetch(tmp_path / "out")

    assert (result.fetched, result.skipped) == (0, 4)
    assert _gets(ws) == gets_before


def test_a_damaged_local_copy_is_fetched_again(ws: Workspace, tmp_path: Path) -> None:
    bucket = ws.s3.make_bucket()
    ws.put(bucket, "d/a.txt", b"the real bytes")
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/d/")
    art.save(project=PROJECT)
    art.fetch(tmp_path / "out")
    (tmp_path / "out" / "a.txt").write_bytes(b"the fake bytes")

    result = art.fetch(tmp_path / "out")

    assert result.fetched == 1
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"the real bytes"


def test_unversioned_object_changed_since_logging_fails_loudly(
    ws: Workspace, tmp_path: Path
) -> None:
    bucket = ws.s3.make_bucket(versioning=None)
    ws.put(bucket, "d/a.txt", b"as logged")
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/d/")
    art.save(project=PROJECT)
    assert art.manifest.entries["a.txt"].version_id is None
    ws.put(bucket, "d/a.txt", b"overwritten in place")

    with pytest.raises(FetchError) as caught:
        art.fetch(tmp_path / "out")

    assert caught.value.exit_code == 1
    assert isinstance(caught.value.failures[0][1], IntegrityError)
    assert files_under(tmp_path / "out") == {}


def test_unversioned_object_unchanged_is_fetched_by_etag(
    ws: Workspace, tmp_path: Path
) -> None:
    bucket = ws.s3.make_bucket(versioning=None)
    ws.put(bucket, "d/a.txt", b"as logged")
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/d/")
    art.save(project=PROJECT)

    art.fetch(tmp_path / "out")

    assert files_under(tmp_path / "out") == {"a.txt": b"as logged"}


def test_wrong_recorded_md5_is_detected_and_nothing_is_left(
    ws: Workspace, tmp_path: Path
) -> None:
    bucket = ws.s3.make_bucket()
    version = ws.put(bucket, "d/a.txt", b"payload")
    entry = ManifestEntry(
        path="a.txt",
        digest="0" * 32,
        ref=f"s3://{bucket}/d/a.txt",
        size=7,
        extra={"versionID": version, "etag": "0" * 32},
    )

    with pytest.raises(FetchError, match="md5") as caught:
        _fetch(ws, [entry], tmp_path / "out")

    assert caught.value.exit_code == 1
    assert list((tmp_path / "out").iterdir()) == []


def test_deleted_version_is_reported(ws: Workspace, tmp_path: Path) -> None:
    bucket = ws.s3.make_bucket()
    version = ws.put(bucket, "d/a.txt", b"payload")
    ws.put(bucket, "d/a.txt", b"newer")
    ws.s3.client.delete_object(Bucket=bucket, Key="d/a.txt", VersionId=version)
    entry = ManifestEntry(
        path="a.txt",
        digest="x",
        ref=f"s3://{bucket}/d/a.txt",
        size=7,
        extra={"versionID": version},
    )

    with pytest.raises(FetchError) as caught:
        _fetch(ws, [entry], tmp_path / "out")

    assert isinstance(caught.value.failures[0][1], VersionNotFoundError)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("../escape.txt", id="parent"),
        pytest.param("a/../../escape.txt", id="nested-parent"),
        pytest.param("/etc/escape.txt", id="absolute"),
        pytest.param("C:/escape.txt", id="drive-letter"),
        pytest.param("a\\..\\escape.txt", id="backslash"),
    ],
)
def test_paths_outside_the_folder_are_refused_before_any_write(
    ws: Workspace, tmp_path: Path, path: str
) -> None:
    bucket = ws.s3.make_bucket()
    version = ws.put(bucket, "ok.txt", b"fine")
    good = ManifestEntry(
        path="aaa-first.txt",
        digest="d",
        ref=f"s3://{bucket}/ok.txt",
        size=4,
        extra={"versionID": version},
    )
    bad = ManifestEntry(
        path=path,
        digest="d",
        ref=f"s3://{bucket}/ok.txt",
        size=4,
        extra={"versionID": version},
    )

    with pytest.raises(UnsafePathError):
        _fetch(ws, [good, bad], tmp_path / "out")

    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.txt").exists()
    assert _gets(ws) == 0


def test_a_symlink_out_of_the_folder_is_refused(ws: Workspace, tmp_path: Path) -> None:
    bucket = ws.s3.make_bucket()
    version = ws.put(bucket, "ok.txt", b"fine")
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "out"
    root.mkdir()
    (root / "link").symlink_to(outside)
    entry = ManifestEntry(
        path="link/file.txt",
        digest="d",
        ref=f"s3://{bucket}/ok.txt",
        size=4,
        extra={"versionID": version},
    )

    with pytest.raises(UnsafePathError, match="symbolic link"):
        _fetch(ws, [entry], root)

    assert list(outside.iterdir()) == []


def test_a_path_that_is_file_and_folder_is_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    entries = [
        ManifestEntry(path="a", digest="d", ref="s3://bucket-a/a", size=1),
        ManifestEntry(path="a/b", digest="d", ref="s3://bucket-a/a/b", size=1),
    ]

    with pytest.raises(UnsafePathError, match="both a file and a folder"):
        _fetch(ws, entries, tmp_path / "out")
