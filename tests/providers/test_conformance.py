"""The provider contract, one suite for every store (see ``stores.py``).

Each test runs once per Store of ``tests/providers/conftest.py`` (moto,
LocalStack, fake-gcs-server, Azurite, the Azure protocol server, the HTTP
test server, a local folder, fsspec's memory). A case a store cannot
express skips with the Store's reason. Data is arranged through the Store,
never through the provider under test; request counts come from
``provider.requests``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from refstore.capture import capture
from refstore.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    IntegrityError,
    LimitExceededError,
    ObjectNotFoundError,
    VersionNotFoundError,
)
from refstore.manifest import ManifestEntry, ObjectInfo
from refstore.providers.base import Provider, lists_from_key
from refstore.uri import ObjectRef
from tests.providers.stores import Store, capability, checksums, page_size

PAGED = 1001  # more than one listing page of S3 and GCS (1000 entries each)


def require(store: Store, *capabilities: str) -> None:
    """Skip unless ``store`` can express every case in ``capabilities``."""
    for name in capabilities:
        reason = capability(store, name)
        if reason is not None:
            pytest.skip(f"{store.name}: {reason}")


def require_key_start(store: Store) -> None:
    """Skip unless the store's listing can start after a key."""
    require(store, "no_listing")
    if not lists_from_key(store.provider):
        pytest.skip(f"{store.name}: its listing cannot start from a key")


def read_all(provider: Provider, info: ObjectInfo, **span: int) -> bytes:
    with provider.read(info, **span) as stream:
        return stream.read()


def paths(captured: list[tuple[str, ObjectInfo]]) -> list[str]:
    return [path for path, _ in captured]


def unpinned(info: ObjectInfo) -> ObjectInfo:
    return dataclasses.replace(info, ref=info.ref.with_version(None))


def has_versions(store: Store) -> bool:
    return capability(store, "no_versions") is None


def _crc32c(data: bytes) -> bytes:
    google_crc32c = pytest.importorskip("google_crc32c")
    value: int = google_crc32c.value(data)
    return value.to_bytes(4, "big")


_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "md5": lambda data: hashlib.md5(data).digest(),
    "sha1": lambda data: hashlib.sha1(data).digest(),
    "sha256": lambda data: hashlib.sha256(data).digest(),
    "crc32": lambda data: zlib.crc32(data).to_bytes(4, "big"),
    "crc32c": _crc32c,
}


def assert_checksums_match(info: ObjectInfo, data: bytes) -> None:
    """Every checksum with a known algorithm matches ``data`` (hex or base64)."""
    for algorithm, value in info.checksums.items():
        digest = _DIGESTS.get(algorithm)
        if digest is None:
            continue
        raw = digest(data)
        accepted = {raw.hex(), base64.b64encode(raw).decode()}
        assert value in accepted, f"{algorithm} {value} is not a checksum of the bytes"


# The contract itself


def test_provider_follows_the_protocol(store: Store) -> None:
    ref = store.ref(store.make_bucket(), "k")

    assert isinstance(store.provider, Provider)
    assert ref.scheme in store.provider.schemes


# One object


def test_single_object(store: Store) -> None:
    bucket = store.make_bucket()
    put = store.put(bucket, "data/hello.txt", b"hello world")

    info = store.provider.stat(store.ref(bucket, "data/hello.txt"))

    assert info.ref.key == put.key
    assert info.size == 11
    assert info.version_id == put.version
    assert (info.version_id is not None) == has_versions(store)
    if capability(store, "no_etag") is None:
        assert info.etag
    assert set(checksums(store)) <= set(info.checksums)
    assert_checksums_match(info, b"hello world")
    if info.last_modified is not None:
        assert info.last_modified.utcoffset() is not None
        assert info.last_modified.utcoffset().total_seconds() == 0
    assert 1 <= store.provider.requests.total() <= 2


