"""The verifier against real S3 emulators: every kind of drift, exact statuses.

Tests using ``ws`` run on moto and on LocalStack; the heavier ones (request
counts, shards, CLI) on moto only. Each drift test runs in two layouts, one
the plan checks with a listing (``dense``) and one it checks entry by entry
(``sparse``); both must give the same statuses. The plan itself is also
tested without any store, since it is computed from the manifest alone.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from refstore import verify as verify_module
from refstore.artifact import Artifact
from refstore.capture import capture
from refstore.cli import main
from refstore.config import Settings
from refstore.context import Context
from refstore.errors import ConfigError, EndpointError
from refstore.manifest import Manifest, ManifestEntry, write_json
from refstore.providers.s3 import S3Provider
from refstore.report import render_text, write_junit
from refstore.uri import ObjectRef, parse_uri
from refstore.verify import (
    EntryResult,
    Planning,
    PlanSummary,
    Shard,
    Status,
    VerifyReport,
    parse_statuses,
    verify,
    verify_manifest_file,
)
from refstore.verify_plan import (
    Census,
    KeySource,
    ListingUnit,
    Plan,
    key_ranges,
    make_plan,
)
from tests import emulators
from tests.conftest import LockedBucket, S3Env
from tests.helpers import OneProvider, Workspace

PROJECT = "acme/verify"
ENTRIES = 16
LAYOUTS = {
    "dense": lambda i: f"data/f{i:02d}.txt",  # one folder: one listing
    "sparse": lambda i: f"data/d{i:02d}/f.txt",  # one per folder: lookups
}
VIA = {"dense": "listing", "sparse": "lookup"}


@pytest.fixture
def ws(s3: S3Env, tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(s3, tmp_path / "home")
    yield workspace
    workspace.close()


@pytest.fixture
def moto_ws(moto_s3: S3Env, tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(moto_s3, tmp_path / "home")
    yield workspace
    workspace.close()


def log_artifact(
    ws: Workspace, bucket: str, keys: list[str], prefix: str = "data/"
) -> Artifact:
    """Upload one small object per key and log everything under ``prefix``."""
    objects = [(key, f"body of {key}".encode()) for key in keys]
    emulators.put_objects(ws.s3.client, bucket, objects)
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/{prefix}")
    art.save(project=PROJECT)
    return art


def layout(ws: Workspace, name: str, versioning: str | None = "Enabled") -> Any:
    """A bucket with ENTRIES objects in ``name`` layout, logged as an artifact."""
    bucket = ws.s3.make_bucket(versioning)
    keys = [LAYOUTS[name](i) for i in range(ENTRIES)]
    art = log_artifact(ws, bucket, keys)
    paths = [key.removeprefix("data/") for key in keys]
    return bucket, keys, paths, art


def statuses(report: VerifyReport) -> dict[str, str]:
    return {r.path: str(r.status) for r in report.results}


def requests(ws: Workspace) -> dict[str, int]:
    return ws.context.providers.requests


def pinned_version(art: Artifact, path: str) -> str:
    version = art.manifest.entries[path].version_id
    assert version is not None
    return version


# -- no drift ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_an_untouched_artifact_is_all_ok(ws: Workspace, name: str) -> None:
    _, _, paths, art = layout(ws, name)

    report = art.verify(keep_ok=True)

    assert statuses(report) == dict.fromkeys(paths, "ok")
    assert {r.via for r in report.results} == {VIA[name]}
    assert report.warnings == []
    assert report.exit_code() == 0
    assert report.total == ENTRIES
    assert report.complete


# -- drift, one kind per entry ---------------------------------------------------


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_drift_in_a_versioned_bucket(ws: Workspace, name: str) -> None:
    bucket, keys, paths, art = layout(ws, name)
    client = ws.s3.client
    client.put_object(Bucket=bucket, Key=keys[1], Body=b"overwritten")
    client.delete_object(Bucket=bucket, Key=keys[2])
    client.put_object(Bucket=bucket, Key=keys[3], Body=b"overwritten")
    client.delete_object(
        Bucket=bucket, Key=keys[3], VersionId=pinned_version(art, paths[3])
    )
    client.delete_object(
        Bucket=bucket, Key=keys[4], VersionId=pinned_version(art, paths[4])
    )
    client.delete_object(Bucket=bucket, Key=keys[5])
    client.delete_object(
        Bucket=bucket, Key=keys[5], VersionId=pinned_version(art, paths[5])
    )

    report = art.verify()

    assert statuses(report) == {
        paths[1]: "update-available",
        paths[2]: "update-available",
        paths[3]: "version-gone",
        paths[4]: "missing",
        paths[5]: "missing",
    }
    assert "deleted" in report.results[1].reason
    assert report.counts[Status.OK] == ENTRIES - 5
    assert report.exit_code() == 1
    assert report.exit_code(frozenset({Status.UNVERIFIABLE})) == 0
    assert {r.via for r in report.results} <= {VIA[name], "lookup"}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_drift_in_an_unversioned_bucket(ws: Workspace, name: str) -> None:
    bucket, keys, paths, art = layout(ws, name, versioning=None)
    ws.s3.client.put_object(Bucket=bucket, Key=keys[1], Body=b"overwritten")
    ws.s3.client.delete_object(Bucket=bucket, Key=keys[2])

    report = art.verify()

    assert statuses(report) == {paths[1]: "changed", paths[2]: "missing"}
    assert report.results[0].reason.startswith("ETag ")
    warning = (
        f"versioning is off on s3://{bucket}: an overwrite or delete loses a "
        "recorded object for good; enable versioning so that refstore can pin "
        "object versions"
    )
    assert report.warnings == [warning]
    assert report.exit_code() == 1


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_suspended_versioning_is_a_warning_and_pins_still_hold(
    ws: Workspace, name: str
) -> None:
    bucket, keys, paths, art = layout(ws, name)
    ws.s3.client.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    ws.s3.client.put_object(Bucket=bucket, Key=keys[1], Body=b"overwritten")

    report = art.verify()

    # AWS (and LocalStack) keep the pinned version when a write replaces the
    # "null" version; moto 5.2.5 drops every older version of the key.
    kept = "version-gone" if ws.s3.name == "moto" else "update-available"
    assert statuses(report) == {paths[1]: kept}
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith(f"versioning is suspended on s3://{bucket}")
    assert report.exit_code() == (1 if kept == "version-gone" else 0)


def test_lifecycle_rules_under_the_artifact_are_warnings(ws: Workspace) -> None:
    bucket, _, _, art = layout(ws, "dense")
    rules = [
        {
            "ID": "expire-old",
            "Status": "Enabled",
            "Filter": {"Prefix": "data/"},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        },
        {
            "ID": "tmp",
            "Status": "Enabled",
            "Filter": {"Prefix": "tmp/"},
            "Expiration": {"Days": 1},
        },
        {
            "ID": "everything",
            "Status": "Enabled",
            "Filter": {},
            "Expiration": {"Days": 365},
        },
        {
            "ID": "off",
            "Status": "Disabled",
            "Filter": {"Prefix": "data/"},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        },
    ]
    ws.s3.client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": rules}
    )

    report = art.verify()

    expiring_objects = (
        f"objects under s3://{bucket}/data/ expire 365 days after they are "
        "written (lifecycle rule 'everything')"
    )
    expiring_versions = (
        f"pinned versions under s3://{bucket}/data/ expire after 30 days once "
        "replaced or deleted (lifecycle rule 'expire-old')"
    )
    assert sorted(report.warnings) == [expiring_objects, expiring_versions]
    assert statuses(report) == {}
    assert report.exit_code() == 0


def test_s3_lifecycle_rules_are_read_as_refstore_sees_them(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    rule = {
        "ID": "tagged",
        "Status": "Enabled",
        "Filter": {"And": {"Prefix": "logs/", "Tags": [{"Key": "k", "Value": "v"}]}},
        "NoncurrentVersionExpiration": {
            "NoncurrentDays": 7,
            "NewerNoncurrentVersions": 2,
        },
    }
    ref = ObjectRef("s3", bucket, "")
    # moto 5.2.5 does not return NewerNoncurrentVersions.
    keeps_newer = None if s3.name == "moto" else 2
    assert s3.provider.lifecycle(ref) == []
    s3.client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [rule]}
    )

    [found] = s3.provider.lifecycle(ref)

    assert (found.prefix, found.noncurrent_days) == ("logs/", 7)
    assert found.keeps_newer == keeps_newer
    assert (found.filtered, found.current_days, found.rule_id) == (True, None, "tagged")


def test_a_missing_bucket_makes_every_entry_missing(ws: Workspace) -> None:
    entries = [
        ManifestEntry(
            path=f"{i}.txt",
            digest="e" * 32,
            ref=f"s3://gone-{i % 2}-bucket-refstore/data/{i}.txt",
            size=1,
            extra={"etag": "e" * 32},
        )
        for i in range(3)
    ]

    report = verify(Manifest(entries), providers=ws.context.providers)

    assert set(statuses(report).values()) == {"missing"}
    assert "does not exist" in report.results[0].reason


# -- entries that need no request ------------------------------------------------


def test_copied_files_are_checked_in_the_blob_store(
    moto_ws: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "keep.txt").write_text("kept")
    (tmp_path / "lose.txt").write_text("lost")
    (tmp_path / "rot.txt").write_text("rots")
    art = moto_ws.artifact()
    for name in ("keep.txt", "lose.txt", "rot.txt"):
        art.add_file(tmp_path / name)
    art.add_reference("s3://anywhere/x.txt", checksum=False)
    art.save(project=PROJECT)
    blobs = moto_ws.context.blobs
    blobs.delete(art.manifest.entries["lose.txt"].digest)
    blobs.path(art.manifest.entries["rot.txt"].digest).write_text("rotten")

    quick = art.verify()
    deep = art.verify(hash_files=True)

    assert statuses(quick) == {"lose.txt": "missing", "x.txt": "unverifiable"}
    assert statuses(deep) == {**statuses(quick), "rot.txt": "changed"}
    assert "checksum=False" in quick.results[1].reason
    assert quick.requests == {}
    assert quick.exit_code() == 1


def test_a_manifest_file_has_no_blob_store_for_its_copied_files(
    moto_ws: Workspace, tmp_path: Path
) -> None:
    entry = ManifestEntry(path="local.txt", digest="a" * 64, size=3)
    manifest = tmp_path / "manifest.json"
    with manifest.open("w") as stream:
        write_json([entry], stream)

    report = verify_manifest_file(manifest, context=moto_ws.context)

    assert statuses(report) == {"local.txt": "unverifiable"}
    assert report.exit_code() == 0


# -- W&B manifests -----------------------------------------------------------------


def wandb_manifest(ws: Workspace, tmp_path: Path) -> tuple[Path, str]:
    """A wandb_manifest.json as W&B writes it, for three objects on moto."""
    bucket = ws.s3.make_bucket()
    answers = emulators.put_objects(
        ws.s3.client,
        bucket,
        [("imgs/a.png", b"aaaa"), ("imgs/b.png", b"bbbb"), ("imgs/c.png", b"cc")],
    )
    contents: dict[str, Any] = {
        f"imgs/{name}.png": {
            "digest": answer["ETag"].strip('"'),
            "ref": f"s3://{bucket}/imgs/{name}.png",
            "extra": {
                "etag": answer["ETag"],
                "versionID": answer["VersionId"],
            },
            "size": size,
        }
        for name, answer, size in zip("abc", answers, (4, 4, 2), strict=True)
    }
    contents["imgs/unchecked.png"] = {
        "digest": f"s3://{bucket}/imgs/c.png",
        "ref": f"s3://{bucket}/imgs/c.png",
    }
    contents["config.yaml"] = {"digest": "1B2M2Y8AsgTpgAmY7PhCfg==", "size": 0}
    document = {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": contents,
    }
    path = tmp_path / "wandb_manifest.json"
    path.write_text(json.dumps(document))
    return path, bucket


def test_a_wandb_manifest_file_is_verified(moto_ws: Workspace, tmp_path: Path) -> None:
    path, bucket = wandb_manifest(moto_ws, tmp_path)
    moto_ws.s3.client.put_object(Bucket=bucket, Key="imgs/b.png", Body=b"new")

    report = verify_manifest_file(path, context=moto_ws.context, keep_ok=True)

    assert statuses(report) == {
        "config.yaml": "unverifiable",
        "imgs/a.png": "ok",
        "imgs/b.png": "update-available",
        "imgs/c.png": "ok",
        "imgs/unchecked.png": "unverifiable",
    }
    assert report.source == str(path)


# -- the plan: from the manifest alone ---------------------------------------------


WHOLE = Shard(1, 1)


def census(keys: list[str], shard: Shard = WHOLE) -> Census:
    counts = Census(shard)
    for key in keys:
        counts.add_reference(parse_uri(f"s3://bkt/{key}?versionId=v"), key)
    return counts


def always(ref: ObjectRef) -> bool:
    return True


def test_the_plan_lists_dense_folders_and_looks_up_scattered_entries() -> None:
    dense = [f"data/{i // 100:04d}/{i}.bin" for i in range(10_000)]
    scattered = [f"picks/p{i}/x.bin" for i in range(30)]

    plan = make_plan(census(dense + scattered), always)

    [unit] = plan.owned
    assert (unit.prefix.uri, unit.entries, unit.pages) == ("s3://bkt/data/", 10_000, 10)
    assert unit.versions
    assert (plan.lookups, plan.total) == (30, 10_030)
    assert plan.unit_for(parse_uri("s3://bkt/data/0042/4200.bin")) == unit
    assert plan.unit_for(parse_uri("s3://bkt/data2/x")) is None


@pytest.mark.parametrize(
    ("count", "listed"),
    [
        pytest.param(10, False, id="ten-entries-lookups"),
        pytest.param(11, True, id="eleven-entries-one-listing"),
    ],
)
def test_a_folder_is_listed_once_a_page_is_cheaper(count: int, listed: bool) -> None:
    plan = make_plan(census([f"d/{i}" for i in range(count)]), always)

    assert bool(plan.owned) is listed
    assert plan.lookups == (0 if listed else count)


@pytest.mark.parametrize(
    ("each", "listed"),
    [
        pytest.param(500, [""], id="one-page-for-both"),
        pytest.param(5000, ["a/", "b/"], id="same-pages-apart"),
    ],
)
def test_sibling_folders_merge_only_to_save_pages(each: int, listed: list[str]) -> None:
    keys = [f"{top}/{i}" for top in ("a", "b") for i in range(each)]

    plan = make_plan(census(keys), always)

    assert [unit.prefix.key for unit in plan.owned] == listed


def test_a_provider_that_cannot_list_gets_lookups_only() -> None:
    plan = make_plan(census([f"d/{i}" for i in range(500)]), lambda ref: False)

    assert (plan.owned, plan.lookups) == ([], 500)


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_cover_every_entry_exactly_once(count: int) -> None:
    keys = [f"data/{i // 1000:02d}/{i}" for i in range(6000)]
    keys += [f"picks/{i}/x" for i in range(200)] + [f"flat/{i}" for i in range(50)]
    owners: dict[str, list[int]] = {key: [] for key in keys}

    for index in range(1, count + 1):
        shard = Shard(index, count)
        plan = make_plan(census(keys, shard), always)
        mine = [key for key in keys if _owned(plan, shard, key)]
        assert plan.total == len(mine)
        for key in mine:
            owners[key].append(index)

    assert all(len(found) == 1 for found in owners.values())


def _owned(plan: Plan, shard: Shard, key: str) -> bool:
    unit = plan.unit_for(parse_uri(f"s3://bkt/{key}"))
    return plan.owns(unit) if unit is not None else shard.owns(key)


def test_shards_split_a_big_prefix_when_its_folders_fill_pages() -> None:
    keys = [f"data/{i // 1000:02d}/{i}" for i in range(6000)]

    plans = [make_plan(census(keys, Shard(i, 3)), always) for i in (1, 2, 3)]

    assert [plan.listed for plan in plans] == [2000, 2000, 2000]
    assert sum(plan.pages for plan in plans) == 6


def key_source(keys: list[str], from_key: bool = True) -> KeySource:
    refs = [parse_uri(f"s3://bkt/{key}") for key in keys]
    return KeySource(lambda ref: from_key, lambda: iter(refs))


def sharded_plans(keys: list[str], count: int, from_key: bool = True) -> list[Plan]:
    return [
        make_plan(
            census(keys, Shard(i, count)), always, None, key_source(keys, from_key)
        )
        for i in range(1, count + 1)
    ]


def test_shards_split_a_flat_folder_by_key_range() -> None:
    keys = [f"flat/{i:04d}.bin" for i in range(1000)]

    plans = sharded_plans(keys, 4)

    assert [plan.listed for plan in plans] == [250, 250, 250, 250]
    units = [unit for plan in plans for unit in plan.owned]
    assert [(u.start_after, u.end) for u in units] == [
        (None, "flat/0249.bin"),
        ("flat/0249.bin", "flat/0499.bin"),
        ("flat/0499.bin", "flat/0749.bin"),
        ("flat/0749.bin", None),
    ]
    assert sum(plan.pages for plan in plans) == 4  # one page each: 250 keys
    assert plans[2].unit_for(parse_uri("s3://bkt/flat/0500.bin")) == units[2]
    assert plans[2].unit_for(parse_uri("s3://bkt/flat/0499.bin")) == units[1]


def test_key_ranges_are_the_same_on_every_shard() -> None:
    keys = [f"flat/{i:04d}.bin" for i in range(1000)]
    shuffled = keys[1::2] + keys[::2]  # pass order does not matter

    first = make_plan(census(keys, Shard(1, 3)), always, None, key_source(keys))
    again = make_plan(census(keys, Shard(3, 3)), always, None, key_source(shuffled))

    for key in keys:
        ref = parse_uri(f"s3://bkt/{key}")
        mine, theirs = first.unit_for(ref), again.unit_for(ref)
        assert mine is not None
        assert theirs is not None
        assert (mine.shard, mine.start_after, mine.end) == (
            theirs.shard,
            theirs.start_after,
            theirs.end,
        )


ODD_LAYOUTS = {
    "flat": [f"f/{i}" for i in range(997)],
    "skewed": [f"big/{i:05d}" for i in range(900)] + [f"s{i}/x" for i in range(40)],
    "repeated-keys": [f"r/{i // 7:03d}" for i in range(700)],  # 7 entries a key
    "nested": [f"n/{i % 3}/{i}" for i in range(600)]
    + [f"n/top{i}" for i in range(300)],
    "few": [f"few/{i}" for i in range(5)],
}


@pytest.mark.parametrize("count", range(1, 8))
@pytest.mark.parametrize("layout", list(ODD_LAYOUTS))
def test_key_ranges_cover_every_entry_exactly_once(layout: str, count: int) -> None:
    keys = ODD_LAYOUTS[layout]
    paths = [f"{key}#{n}" for n, key in enumerate(keys)]  # repeated keys, own paths
    owners: dict[str, list[int]] = {path: [] for path in paths}

    for index in range(1, count + 1):
        shard = Shard(index, count)
        counts = Census(shard)
        for key, path in zip(keys, paths, strict=True):
            counts.add_reference(parse_uri(f"s3://bkt/{key}?versionId=v"), path)
        plan = make_plan(counts, always, None, key_source(keys))
        mine = [p for k, p in zip(keys, paths, strict=True) if _owns(plan, k, p)]
        assert plan.total == len(mine)
        for path in mine:
            owners[path].append(index)

    assert all(len(found) == 1 for found in owners.values())


def _owns(plan: Plan, key: str, path: str) -> bool:
    unit = plan.unit_for(parse_uri(f"s3://bkt/{key}"))
    return plan.owns(unit) if unit is not None else plan.shard.owns(path)


def test_key_ranges_keep_the_entries_of_one_key_together() -> None:
    unit = ListingUnit(parse_uri("s3://bkt/r/"), 9, versions=True, pages=1)
    keys = ["r/a"] * 6 + ["r/b", "r/c", "r/d"]

    ranges = key_ranges(unit, keys, 3)

    assert [(r.start_after, r.end, r.entries) for r in ranges] == [
        (None, "r/a", 6),
        ("r/a", "r/c", 2),
        ("r/c", None, 1),
    ]


def test_a_store_that_cannot_list_from_a_key_lists_a_flat_folder_on_one_shard() -> None:
    keys = [f"flat/{i:04d}.bin" for i in range(1000)]

    plans = sharded_plans(keys, 4, from_key=False)

    assert [plan.listed for plan in plans] == [0, 0, 1000, 0]


@pytest.mark.parametrize(
    "text", ["0/3", "4/3", "1/0", "a/b", "1", "1/2/3", ""], ids=repr
)
def test_a_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="shard"):
        Shard.parse(text)


def test_statuses_are_parsed_and_checked() -> None:
    assert parse_statuses("missing, changed") == {Status.MISSING, Status.CHANGED}
    with pytest.raises(ConfigError, match="version-gone"):
        parse_statuses("gone")


# -- the plan at work: requests sent ---------------------------------------------


@pytest.mark.slow
def test_a_dense_artifact_costs_listing_pages_not_heads(moto_ws: Workspace) -> None:
    bucket = moto_ws.s3.make_bucket()
    keys = [f"data/{i // 250}/{i:05d}.bin" for i in range(1001)]
    art = log_artifact(moto_ws, bucket, keys)
    before = requests(moto_ws)

    report = art.verify()

    sent = {op: n - before.get(op, 0) for op, n in requests(moto_ws).items()}
    assert report.counts[Status.OK] == 1001
    assert report.requests == {
        "GetBucketLifecycleConfiguration": 1,
        "GetBucketVersioning": 1,
        "ListObjectVersions": 2,  # 1001 versions, 1000 a page
    }
    assert {op: n for op, n in sent.items() if n} == report.requests
    assert (report.plan.listings, report.plan.pages, report.plan.lookups) == (1, 2, 0)


def test_a_sparse_artifact_costs_one_head_per_entry(moto_ws: Workspace) -> None:
    bucket = moto_ws.s3.make_bucket()
    picks = [f"data/p{i:02d}/pick.bin" for i in range(24)]
    others = [f"data/p{i:02d}/other-{j}.bin" for i in range(24) for j in range(3)]
    emulators.put_objects(moto_ws.s3.client, bucket, [(k, b"x") for k in others])
    entries = []
    for key in picks:
        moto_ws.put(bucket, key, b"pick")
        info = moto_ws.context.providers.for_scheme("s3").stat(
            ObjectRef("s3", bucket, key)
        )
        entries.append(ManifestEntry.from_info(key, info))

    report = verify(Manifest(entries), providers=moto_ws.context.providers)

    assert report.counts[Status.OK] == 24
    assert report.requests == {
        "GetBucketLifecycleConfiguration": 1,
        "GetBucketVersioning": 1,
        "HeadObject": 24,
    }


def test_a_listing_that_does_not_pay_off_is_abandoned_for_lookups(
    moto_ws: Workspace,
) -> None:
    bucket = moto_ws.s3.make_bucket()
    crowd = [(f"data/a-{i:04d}", b"x") for i in range(400)]
    emulators.put_objects(moto_ws.s3.client, bucket, crowd)
    picked = [f"data/z-{i:02d}" for i in range(12)]
    emulators.put_objects(moto_ws.s3.client, bucket, [(k, b"pick") for k in picked])
    provider = moto_ws.context.providers.for_scheme("s3")
    entries = [
        ManifestEntry.from_info(k, provider.stat(ObjectRef("s3", bucket, k)))
        for k in picked
    ]
    # Pages of 50: the listing must match an entry per 5 objects after 100.
    planning = Planning(page_size=50, page_weight=10)

    report = verify(
        Manifest(entries), providers=moto_ws.context.providers, planning=planning
    )

    assert report.plan.listings == 1
    assert report.counts[Status.OK] == 12
    assert report.requests["ListObjectVersions"] == 1
    assert report.requests["HeadObject"] == 12


def test_entries_beyond_the_buffer_are_listed_in_parts(
    moto_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = moto_ws.s3.make_bucket()
    art = log_artifact(moto_ws, bucket, [f"data/{i:03d}" for i in range(60)])
    monkeypatch.setattr(verify_module, "BUFFER_LIMIT", 25)

    report = art.verify(keep_ok=True)

    assert statuses(report) == {f"{i:03d}": "ok" for i in range(60)}
    assert report.requests["ListObjectVersions"] == 3


def test_progress_is_reported_to_the_end(moto_ws: Workspace) -> None:
    bucket = moto_ws.s3.make_bucket()
    art = log_artifact(moto_ws, bucket, [LAYOUTS["dense"](i) for i in range(20)])
    seen: list[tuple[int, int]] = []

    art.verify(progress=lambda done, total: seen.append((done, total)))

    assert seen[-1] == (20, 20)
    assert [done for done, _ in seen] == list(range(1, 21))


def test_sharded_runs_together_verify_each_entry_once(moto_ws: Workspace) -> None:
    bucket = moto_ws.s3.make_bucket()
    keys = [f"data/big/{i:03d}" for i in range(40)]
    keys += [f"data/s{i}/x" for i in range(15)]
    art = log_artifact(moto_ws, bucket, keys)
    moto_ws.s3.client.delete_object(Bucket=bucket, Key="data/big/007")

    reports = [art.verify(shard=f"{i}/3", keep_ok=True) for i in (1, 2, 3)]

    paths = [r.path for report in reports for r in report.results]
    assert sorted(paths) == sorted(k.removeprefix("data/") for k in keys)
    assert sum(report.counts[Status.UPDATE_AVAILABLE] for report in reports) == 1
    assert [str(report.shard) for report in reports] == ["1/3", "2/3", "3/3"]


@pytest.mark.slow
def test_shards_split_a_flat_folder_of_objects_by_key_range(moto_ws: Workspace) -> None:
    bucket = moto_ws.s3.make_bucket()
    keys = [f"flat/{i:04d}.bin" for i in range(2000)]
    emulators.put_objects(moto_ws.s3.client, bucket, [(k, k.encode()) for k in keys])
    provider = moto_ws.context.providers.for_scheme("s3")
    entries = [
        ManifestEntry.from_info(path, info)
        for path, info in capture(ObjectRef("s3", bucket, "flat/"), provider)
    ]
    drifted = next(e for e in entries if e.path == "1234.bin")
    assert drifted.version_id is not None
    client = moto_ws.s3.client
    client.delete_object(
        Bucket=bucket, Key="flat/1234.bin", VersionId=drifted.version_id
    )
    client.put_object(Bucket=bucket, Key="flat/1234.bin", Body=b"rewritten")

    def run(shard: str | None) -> VerifyReport:
        source = moto_ws.context.providers
        return verify(Manifest(entries), providers=source, shard=shard, keep_ok=True)

    whole = run(None)
    shards = [run(f"{i}/4") for i in range(1, 5)]

    assert whole.requests["ListObjectVersions"] == 2  # 2000 versions, 1000 a page
    listings = [report.requests.get("ListObjectVersions") for report in shards]
    assert listings == [1, 1, 1, 1]  # each from its own start key, no page more
    assert [report.plan.listed for report in shards] == [500, 500, 500, 500]
    assert all("HeadObject" not in report.requests for report in shards)
    paths = sorted(r.path for report in shards for r in report.results)
    assert paths == sorted(entry.path for entry in entries)
    problems = [
        (str(report.shard), r.path, r.status)
        for report in shards
        for r in report.problems
    ]
    assert problems == [("3/4", "1234.bin", Status.VERSION_GONE)]
    assert [(r.path, r.status) for r in whole.problems] == [
        ("1234.bin", Status.VERSION_GONE)
    ]


# -- listings that do not show everything -------------------------------------------


class LiveOnlyListing:
    """The real S3 provider, listing live objects only (as some emulators do).

    It says so, as such a provider must: ``lists_noncurrent_versions`` is
    not set, so nothing absent from its listings may be declared gone.
    """

    schemes = ("s3",)
    lists_noncurrent_versions = False

    def __init__(self, provider: S3Provider) -> None:
        self._provider = provider
        self.requests = provider.requests

    def scan(
        self,
        prefix: ObjectRef,
        *,
        versions: bool = False,
        start_after: str | None = None,
    ) -> Iterator[Any]:
        listing = self._provider.scan(
            prefix, versions=versions, start_after=start_after
        )
        return (info for info in listing if info.is_latest)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)


def test_a_listing_without_noncurrent_versions_never_declares_them_gone(
    moto_ws: Workspace,
) -> None:
    _, keys, paths, art = layout(moto_ws, "dense")
    client = moto_ws.s3.client
    bucket = parse_uri(art.manifest.entries[paths[0]].ref or "").bucket
    client.put_object(Bucket=bucket, Key=keys[1], Body=b"overwritten")
    client.put_object(Bucket=bucket, Key=keys[2], Body=b"overwritten")
    client.delete_object(
        Bucket=bucket, Key=keys[2], VersionId=pinned_version(art, paths[2])
    )
    source = OneProvider(LiveOnlyListing(moto_ws.s3.provider))

    report = verify(Manifest(art.manifest), providers=source, keep_ok=True)

    assert {p: s for p, s in statuses(report).items() if s != "ok"} == {
        paths[1]: "update-available",
        paths[2]: "version-gone",
    }
    assert [r.via for r in report.problems] == ["lookup", "lookup"]
    assert report.requests["ListObjectVersions"] == 1


# -- reports --------------------------------------------------------------------


def test_the_junit_report_has_one_case_per_entry(
    moto_ws: Workspace, tmp_path: Path
) -> None:
    bucket, keys, paths, art = layout(moto_ws, "dense", versioning=None)
    moto_ws.s3.client.put_object(Bucket=bucket, Key=keys[3], Body=b"<&\x01>")
    moto_ws.s3.client.delete_object(Bucket=bucket, Key=keys[4])
    report = art.verify(keep_ok=True)
    junit = tmp_path / "out" / "verify.xml"

    write_junit(report, junit)

    root = ET.parse(junit).getroot()
    [suite] = root
    assert (root.tag, suite.tag) == ("testsuites", "testsuite")
    assert suite.get("name") == art.qualified_name
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": str(ENTRIES),
        "failures": "2",
        "errors": "0",
        "skipped": "0",
    }
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert sorted(cases) == sorted(paths)
    changed = cases[paths[3]].find("failure")
    missing = cases[paths[4]].find("failure")
    assert changed is not None
    assert missing is not None
    assert (changed.get("type"), missing.get("type")) == ("changed", "missing")
    assert changed.get("message", "").startswith("changed: ETag ")
    assert len(cases[paths[0]]) == 0
    warnings = [p.get("value") for p in suite.iter("property")]
    assert warnings == report.warnings


def test_junit_maps_each_status_and_stays_valid_xml(tmp_path: Path) -> None:
    results = [
        EntryResult(f"{status}\x01.txt", status, "s3://b/k", why)
        for status in Status
        for why in ["" if status is Status.OK else f"why <{status}>"]
    ]
    counts = dict.fromkeys(Status, 1)
    plan = PlanSummary(listings=0, listed=0, pages=0, lookups=7, others=0)
    report = VerifyReport(
        "acme/p/a:v1", counts, results, ["w & <w>"], {}, 0.5, plan, Shard(2, 3), True
    )
    path = tmp_path / "junit.xml"

    write_junit(report, path, fail_on=frozenset({Status.MISSING, Status.CHANGED}))

    suite = ET.parse(path).getroot()[0]
    totals = [suite.get(k) for k in ("tests", "failures", "errors", "skipped")]
    assert totals == ["7", "2", "1", "1"]
    outcome = {
        case.get("name"): [child.tag for child in case]
        for case in suite.iter("testcase")
    }
    assert outcome == {
        "ok\\x01.txt": [],
        "changed\\x01.txt": ["failure"],
        "version-gone\\x01.txt": ["system-out"],  # not in this fail_on
        "missing\\x01.txt": ["failure"],
        "unverifiable\\x01.txt": ["skipped"],
        "update-available\\x01.txt": ["system-out"],
        "error\\x01.txt": ["error"],
    }
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties == {"shard": "2/3", "warning": "w & <w>"}


def test_the_text_report_lists_problems_then_a_summary(moto_ws: Workspace) -> None:
    bucket, keys, paths, art = layout(moto_ws, "dense")
    moto_ws.s3.client.put_object(Bucket=bucket, Key=keys[0], Body=b"new")

    report = art.verify()
    text = render_text(report)

    lines = text.splitlines()
    assert lines[0].split() == ["STATUS", "PATH", "REF", "REASON"]
    assert lines[1].startswith(f"update-available  {paths[0]}  s3://{bucket}/")
    assert lines[2].startswith(f"{art.qualified_name}: {ENTRIES} entries: 15 ok, ")
    assert len(lines) == 3


# -- the command line ------------------------------------------------------------------


def cli(
    home: Path, monkeypatch: pytest.MonkeyPatch, stores: str
) -> Callable[..., Result]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(stores)
    monkeypatch.setenv("REFSTORE_HOME", str(home))
    monkeypatch.delenv("REFSTORE_URL", raising=False)
    monkeypatch.delenv("REFSTORE_PROJECT", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def s3_config(endpoint: str, location: str = "s3", **extra: Any) -> str:
    options = {"endpoint_url": endpoint, "region": emulators.REGION, **extra}
    lines = [f"[stores.{json.dumps(location)}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def test_cli_exit_codes_json_junit_and_shards(
    moto_s3: S3Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = cli(tmp_path / "home", monkeypatch, s3_config(moto_s3.endpoint_url))
    bucket = moto_s3.make_bucket()
    emulators.put_objects(
        moto_s3.client, bucket, [(f"data/{i}.txt", b"x" * i) for i in range(12)]
    )
    logged = run("log", PROJECT, "things", "--type", "dataset", f"s3://{bucket}/data/")
    assert logged.exit_code == 0, logged.output

    clean = run("verify", f"{PROJECT}/things:latest")
    assert clean.exit_code == 0, clean.output
    assert clean.stdout.startswith(f"{PROJECT}/things:v0: 12 entries: 12 ok (")

    moto_s3.client.put_object(Bucket=bucket, Key="data/3.txt", Body=b"new")
    informed = run("verify", f"{PROJECT}/things:v0", "--json", "--all")
    strict = run("verify", f"{PROJECT}/things:v0", "--fail-on", "update-available")
    assert (informed.exit_code, strict.exit_code) == (0, 1)
    data = json.loads(informed.stdout)
    assert data["counts"]["update-available"] == 1
    assert data["complete"]
    assert len(data["results"]) == 12

    moto_s3.client.delete_object(
        Bucket=bucket, Key="data/5.txt", VersionId=_version_of(data, "5.txt")
    )
    junit = tmp_path / "junit.xml"
    drifted = run("verify", f"{PROJECT}/things:v0", "--junit", str(junit))
    assert drifted.exit_code == 1
    assert ["missing", "5.txt"] in [
        line.split()[:2] for line in drifted.stdout.splitlines()
    ]
    assert ET.parse(junit).getroot()[0].get("failures") == "1"

    sharded = [
        json.loads(
            run(
                "verify", f"{PROJECT}/things:v0", "--json", "--all", "--shard", f"{i}/2"
            ).stdout
        )
        for i in (1, 2)
    ]
    assert sum(len(s["results"]) for s in sharded) == 12

    bad = run("verify", f"{PROJECT}/things:v0", "--fail-on", "nope")
    assert bad.exit_code == 2
    assert "not a list of statuses" in bad.stderr


def _version_of(report: dict[str, Any], path: str) -> str:
    [found] = [r for r in report["results"] if r["path"] == path]
    return str(found["ref"]).partition("?versionId=")[2]


def test_cli_verifies_a_wandb_manifest_file(
    moto_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = wandb_manifest(moto_ws, tmp_path)
    run = cli(tmp_path / "home2", monkeypatch, s3_config(moto_ws.s3.endpoint_url))

    result = run("verify", str(path), "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["ok"] == 3


def test_cli_exits_2_when_credentials_are_rejected(
    moto_locked: LockedBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = s3_config(
        moto_locked.endpoint_url,
        f"s3://{moto_locked.bucket}",
        aws_access_key_id=moto_locked.reader_key,
        aws_secret_access_key="not-the-secret",
        max_attempts=1,
    )
    run = cli(tmp_path / "home", monkeypatch, config)
    manifest = _locked_manifest(moto_locked, tmp_path)

    result = run("verify", str(manifest))

    assert result.exit_code == 2
    assert "rejected the credentials" in result.stderr


def test_cli_exits_2_when_entries_cannot_be_read(
    moto_locked: LockedBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = s3_config(
        moto_locked.endpoint_url,
        f"s3://{moto_locked.bucket}",
        aws_access_key_id=moto_locked.reader_key,
        aws_secret_access_key=moto_locked.reader_secret,
        max_attempts=1,
    )
    run = cli(tmp_path / "home", monkeypatch, config)
    manifest = _locked_manifest(moto_locked, tmp_path)

    result = run("verify", str(manifest), "--json")

    assert result.exit_code == 2, result.output
    data = json.loads(result.stdout)
    assert data["counts"]["error"] == 2
    assert "access denied" in data["results"][0]["reason"]
    unreadable = (
        f"could not read the lifecycle rules of s3://{moto_locked.bucket} "
        "(access denied): pinned versions may be expiring unnoticed"
    )
    assert data["warnings"] == [unreadable]


def _locked_manifest(locked: LockedBucket, tmp_path: Path) -> Path:
    entries = [
        ManifestEntry(
            path=name,
            digest="0" * 32,
            ref=f"s3://{locked.bucket}/data/{name}",
            size=1,
            extra={"etag": "0" * 32},
        )
        for name in ("a.txt", "b.txt")
    ]
    path = tmp_path / "locked.json"
    with path.open("w") as stream:
        write_json(entries, stream)
    return path


def test_an_unreachable_endpoint_stops_verification(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{emulators.free_port()}"
    settings = Settings(
        home=tmp_path / "home",
        stores={"s3": {"endpoint_url": url, "region": "us-east-1", "max_attempts": 1}},
    )
    entry = ManifestEntry(
        path="a", digest="0" * 32, ref="s3://some-bucket/a", extra={"etag": "0" * 32}
    )
    context = Context(settings)

    with pytest.raises(EndpointError, match="cannot reach"):
        verify(Manifest([entry]), providers=context.providers)

    context.close()


def test_cli_exits_2_when_the_endpoint_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{emulators.free_port()}"
    run = cli(tmp_path / "home", monkeypatch, s3_config(url, max_attempts=1))
    entry = ManifestEntry(
        path="a", digest="0" * 32, ref="s3://some-bucket/a", extra={"etag": "0" * 32}
    )
    manifest = tmp_path / "m.json"
    with manifest.open("w") as stream:
        write_json([entry], stream)

    result = run("verify", str(manifest))

    assert result.exit_code == 2
    assert "cannot reach the S3 endpoint" in result.stderr
