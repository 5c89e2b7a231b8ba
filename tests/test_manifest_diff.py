"""The diff of two manifests: pure on built manifests, then on logged versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refstore import Manifest, ManifestDiff, ManifestEntry
from refstore.manifest_diff import diff_manifests
from tests.helpers import Workspace

SHA_A = "a" * 64
SHA_B = "b" * 64


def ref(
    path: str,
    *,
    key: str | None = None,
    version: str | None = "v1",
    etag: str = "e1",
    size: int = 10,
    **extra: Any,
) -> ManifestEntry:
    """A reference entry to s3://b/KEY (KEY: the path unless given)."""
    fields = {"etag": etag, **extra}
    if version is not None:
        fields["versionID"] = version
    uri = f"s3://b/{key or path}"
    return ManifestEntry(path=path, digest=etag, ref=uri, size=size, extra=fields)


def copied(path: str, sha: str = SHA_A, size: int = 10) -> ManifestEntry:
    return ManifestEntry(path=path, digest=sha, size=size, extra={"sha256": sha})


def diff(old: list[ManifestEntry], new: list[ManifestEntry]) -> ManifestDiff:
    return diff_manifests(Manifest(old), Manifest(new))


def paths(entries: tuple[ManifestEntry, ...]) -> list[str]:
    return [entry.path for entry in entries]


# Pure


def test_identical_manifests_differ_in_nothing() -> None:
    entries = [ref("a.csv"), copied("prep.py")]

    result = diff(entries, list(entries))

    assert result.is_empty
    assert result.unchanged_count == 2
    assert result.differing_paths == 0
    assert result.to_dict() == {
        "counts": {"added": 0, "removed": 0, "changed": 0, "moved": 0, "unchanged": 2},
        "added": [],
        "removed": [],
        "changed": [],
        "moved": [],
    }


def test_two_empty_manifests() -> None:
    result = diff([], [])

    assert result.is_empty
    assert result.unchanged_count == 0


def test_added_and_removed_paths() -> None:
    result = diff(
        [ref("keep.csv"), ref("gone.csv", etag="e2"), copied("old.py", SHA_B)],
        [ref("keep.csv"), ref("new.csv", etag="e3"), copied("new.py")],
    )

    assert paths(result.added) == ["new.csv", "new.py"]
    assert paths(result.removed) == ["gone.csv", "old.py"]
    assert result.changed == ()
    assert result.moved == ()
    assert result.unchanged_count == 1
    assert not result.is_empty


@pytest.mark.parametrize(
    ("old", "new", "fields"),
    [
        pytest.param(ref("a", key="x"), ref("a", key="y"), ("ref",), id="ref"),
        pytest.param(ref("a", version="v1"), ref("a", version="v2"), ("version",),
                     id="object-version"),
        pytest.param(ref("a", version=None), ref("a", version="v2"), ("version",),
                     id="versioned-since"),
        pytest.param(ref("a", etag="e1"), ref("a", etag="e2"), ("etag",), id="etag"),
        pytest.param(ref("a", size=10), ref("a", size=11), ("size",), id="size"),
        pytest.param(copied("a", SHA_A), copied("a", SHA_B), ("sha256",),
                     id="copied-file-digest"),
        pytest.param(ref("a", version="v1", etag="e1", size=10),
                     ref("a", version="v2", etag="e2", size=12),
                     ("version", "etag", "size"), id="overwritten-object"),
        pytest.param(copied("a", SHA_A), ref("a", version=None, etag=SHA_A),
                     ("ref",), id="copied-file-now-a-reference"),
    ],
)  # fmt: skip
def test_what_changed_in_an_entry(
    old: ManifestEntry, new: ManifestEntry, fields: tuple[str, ...]
) -> None:
    result = diff([old, ref("same")], [new, ref("same")])

    assert [(c.path, c.fields) for c in result.changed] == [("a", fields)]
    assert (result.changed[0].old, result.changed[0].new) == (old, new)
    assert result.unchanged_count == 1
    assert result.added == result.removed == ()
    assert result.moved == ()


def test_entries_differing_in_extra_metadata_alone_are_unchanged() -> None:
    result = diff([ref("a")], [ref("a", crc32c="AAAAAA==")])

    assert result.is_empty
    assert result.unchanged_count == 1


def test_a_pinned_object_at_another_path_is_moved() -> None:
    result = diff(
        [ref("raw/a.csv", key="data/a.csv"), copied("prep.py")],
        [ref("train/a.csv", key="data/a.csv"), copied("code/prep.py")],
    )

    assert [(m.old.path, m.new.path) for m in result.moved] == [
        ("prep.py", "code/prep.py"),
        ("raw/a.csv", "train/a.csv"),
    ]
    assert result.added == result.removed == ()
    assert result.differing_paths == 4
    assert result.to_dict()["moved"][1] == {
        "from": "raw/a.csv",
        "to": "train/a.csv",
        **ref("train/a.csv", key="data/a.csv").to_dict(),
    }


def test_another_version_at_another_path_is_not_a_move() -> None:
    result = diff(
        [ref("raw/a.csv", key="data/a.csv", version="v1")],
        [ref("train/a.csv", key="data/a.csv", version="v2")],
    )

    assert result.moved == ()
    assert paths(result.added) == ["train/a.csv"]
    assert paths(result.removed) == ["raw/a.csv"]