def test_capture_single_object(store: Store) -> None:
    bucket = store.make_bucket()
    put = store.put(bucket, "data/file.csv", b"a,b\n")

    ((path, info),) = capture(store.ref(bucket, "data/file.csv"), store.provider)
    entry = ManifestEntry.from_info(path, info)

    assert path == "file.csv"
    assert (info.size, info.version_id) == (4, put.version)
    assert entry.ref == put.with_version(None).uri
    assert entry.version_id == put.version
    assert entry.etag == info.etag
    assert entry.digest == (info.etag or info.checksums.get("sha256") or entry.ref)


# Prefixes


def test_capture_prefix(store: Store) -> None:
    require(store, "no_listing")
    bucket = store.make_bucket()
    objects = {"data/a.csv": b"a", "data/sub/b.csv": b"bb", "other/c.csv": b"c"}
    store.put_many(bucket, objects)

    captured = capture(store.ref(bucket, "data/"), store.provider)

    assert paths(captured) == ["a.csv", "sub/b.csv"]
    info = dict(captured)["sub/b.csv"]
    assert info.ref.key == store.ref(bucket, "data/sub/b.csv").key
    assert info.size == 2
    assert_checksums_match(info, b"bb")
    assert all((i.version_id is not None) == has_versions(store) for _, i in captured)


@pytest.mark.parametrize(
    "written", [pytest.param("data", id="no-slash"), pytest.param("data/", id="slash")]
)
def test_sibling_prefix_is_not_captured(store: Store, written: str) -> None:
    require(store, "no_listing")
    bucket = store.make_bucket()
    keys = ["data/a.csv", "data2/x.csv", "data.csv", "dataset/y.csv"]
    store.put_many(bucket, {key: key.encode() for key in keys})

    captured = capture(store.ref(bucket, written), store.provider)

    assert paths(captured) == ["a.csv"]


def test_scan_uses_the_prefix_as_given(store: Store) -> None:
    require(store, "no_listing")
    bucket = store.make_bucket()
    store.put_many(bucket, {"data/x": b"x", "data2/y": b"y", "data.csv": b"z"})

    folder = [i.ref.key for i in store.provider.scan(store.ref(bucket, "data/"))]
    bare = [i.ref.key for i in store.provider.scan(store.ref(bucket, "data"))]

    key = store.ref(bucket, "").key
    assert folder == [key + "data/x"]
    assert sorted(bare) == [key + "data.csv", key + "data/x", key + "data2/y"]


def test_scan_is_lazy(store: Store) -> None:
    require(store, "no_listing")
    bucket = store.make_bucket()
    store.put(bucket, "a", b"a")

    listing = store.provider.scan(store.ref(bucket, ""))
    before = store.provider.requests.total()
    first = next(listing)

    assert before == 0
    assert first.ref.key == store.ref(bucket, "a").key
    assert store.provider.requests.total() >= 1


def test_scan_versions_lists_old_versions(store: Store) -> None:
    require(store, "no_listing", "no_versions", "no_version_listing")
    bucket = store.make_bucket()
    a1 = store.put(bucket, "a", b"1")
    a2 = store.put(bucket, "a", b"22")
    b1 = store.put(bucket, "b", b"3")
    store.delete(bucket, "b")

    listed = list(store.provider.scan(store.ref(bucket, ""), versions=True))

    versions = {
        (i.ref.key, i.version_id, i.is_latest) for i in listed if not i.is_delete_marker
    }
    assert (a1.key, a1.version, False) in versions
    assert (a2.key, a2.version, True) in versions
    assert (b1.key, b1.version, False) in versions
    live = [i for i in listed if i.is_latest and not i.is_delete_marker]
    assert [i.ref.key for i in live] == [a2.key]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param("data/b", ["data/b-c", "data/b0/x", "data/c"], id="existing-key"),
        pytest.param("data/bb", ["data/c"], id="absent-key"),
        pytest.param("data/c", [], id="last-key"),
        pytest.param(
            "a",
            ["data/a", "data/b", "data/b-c", "data/b0/x", "data/c"],
            id="before-the-prefix",
        ),
    ],
)
def test_scan_starts_after_a_key(store: Store, after: str, expected: list[str]) -> None:
    require_key_start(store)
    bucket = store.make_bucket()
    keys = ["data/a", "data/b", "data/b-c", "data/b0/x", "data/c", "more/x"]
    store.put_many(bucket, {key: key.encode() for key in keys})
    start_after = store.ref(bucket, after).key

    listed = store.provider.scan(store.ref(bucket, "data/"), start_after=start_after)

    assert [i.ref.key for i in listed] == [store.ref(bucket, k).key for k in expected]


