"""The fetch cache: hits without requests, hard links, LRU eviction, safety."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refstore.artifact import Artifact
from refstore.cache import FetchCache
from refstore.fetch import fetch
from refstore.manifest import ManifestEntry
from tests.helpers import Workspace, files_under

PROJECT = "acme/cache"


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(moto_s3, tmp_path / "home")
    yield workspace
    workspace.close()


def _requests(ws: Workspace) -> int:
    return sum(ws.context.providers.requests.values())


def _logged(ws: Workspace, objects: dict[str, bytes]) -> Artifact:
    bucket = ws.s3.make_bucket()
    for key, body in objects.items():
        ws.put(bucket, f"d/{key}", body)
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/d/")
    art.save(project=PROJECT)
    return art


def test_a_cache_hit_sends_no_request_and_hard_links(
    ws: Workspace, tmp_path: Path
) -> None:
    objects = {f"{i}.bin": os.urandom(1000 + i) for i in range(6)}
    art = _logged(ws, objects)
    art.fetch(tmp_path / "one")
    before = _requests(ws)

    result = art.fetch(tmp_path / "two")

    assert _requests(ws) == before
    assert (result.fetched, result.from_cache, result.skipped) == (0, 6, 0)
    assert files_under(tmp_path / "two") == objects
    for name in objects:
        one, two = tmp_path / "one" / name, tmp_path / "two" / name
        assert one.stat().st_ino == two.stat().st_ino
        assert not two.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_copy_mode_gives_writable_files_of_their_own(
    ws: Workspace, tmp_path: Path
) -> None:
    art = _logged(ws, {"a.txt": b"alpha"})
    art.fetch(tmp_path / "one")

    result = art.fetch(tmp_path / "two", link=False)

    copied = tmp_path / "two" / "a.txt"
    assert result.from_cache == 1
    assert copied.stat().st_ino != (tmp_path / "one" / "a.txt").stat().st_ino
    copied.write_bytes(b"edited")
    assert art.fetch(tmp_path / "three").from_cache == 1
    assert (tmp_path / "three" / "a.txt").read_bytes() == b"alpha"


def test_a_write_through_a_link_never_reaches_another_fetch(
    ws: Workspace, tmp_path: Path
) -> None:
    art = _logged(ws, {"a.txt": b"the real bytes"})
    art.fetch(tmp_path / "one")
    linked = tmp_path / "one" / "a.txt"
    linked.chmod(0o644)
    # In place, as a program (or root, whom modes do not stop) could.
    with linked.open("r+b") as stream:
        stream.write(b"the fake")

    result = art.fetch(tmp_path / "two")

    assert result.fetched == 1
    assert (tmp_path / "two" / "a.txt").read_bytes() == b"the real bytes"


def test_entries_are_cached_by_version_and_etag_not_size(tmp_path: Path) -> None:
    def entry(**extra: str) -> ManifestEntry:
        return ManifestEntry(
            path="a", digest="d", ref="s3://b/a", size=4, extra=dict(extra)
        )

    keys = {
        FetchCache.key_of(entry(versionID="v1", etag="e1")),
        FetchCache.key_of(entry(versionID="v2", etag="e1")),
        FetchCache.key_of(entry(etag="e1")),
        FetchCache.key_of(entry(etag="e2")),
    }

    assert None not in keys
    assert len(keys) == 4
    assert FetchCache.key_of(entry()) is None
    assert FetchCache.key_of(entry(etag="W/weak")) is None


def test_least_recently_used_objects_are_evicted_beyond_the_limit(
    ws: Workspace, tmp_path: Path
) -> None:
    objects = {f"{i}.bin": bytes([i]) * 1000 for i in range(5)}
    art = _logged(ws, objects)
    cache = FetchCache(tmp_path / "cache")
    entries = art.manifest.sorted_entries()
    for entry in entries:
        _fetch_with(ws, [entry], tmp_path / "out", cache)
        time.sleep(0.01)
    # Using 0.bin and 1.bin makes 2.bin and 3.bin the least recently used.
    for entry in entries[:2]:
        _fetch_with(ws, [entry], tmp_path / "again", cache)
        time.sleep(0.01)

    pruned = cache.prune(3000)

    assert (pruned.removed, pruned.freed, pruned.kept_bytes) == (2, 2000, 3000)
    result = _fetch_with(ws, entries, tmp_path / "after", cache)
    assert (result.from_cache, result.fetched) == (3, 2)
    assert files_under(tmp_path / "out") == objects


def test_a_fetch_keeps_the_cache_within_its_limit(
    ws: Workspace, tmp_path: Path
) -> None:
    art = _logged(ws, {f"{i}.bin": bytes([i]) * 1000 for i in range(5)})

    _fetch_with(ws, art.manifest, tmp_path / "out", FetchCache(tmp_path / "c", 2500))

    usage = FetchCache(tmp_path / "c").usage()
    assert (usage.objects, usage.bytes) == (2, 2000)
    assert len(files_under(tmp_path / "out")) == 5


def test_the_cache_limit_comes_from_the_environment_or_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from refstore.config import Settings

    (tmp_path / "config.toml").write_text('[cache]\nmax_size = "2 KiB"\n')
    monkeypatch.setenv("REFSTORE_HOME", str(tmp_path))
    monkeypatch.delenv("REFSTORE_CACHE_MAX_BYTES", raising=False)
    assert Settings.from_env().cache_max_bytes == 2048

    monkeypatch.setenv("REFSTORE_CACHE_MAX_BYTES", "1.5GB")
    assert Settings.from_env().cache_max_bytes == 1_500_000_000


def _fetch_with(ws: Workspace, entries: Any, root: Path, cache: FetchCache) -> Any:
    return fetch(
        entries,
        root,
        providers=ws.context.providers,
        blobs=ws.context.blobs,
        cache=cache,
    )
