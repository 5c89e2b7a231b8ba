"""The verifier on every provider's real store: the same drift, the same verdicts.

Each Store of the conformance suite records four objects, then one is
overwritten, one deleted and (where the store can express it) the pinned
version of one deleted for good. Both plans must report exactly the expected
statuses: every entry checked through one listing, and every entry looked up
one by one. A store that pins no versions reports ``changed`` and
``missing``; one that records neither version nor ETag (memory://) can prove
nothing, and says ``unverifiable`` rather than guess. Shards of one flat
folder report together what one unsharded run reports.
"""

from __future__ import annotations

from typing import Any

import pytest

from refstore.manifest import Manifest, ManifestEntry, ObjectInfo
from refstore.providers.base import lists_from_key
from refstore.uri import ObjectRef
from refstore.verify import Planning, VerifyReport, verify
from tests.helpers import OneProvider
from tests.providers.stores import Store

PLANS = [
    pytest.param(Planning(page_weight=0.0), id="listing"),
    pytest.param(Planning(page_weight=1e9), id="lookups"),
]
NAMES = ["same", "overwritten", "deleted", "version-deleted"]


def statuses(report: VerifyReport) -> dict[str, str]:
    return {r.path: str(r.status) for r in report.results}


@pytest.mark.parametrize("planning", PLANS)
def test_drift_is_reported_on_every_store(store: Store, planning: Planning) -> None:
    bucket = store.make_bucket()
    refs = {
        name: store.put(bucket, f"drift/{name}.txt", b"as logged") for name in NAMES
    }
    infos = {name: store.provider.stat(ref) for name, ref in refs.items()}
    entries = [ManifestEntry.from_info(f"{n}.txt", info) for n, info in infos.items()]
    store.put(bucket, "drift/overwritten.txt", b"overwritten, and longer")
    store.delete(bucket, "drift/deleted.txt")
    expected = _expected(store, entries[0], infos)

    report = verify(
        Manifest(entries),
        providers=OneProvider(store.provider),
        keep_ok=True,
        planning=planning,
    )

    assert statuses(report) == expected


def test_an_untouched_folder_is_all_ok_on_every_store(store: Store) -> None:
    bucket = store.make_bucket()
    objects = {f"many/{i:03d}.bin": b"%d" % i for i in range(40)}
    store.put_many(bucket, objects)
    infos = [store.provider.stat(store.ref(bucket, key)) for key in objects]
    entries = [ManifestEntry.from_info(i.ref.key, i) for i in infos]
    proven = "unverifiable" if entries[0].etag is None else "ok"

    report = verify(
        Manifest(entries), providers=OneProvider(store.provider), keep_ok=True
    )

    assert set(statuses(report).values()) == {proven}
    assert report.total == 40


def test_shards_of_a_flat_folder_report_what_one_run_reports(store: Store) -> None:
    bucket = store.make_bucket()
    store.put_many(bucket, {f"flat/{i:03d}.bin": b"%d" % i for i in range(40)})
    infos = [
        store.provider.stat(store.ref(bucket, f"flat/{i:03d}.bin")) for i in range(40)
    ]
    entries = [ManifestEntry.from_info(f"{i:03d}.bin", n) for i, n in enumerate(infos)]
    store.put(bucket, "flat/007.bin", b"overwritten, and longer")
    store.delete(bucket, "flat/031.bin")

    def run(shard: str | None) -> VerifyReport:
        source = OneProvider(store.provider)
        return verify(Manifest(entries), providers=source, shard=shard, keep_ok=True)

    whole = run(None)
    shards = [run(f"{i}/3") for i in (1, 2, 3)]

    together = [(r.path, r.status) for report in shards for r in report.results]
    assert sorted(together) == sorted((r.path, r.status) for r in whole.results)
    # memory:// records nothing to check against: no listing to split there
    if lists_from_key(store.provider) and whole.plan.listings:
        assert [report.plan.listings for report in shards] == [1, 1, 1]


def _expected(
    store: Store, sample: ManifestEntry, infos: dict[str, ObjectInfo]
) -> dict[str, str]:
    if sample.version_id is None and sample.etag is None:
        return {f"{name}.txt": "unverifiable" for name in infos}
    versioned = sample.version_id is not None
    expected = {
        "same.txt": "ok",
        "overwritten.txt": "update-available" if versioned else "changed",
        "deleted.txt": "update-available" if versioned else "missing",
        "version-deleted.txt": "ok",
    }
    if versioned and _deleted_version(store, infos["version-deleted"].ref):
        expected["version-deleted.txt"] = "missing"
    return expected


def _deleted_version(store: Any, ref: ObjectRef) -> bool:
    """Delete one pinned version for good, where the store can express it."""
    try:
        store.delete_version(ref)
    except (NotImplementedError, pytest.skip.Exception):
        return False
    return True