def test_scan_versions_starts_after_every_version_of_a_key(store: Store) -> None:
    require_key_start(store)
    require(store, "no_versions", "no_version_listing")
    bucket = store.make_bucket()
    store.put(bucket, "a", b"a1")
    store.put(bucket, "b", b"b1")
    store.put(bucket, "b", b"b22")
    store.delete(bucket, "b")
    c1 = store.put(bucket, "c", b"c1")
    store.delete(bucket, "c")
    c2 = store.put(bucket, "c", b"c22")
    d1 = store.put(bucket, "d", b"d1")
    boundary = store.ref(bucket, "b").key

    listed = list(
        store.provider.scan(store.ref(bucket, ""), versions=True, start_after=boundary)
    )

    keys = [i.ref.key for i in listed]
    assert keys == sorted(keys), "a scan is in key order"
    assert set(keys) == {c1.key, d1.key}
    versions = {(i.ref.key, i.version_id, i.is_latest) for i in listed}
    assert {(c1.key, c1.version, False), (c2.key, c2.version, True)} <= versions
    assert (d1.key, d1.version, True) in versions
    markers = [i for i in listed if i.is_delete_marker]
    assert all(i.ref.key == c1.key and not i.is_latest for i in markers)


# Versions, overwrites, deletes


def test_pinned_version(store: Store) -> None:
    require(store, "no_versions")
    bucket = store.make_bucket()
    first = store.put(bucket, "model.bin", b"one")
    store.put(bucket, "model.bin", b"the second")

    old = store.provider.stat(first)
    latest = store.provider.stat(store.ref(bucket, "model.bin"))
    ((_, captured),) = capture(first, store.provider)

    assert (old.size, old.version_id) == (3, first.version)
    assert_checksums_match(old, b"one")
    assert latest.size == 10
    assert latest.version_id != first.version
    if old.etag is not None:
        assert old.etag != latest.etag
    assert (captured.version_id, captured.etag) == (first.version, old.etag)
    assert read_all(store.provider, old) == b"one"


def test_overwritten_object_captures_latest_version(store: Store) -> None:
    require(store, "no_listing")
    bucket = store.make_bucket()
    store.put(bucket, "data/k.txt", b"first")
    latest = store.put(bucket, "data/k.txt", b"second and last")

    ((path, info),) = capture(store.ref(bucket, "data/"), store.provider)

    assert path == "k.txt"
    assert (info.size, info.version_id) == (15, latest.version)
    assert_checksums_match(info, b"second and last")
    assert info.etag == store.provider.stat(store.ref(bucket, "data/k.txt")).etag


def test_deleted_object_is_gone(store: Store) -> None:
    bucket = store.make_bucket()
    store.put(bucket, "data/gone.txt", b"was here")
    store.delete(bucket, "data/gone.txt")
    ref = store.ref(bucket, "data/gone.txt")

    with pytest.raises(ObjectNotFoundError) as caught:
        store.provider.stat(ref)
    assert not isinstance(caught.value, VersionNotFoundError)
    with pytest.raises(ObjectNotFoundError):
        capture(ref, store.provider)


def test_deleted_object_is_not_captured(store: Store) -> None:
    require(store, "no_listing")
    bucket = store.make_bucket()
    store.put_many(bucket, {"data/kept.txt": b"k", "data/deleted.txt": b"d"})
    store.delete(bucket, "data/deleted.txt")

    captured = capture(store.ref(bucket, "data/"), store.provider)

    assert paths(captured) == ["kept.txt"]


