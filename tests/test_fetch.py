"""Fetch: exact versions, integrity, skipping, and refusing unsafe paths."""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refstore.cache import FetchCache
from refstore.checksums import crc32c
from refstore.errors import (
    FetchError,
    IntegrityError,
    UnsafePathError,
    VersionNotFoundError,
)
from refstore.fetch import PartPolicy, fetch
from refstore.fetch_plan import plan
from refstore.manifest import Manifest, ManifestEntry
from refstore.uri import ObjectRef
from tests.helpers import GatedReads, Workspace, files_under

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


# Ranged parts, checksums, partial fetches, missing objects


def _pinned(
    ws: Workspace, bucket: str, key: str, body: bytes, path: str | None = None
) -> ManifestEntry:
    """The entry a capture would record for ``body`` just written at ``key``."""
    ws.put(bucket, key, body)
    info = ws.context.providers.for_scheme("s3").stat(ObjectRef("s3", bucket, key))
    return ManifestEntry.from_info(path or key, info)


def _observed_gets(ws: Workspace, entry: ManifestEntry) -> list[Any]:
    """The GetObject requests the provider's own client sends from now on.

    A before-send handler that returns None lets the request go unchanged.
    """
    sent: list[Any] = []
    client = ws.context.providers.for_scheme("s3")._client(entry.object_ref())
    client.meta.events.register(
        "before-send.s3.GetObject", lambda request, **_: sent.append(request)
    )
    return sent


def test_a_large_object_fetched_alone_is_split_over_idle_workers(
    ws: Workspace, tmp_path: Path
) -> None:
    bucket = ws.s3.make_bucket()
    old = os.urandom(200_000)
    entry = _pinned(ws, bucket, "big.bin", old)
    ws.put(bucket, "big.bin", os.urandom(200_000))
    sent = _observed_gets(ws, entry)
    # 200,000 bytes halve into four ranges of 50,000; a fifth split would
    # leave ranges under the 32,768-byte minimum. The gate holds the first
    # bytes back until all four reads are under way.
    gated = GatedReads(ws.context.providers.for_scheme("s3"), opens=4)

    result = fetch(
        [entry],
        tmp_path / "out",
        providers=gated,
        blobs=ws.context.blobs,
        cache=FetchCache(tmp_path / "cache"),
        jobs=8,
        parts=PartPolicy(threshold=100_000, size=32_768),
    )

    assert (tmp_path / "out" / "big.bin").read_bytes() == old
    assert len(sent) == 4
    assert all(f"versionId={entry.version_id}" in r.url for r in sent)
    starts = sorted(int(r.headers["Range"].decode()[6:].split("-")[0]) for r in sent)
    assert starts == [0, 50_000, 100_000, 150_000]
    assert (result.fetched, result.bytes_fetched) == (1, 200_000)
    assert files_under(tmp_path / "cache" / "tmp") == {}


def test_a_large_object_costs_one_request_when_no_worker_is_idle(
    ws: Workspace, tmp_path: Path
) -> None:
    bucket = ws.s3.make_bucket()
    body = os.urandom(200_000)
    entry = _pinned(ws, bucket, "big.bin", body)
    sent = _observed_gets(ws, entry)

    fetch(
        [entry],
        tmp_path / "out",
        providers=ws.context.providers,
        blobs=ws.context.blobs,
        cache=FetchCache(tmp_path / "cache"),
        jobs=1,
        parts=PartPolicy(threshold=100_000, size=32_768),
    )

    assert (tmp_path / "out" / "big.bin").read_bytes() == body
    assert [r.headers["Range"].decode() for r in sent] == ["bytes=0-199999"]


def test_a_wrong_recorded_crc32c_fails_the_parted_download(
    ws: Workspace, tmp_path: Path
) -> None:
    bucket = ws.s3.make_bucket()
    entry = _pinned(ws, bucket, "big.bin", os.urandom(100_000))
    wrong = base64.b64encode(crc32c(b"other").to_bytes(4, "big")).decode()
    entry = dataclasses.replace(entry, extra={**entry.extra, "crc32c": wrong})

    with pytest.raises(FetchError, match="crc32c") as caught:
        fetch(
            [entry],
            tmp_path / "out",
            providers=ws.context.providers,
            blobs=ws.context.blobs,
            cache=FetchCache(tmp_path / "cache"),
            parts=PartPolicy(threshold=50_000, size=20_000),
        )

    assert caught.value.exit_code == 1
    assert list((tmp_path / "out").iterdir()) == []
    assert files_under(tmp_path / "cache" / "tmp") == {}
    assert FetchCache(tmp_path / "cache").usage().objects == 0


