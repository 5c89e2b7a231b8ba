"""Fetch on every store of the conformance suite (see ``stores.py``).

Exact bytes at the pinned version after an overwrite, large objects in
ranged parts, a cache hit without requests, and checksum mismatches, each on
moto, LocalStack, fake-gcs-server, Azurite, the Azure protocol server, the
HTTP test server, local files and fsspec's memory. Entries come from the
provider's own stat, as a capture would record them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from refstore.blobs import BlobStore
from refstore.cache import FetchCache
from refstore.errors import FetchError, IntegrityError
from refstore.fetch import FetchResult, PartPolicy, fetch
from refstore.manifest import ManifestEntry
from refstore.uri import ObjectRef
from tests.helpers import OneProvider, files_under
from tests.providers.stores import Store, capability
from tests.providers.test_conformance import has_versions, require

PART = 16 * 1024
POLICY = PartPolicy(threshold=2 * PART, size=PART)


def _entry(store: Store, ref: ObjectRef, path: str) -> ManifestEntry:
    return ManifestEntry.from_info(path, store.provider.stat(ref))


def _fetch(
    store: Store, entries: list[ManifestEntry], root: Path, cache: FetchCache | None
) -> FetchResult:
    return fetch(
        entries,
        root,
        providers=OneProvider(store.provider),
        blobs=BlobStore(root.parent / "blobs"),
        cache=cache,
        parts=POLICY,
    )


def _reads(store: Store, size: int) -> range:
    """How many requests a fetch of one object of ``size`` bytes may send.

    One, unless the object may be split: then idle workers take ranges off
    it, none under ``PART`` bytes, as many as they find in time.
    """
    if POLICY.splits(store.provider, size):
        return range(1, size // PART + 1)
    return range(1, 2)


def test_fetch_gives_the_pinned_bytes_after_an_overwrite(
    store: Store, tmp_path: Path
) -> None:
    require(store, "no_versions")
    bucket = store.make_bucket()
    small, big = b"old small bytes", os.urandom(5 * PART + 123)
    entries = [
        _entry(store, store.put(bucket, "d/small.txt", small), "small.txt"),
        _entry(store, store.put(bucket, "d/big.bin", big), "big.bin"),
    ]
    store.put(bucket, "d/small.txt", b"new small bytes, longer")
    store.put(bucket, "d/big.bin", os.urandom(len(big)))
    before = store.provider.requests.total()

    result = _fetch(store, entries, tmp_path / "out", FetchCache(tmp_path / "cache"))

    assert files_under(tmp_path / "out") == {"small.txt": small, "big.bin": big}
    assert store.provider.requests.total() - before - 1 in _reads(store, len(big))
    assert result.fetched == 2


def test_an_unversioned_object_changed_since_recording_is_refused(
    store: Store, tmp_path: Path
) -> None:
    if has_versions(store):
        pytest.skip(f"{store.name}: reads are pinned by version")
    require(store, "no_etag")
    bucket = store.make_bucket()
    body = os.urandom(5 * PART)
    entry = _entry(store, store.put(bucket, "d/big.bin", body), "big.bin")
    _fetch(store, [entry], tmp_path / "one", None)
    store.put(bucket, "d/big.bin", os.urandom(len(body)))

    with pytest.raises(FetchError) as caught:
        _fetch(store, [entry], tmp_path / "two", FetchCache(tmp_path / "cache"))

    assert (tmp_path / "one" / "big.bin").read_bytes() == body
    assert isinstance(caught.value.failures[0][1], IntegrityError)
    assert files_under(tmp_path / "two") == {}


def test_a_cache_hit_sends_no_request(store: Store, tmp_path: Path) -> None:
    bucket = store.make_bucket()
    objects = {"small.txt": b"small", "big.bin": os.urandom(3 * PART)}
    entries = [
        _entry(store, store.put(bucket, f"d/{name}", body), name)
        for name, body in objects.items()
    ]
    if FetchCache.key_of(entries[0]) is None:
        pytest.skip(f"{store.name}: no version or ETag pins the bytes to cache")
    cache = FetchCache(tmp_path / "cache")
    _fetch(store, entries, tmp_path / "one", cache)
    before = store.provider.requests.total()

    result = _fetch(store, entries, tmp_path / "two", cache)

    assert store.provider.requests.total() == before
    assert result.from_cache == 2
    assert files_under(tmp_path / "two") == objects


@pytest.mark.parametrize("size", [pytest.param(100, id="small"), 4 * PART + 1])
def test_a_wrong_recorded_md5_fails_the_entry_and_leaves_nothing(
    store: Store, tmp_path: Path, size: int
) -> None:
    bucket = store.make_bucket()
    entry = _entry(store, store.put(bucket, "d/f.bin", os.urandom(size)), "f.bin")
    wrong = hashlib.md5(b"other bytes").hexdigest()
    entry = dataclasses.replace(entry, extra={**entry.extra, "md5": wrong})

    with pytest.raises(FetchError, match="md5") as caught:
        _fetch(store, [entry], tmp_path / "out", FetchCache(tmp_path / "cache"))

    assert caught.value.exit_code == 1
    assert list((tmp_path / "out").iterdir()) == []
    assert FetchCache(tmp_path / "cache").usage().objects == 0
    assert FetchCache(tmp_path / "cache").usage().partial == 0


# Corruption no record can explain, per store


def test_a_wrong_body_served_over_http_is_detected(
    http_store: Any, tmp_path: Path
) -> None:
    server = http_store.server
    body = os.urandom(3 * PART)
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    server.put("b/big.bin", body, **{"Content-MD5": md5})
    entry = _entry(http_store, http_store.ref("b", "big.bin"), "big.bin")
    server.resources["b/big.bin"].body = os.urandom(len(body))  # same ETag

    with pytest.raises(FetchError, match="md5"):
        _fetch(http_store, [entry], tmp_path / "out", FetchCache(tmp_path / "c"))

    gets = [r for r in server.logged("b/big.bin") if r.method == "GET"]
    assert len(gets) in _reads(http_store, len(body))
    assert {r.headers["If-Match"] for r in gets} == {f'"{entry.etag}"'}
    starts = [
        int(r.headers["Range"].removeprefix("bytes=").split("-")[0]) for r in gets
    ]
    assert min(starts) == 0
    assert len(set(starts)) == len(starts)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_file_corrupted_behind_the_stores_back_is_detected(
    file_store: Any, tmp_path: Path
) -> None:
    bucket = file_store.make_bucket()
    ref = file_store.put(bucket, "d/f.bin", b"recorded bytes")
    entry = _entry(file_store, ref, "f.bin")
    Path(ref.key).write_bytes(b"recorded bytez")

    with pytest.raises(FetchError) as caught:
        _fetch(file_store, [entry], tmp_path / "out", FetchCache(tmp_path / "c"))

    assert isinstance(caught.value.failures[0][1], IntegrityError)
    assert capability(file_store, "no_etag") is None
    assert list((tmp_path / "out").iterdir()) == []