def test_deleted_object_pinned_version_remains(store: Store) -> None:
    require(store, "no_versions")
    bucket = store.make_bucket()
    first = store.put(bucket, "gone.txt", b"was here")
    store.delete(bucket, "gone.txt")

    info = store.provider.stat(first)

    assert (info.size, info.version_id) == (8, first.version)
    assert read_all(store.provider, info) == b"was here"


def test_zero_byte_object(store: Store) -> None:
    bucket = store.make_bucket()
    store.put(bucket, "data/empty", b"")

    info = store.provider.stat(store.ref(bucket, "data/empty"))

    assert info.size == 0
    assert_checksums_match(info, b"")
    assert read_all(store.provider, info) == b""
    if capability(store, "no_listing") is None:
        captured = capture(store.ref(bucket, "data/"), store.provider)
        assert [(path, i.size) for path, i in captured] == [("empty", 0)]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("data/with space.txt", id="space"),
        pytest.param("dätä/naïve file.csv", id="accents"),
        pytest.param("data/日本語.bin", id="cjk"),
        pytest.param("data/plus+and%20percent.txt", id="plus-percent"),
    ],
)
def test_unusual_keys(store: Store, key: str) -> None:
    bucket = store.make_bucket()
    store.put(bucket, key, key.encode())
    ref = store.ref(bucket, key)

    info = store.provider.stat(ref)

    assert info.ref.key == ref.key
    assert info.size == len(key.encode())
    assert read_all(store.provider, info) == key.encode()
    if capability(store, "no_listing") is None:
        folder = key.partition("/")[0] + "/"
        captured = capture(store.ref(bucket, folder), store.provider)
        assert paths(captured) == [key.partition("/")[2]]
        assert captured[0][1].ref.key == ref.key


# Listing cost and limits


def test_capture_pages_past_1000_objects(store: Store) -> None:
    require(store, "no_listing")
    bucket = store.make_bucket()
    store.put_many(bucket, {f"data/{n:05d}.txt": b"x" for n in range(PAGED)})

    captured = capture(store.ref(bucket, "data/"), store.provider)

    assert len(captured) == PAGED
    assert (paths(captured)[0], paths(captured)[-1]) == ("00000.txt", "01000.txt")
    counts = store.provider.requests.snapshot()
    assert sum(counts.values()) <= 10, f"one request per object? {counts}"
    size = page_size(store)
    if size is not None:
        assert sum(counts.values()) >= math.ceil(PAGED / size), counts


@pytest.mark.parametrize("versions", [False, True], ids=["latest", "versions"])
def test_scan_from_a_key_reads_only_the_pages_after_it(
    store: Store, versions: bool
) -> None:
    require_key_start(store)
    bucket = store.make_bucket()
    store.put_many(bucket, {f"data/{n:05d}.txt": b"x" for n in range(PAGED)})
    start_after = store.ref(bucket, f"data/{PAGED - 2:05d}.txt").key

    listing = store.provider.scan(
        store.ref(bucket, "data/"), versions=versions, start_after=start_after
    )
    listed = [i.ref.key for i in listing]

    assert listed == [store.ref(bucket, f"data/{PAGED - 1:05d}.txt").key]
    counts = store.provider.requests.snapshot()
    assert sum(counts.values()) == 1, f"the listing started at the key? {counts}"


@pytest.mark.parametrize(
    ("limit", "fits"),
    [pytest.param(3, False, id="over-limit"), pytest.param(4, True, id="at-limit")],
)
def test_max_objects(store: Store, limit: int, fits: bool) -> None:
    require(store, "no_listing")
    bucket = store.make_bucket()
    store.put_many(bucket, {f"data/{n}": b"n" for n in range(4)})
    ref = store.ref(bucket, "data/")

    if fits:
        assert len(capture(ref, store.provider, max_objects=limit)) == 4
        return
    with pytest.raises(
        LimitExceededError, match="more than 3 objects; raise max_objects"
    ):
        capture(ref, store.provider, max_objects=limit)