def test_path_prefix_fetches_only_those_entries(ws: Workspace, tmp_path: Path) -> None:
    bucket = ws.s3.make_bucket()
    entries = [
        _pinned(ws, bucket, key, key.encode())
        for key in ("images/a.png", "images/b.png", "labels.csv", "images2/c.png")
    ]

    result = fetch(
        entries,
        tmp_path / "out",
        providers=ws.context.providers,
        blobs=ws.context.blobs,
        path_prefix="images/",
    )

    assert files_under(tmp_path / "out") == {
        "images/a.png": b"images/a.png",
        "images/b.png": b"images/b.png",
    }
    assert result.fetched == 2


def test_skip_missing_skips_gone_objects_and_versions_and_says_so(
    ws: Workspace, tmp_path: Path
) -> None:
    bucket = ws.s3.make_bucket()
    kept = _pinned(ws, bucket, "kept.txt", b"kept")
    gone = _pinned(ws, bucket, "gone.txt", b"gone")
    ws.s3.client.delete_object(Bucket=bucket, Key="gone.txt", VersionId=gone.version_id)
    missing_bucket = ManifestEntry(
        path="nowhere.txt", digest="e", ref=f"s3://{bucket}/never-written.txt", size=1
    )
    entries = [kept, gone, missing_bucket]

    with pytest.raises(FetchError):
        _fetch(ws, entries, tmp_path / "strict")
    result = fetch(
        entries,
        tmp_path / "out",
        providers=ws.context.providers,
        blobs=ws.context.blobs,
        skip_missing=True,
    )

    assert files_under(tmp_path / "out") == {"kept.txt": b"kept"}
    assert [path for path, _ in result.missing] == ["gone.txt", "nowhere.txt"]
    assert "no longer exists" in result.missing[0][1]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("C:\\Windows\\escape.txt", id="drive-backslash"),
        pytest.param("C:escape.txt", id="drive-relative"),
        pytest.param("\\\\server\\share\\escape.txt", id="unc"),
        pytest.param("..\\escape.txt", id="parent-backslash"),
        pytest.param("a/.. /escape.txt", id="dots-and-space"),
        pytest.param("a/.../escape.txt", id="three-dots"),
        pytest.param("//server/share/escape.txt", id="unc-slashes"),
    ],
)
def test_windows_path_forms_are_refused_on_every_platform(
    ws: Workspace, tmp_path: Path, path: str
) -> None:
    entry = ManifestEntry(path=path, digest="d", ref="s3://bucket-a/x", size=1)

    with pytest.raises(UnsafePathError):
        _fetch(ws, [entry], tmp_path / "out")

    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("data/file.txt:stream", id="alternate-stream"),
        pytest.param("data/CON", id="device"),
        pytest.param("data/nul.txt", id="device-with-extension"),
        pytest.param("data/trailing.", id="trailing-dot"),
        pytest.param("data/trailing ", id="trailing-space"),
    ],
)
def test_names_windows_misreads_are_refused_there(path: str, tmp_path: Path) -> None:
    entry = ManifestEntry(path=path, digest="d", ref="s3://bucket-a/x", size=1)

    with pytest.raises(UnsafePathError):
        plan([entry], tmp_path, windows=True)
    assert len(plan([entry], tmp_path, windows=False)) == 1


def test_paths_differing_in_case_clash_where_names_ignore_case(tmp_path: Path) -> None:
    entries = [
        ManifestEntry(path=p, digest="d", ref=f"s3://bucket-a/{p}", size=1)
        for p in ("Data/a.txt", "data/A.txt")
    ]

    with pytest.raises(UnsafePathError, match="same file"):
        plan(entries, tmp_path, case_insensitive=True)
    assert len(plan(entries, tmp_path, case_insensitive=False)) == 2


def test_a_file_that_is_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "data").mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    (root / "data" / "a.txt").symlink_to(outside)
    entries = [
        ManifestEntry(path=p, digest="d", ref=f"s3://bucket-a/{p}", size=1)
        for p in ("data/b.txt", "data/a.txt")
    ]

    with pytest.raises(UnsafePathError, match="symbolic link"):
        plan(entries, root)
    assert outside.read_bytes() == b"keep me"


def test_a_symlink_that_stays_inside_the_folder_is_allowed(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real")
    entry = ManifestEntry(path="alias/a.txt", digest="d", ref="s3://bucket-a/a", size=1)

    [target] = plan([entry], root)

    assert target.path == root / "alias" / "a.txt"


def test_the_plan_knows_which_files_cannot_exist_yet(tmp_path: Path) -> None:
    root = tmp_path / "out"
    (root / "old").mkdir(parents=True)
    entries = [
        ManifestEntry(path=p, digest="d", ref=f"s3://bucket-a/{p}", size=1)
        for p in ("old/a.txt", "new/b.txt", "new/deeper/c.txt", "top.txt")
    ]

    targets = plan(entries, root)

    assert {t.entry.path: t.may_exist for t in targets} == {
        "old/a.txt": True,
        "new/b.txt": False,
        "new/deeper/c.txt": False,
        "top.txt": True,
    }
    assert all(not t.may_exist for t in plan(entries, tmp_path / "absent"))