def test_an_object_also_kept_at_its_old_path_is_added_not_moved() -> None:
    result = diff([ref("a", key="k")], [ref("a", key="k"), ref("b", key="k")])

    assert paths(result.added) == ["b"]
    assert result.moved == ()


def test_one_object_leaving_two_paths_moves_once_first_paths_first() -> None:
    result = diff(
        [ref("old-1", key="k"), ref("old-2", key="k")],
        [ref("new-2", key="k"), ref("new-1", key="k")],
    )

    assert [(m.old.path, m.new.path) for m in result.moved] == [
        ("old-1", "new-1"),
        ("old-2", "new-2"),
    ]

    fewer = diff([ref("old-1", key="k"), ref("old-2", key="k")], [ref("new", key="k")])
    assert [(m.old.path, m.new.path) for m in fewer.moved] == [("old-1", "new")]
    assert paths(fewer.removed) == ["old-2"]


def test_every_list_is_in_path_order() -> None:
    old = [ref(p) for p in ("z", "m", "c")] + [ref(p) for p in ("y", "b")]
    new = [ref(p, etag="e2") for p in ("y", "b")] + [ref(p, etag="e3") for p in "xa"]

    result = diff(old, new)

    assert paths(result.removed) == ["c", "m", "z"]
    assert paths(result.added) == ["a", "x"]
    assert [change.path for change in result.changed] == ["b", "y"]


def test_to_json_is_the_whole_diff() -> None:
    result = diff([ref("a"), ref("b")], [ref("a", etag="e2"), ref("c", etag="e3")])

    data = json.loads(result.to_json())

    assert data["counts"] == {
        "added": 1,
        "removed": 1,
        "changed": 1,
        "moved": 0,
        "unchanged": 0,
    }
    assert data["added"] == [{"path": "c", **ref("c", etag="e3").to_dict()}]
    assert data["removed"] == [{"path": "b", **ref("b").to_dict()}]
    assert data["changed"] == [
        {
            "path": "a",
            "fields": ["etag"],
            "old": ref("a").to_dict(),
            "new": ref("a", etag="e2").to_dict(),
        }
    ]


def test_a_manifest_of_200k_entries() -> None:
    count = 200_000
    old = Manifest(ref(f"data/{i:06d}.jpg", version=f"v{i}") for i in range(count))
    new = Manifest(old)
    for i in range(2000):  # overwritten
        new.entries[f"data/{i:06d}.jpg"] = ref(f"data/{i:06d}.jpg", version="w")
    for i in range(2000, 2500):  # deleted
        del new.entries[f"data/{i:06d}.jpg"]
    for i in range(2500, 2600):  # moved under another folder
        entry = new.entries.pop(f"data/{i:06d}.jpg")
        new.add(ref(f"moved/{i:06d}.jpg", key=entry.path, version=f"v{i}"))
    for i in range(count, count + 700):  # new objects
        new.add(ref(f"data/{i:06d}.jpg"))

    result = diff_manifests(old, new)

    assert result.counts() == {
        "added": 700,
        "removed": 500,
        "changed": 2000,
        "moved": 100,
        "unchanged": count - 2600,
    }
    assert result.changed[0].fields == ("version",)
    assert result.moved[0].old.path == "data/002500.jpg"
    assert result.moved[0].new.path == "moved/002500.jpg"


# Artifact.diff on logged versions (moto S3)


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(moto_s3, tmp_path / "home")
    yield workspace
    workspace.close()


def test_artifact_diff_after_the_bucket_changed(ws: Workspace) -> None:
    bucket = ws.s3.make_bucket()
    first = {key: ws.put(bucket, f"data/{key}", b"v0 " + key.encode()) for key in "abc"}
    v0 = ws.artifact()
    v0.add_reference(f"s3://{bucket}/data/")
    v0.save(project="acme/vision")
    overwritten = ws.put(bucket, "data/a", b"overwritten, longer")
    ws.s3.client.delete_object(Bucket=bucket, Key="data/b")
    ws.put(bucket, "data/d", b"new")
    v1 = ws.artifact()
    v1.add_reference(f"s3://{bucket}/data/")
    v1.save(project="acme/vision")

    result = ws.api.artifact("acme/vision/data:v0").diff(
        ws.api.artifact("acme/vision/data:latest")
    )

    assert paths(result.added) == ["d"]
    assert paths(result.removed) == ["b"]
    [change] = result.changed
    assert change.path == "a"
    assert change.fields == ("version", "etag", "size")
    assert (change.old.version_id, change.new.version_id) == (first["a"], overwritten)
    assert (change.old.size, change.new.size) == (4, 19)
    assert result.unchanged_count == 1
    assert v1.diff(v0).counts() == {
        "added": 1,
        "removed": 1,
        "changed": 1,
        "moved": 0,
        "unchanged": 1,
    }


def test_artifact_diff_with_a_draft_and_a_manifest(ws: Workspace) -> None:
    bucket = ws.s3.make_bucket()
    for key in "ab":
        ws.put(bucket, f"data/{key}", key.encode())
    logged = ws.artifact()
    logged.add_reference(f"s3://{bucket}/data/")
    logged.save(project="acme/vision")
    draft = ws.artifact()
    draft.add_reference(f"s3://{bucket}/data/", name="train")

    to_draft = logged.diff(draft)
    to_manifest = logged.diff(draft.manifest)

    assert to_draft == to_manifest
    assert [(m.old.path, m.new.path) for m in to_draft.moved] == [
        ("a", "train/a"),
        ("b", "train/b"),
    ]
    assert logged.diff(logged).is_empty