# Reads


def test_read_at_version(store: Store) -> None:
    require(store, "no_versions")
    bucket = store.make_bucket()
    first = store.put(bucket, "k.txt", b"old bytes")
    store.put(bucket, "k.txt", b"new bytes, longer")

    old = store.provider.stat(first)
    new = store.provider.stat(store.ref(bucket, "k.txt"))

    assert read_all(store.provider, old) == b"old bytes"
    assert read_all(store.provider, new) == b"new bytes, longer"


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        pytest.param({"start": 1, "end": 4}, b"123", id="start-end"),
        pytest.param({"start": 7}, b"789", id="start-only"),
        pytest.param({"end": 2}, b"01", id="end-only"),
        pytest.param({"start": 3, "end": 3}, b"", id="empty"),
        pytest.param({"start": 8, "end": 50}, b"89", id="past-the-end"),
    ],
)
def test_read_range(store: Store, span: dict[str, int], expected: bytes) -> None:
    bucket = store.make_bucket()
    store.put(bucket, "digits", b"0123456789")
    info = store.provider.stat(store.ref(bucket, "digits"))

    assert read_all(store.provider, info, **span) == expected


def test_read_with_stale_etag_is_refused(store: Store) -> None:
    require(store, "no_etag")
    bucket = store.make_bucket()
    store.put(bucket, "k.txt", b"recorded")
    info = unpinned(store.provider.stat(store.ref(bucket, "k.txt")))
    assert read_all(store.provider, info) == b"recorded"
    store.put(bucket, "k.txt", b"overwritten")

    with pytest.raises(IntegrityError):
        read_all(store.provider, info)


# Errors


def test_missing_object(store: Store) -> None:
    bucket = store.make_bucket()
    store.put(bucket, "present.txt", b"p")
    ref = store.ref(bucket, "nothing.txt")

    with pytest.raises(ObjectNotFoundError) as caught:
        store.provider.stat(ref)
    assert not isinstance(caught.value, VersionNotFoundError)
    with pytest.raises(ObjectNotFoundError):
        read_all(store.provider, ObjectInfo(ref=ref, size=1))
    with pytest.raises(ObjectNotFoundError):
        capture(ref, store.provider)


def test_missing_version(store: Store) -> None:
    require(store, "no_versions")
    bucket = store.make_bucket()
    first = store.put(bucket, "model.bin", b"v1")
    store.put(bucket, "model.bin", b"v2")
    store.delete_version(first)

    with pytest.raises(VersionNotFoundError):
        store.provider.stat(first)
    with pytest.raises(VersionNotFoundError):
        read_all(store.provider, ObjectInfo(ref=first, size=2))
    with pytest.raises(VersionNotFoundError):
        capture(first, store.provider)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda p, r: p.stat(r.child("data/x.txt")), id="stat"),
        pytest.param(lambda p, r: list(p.scan(r)), id="scan"),
        pytest.param(lambda p, r: capture(r, p), id="capture"),
        pytest.param(
            lambda p, r: read_all(p, ObjectInfo(ref=r.child("data/x.txt"), size=1)),
            id="read",
        ),
    ],
)
def test_missing_bucket(
    store: Store, call: Callable[[Provider, ObjectRef], Any]
) -> None:
    require(store, "no_missing_bucket")
    folder = store.ref(store.missing_bucket(), "data/")

    with pytest.raises(BucketNotFoundError):
        call(store.provider, folder)


def test_denied_access(store: Store) -> None:
    require(store, "no_denied_access")
    ref = store.denied_ref()

    with pytest.raises(AccessDeniedError):
        store.provider.stat(ref)
    with pytest.raises(AccessDeniedError):
        read_all(store.provider, ObjectInfo(ref=ref, size=1))
