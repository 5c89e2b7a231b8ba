"""Aliases, edits, deletes, TTLs and gc end to end (moto S3; embedded and service).

Time is a :class:`ManualClock` shared by the workspace's contexts, so expiry
is tested by moving it, not by waiting.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import refstore
from refstore.errors import ConflictError, NotFoundError, RefstoreError
from tests.catalog.clock import START, ManualClock
from tests.helpers import Workspace
from tests.service import workspace

PROJECT = "acme/vision"
DAY = datetime.timedelta(days=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ws(
    moto_s3: Any, tmp_path: Path, clock: ManualClock, catalog_mode: str
) -> Iterator[Workspace]:
    with workspace(catalog_mode, moto_s3, tmp_path, clock) as opened:
        yield opened


@pytest.fixture
def bucket(ws: Workspace) -> str:
    name = ws.s3.make_bucket()
    for i in range(3):
        ws.put(name, f"data/{i}.csv", f"row {i}\n".encode())
    return name


def embedded_only(catalog_mode: str) -> None:
    if catalog_mode == "service":
        pytest.skip(
            "these look into the local blob store; a service collects its own "
            "(tests/server/test_process.py)"
        )


def log(
    ws: Workspace, bucket: str, key: str, *, name: str = "data", **fields: Any
) -> refstore.Artifact:
    art = ws.artifact(name)
    art.add_reference(f"s3://{bucket}/{key}")
    for field, value in fields.items():
        setattr(art, field, value)
    return art.save(project=PROJECT)


def paths(ws: Workspace, name: str = "data") -> list[str]:
    return [a.qualified_name for a in ws.api.artifact_versions(f"{PROJECT}/{name}")]


def bucket_state(ws: Workspace, bucket: str) -> list[tuple[str, str, str]]:
    answer = ws.s3.client.list_object_versions(Bucket=bucket)
    return sorted(
        (v["Key"], v["VersionId"], v["ETag"]) for v in answer.get("Versions", [])
    )


# Aliases


def test_alias_add_move_remove(ws: Workspace, bucket: str) -> None:
    log(ws, bucket, "data/0.csv")
    log(ws, bucket, "data/1.csv")

    ws.api.add_alias(f"{PROJECT}/data:v0", "prod")
    with pytest.raises(ConflictError, match="already names v0"):
        ws.api.add_alias(f"{PROJECT}/data:v1", "prod")
    moved = ws.api.move_alias(f"{PROJECT}/data:v1", "prod")
    assert (moved.version, moved.aliases) == ("v1", ["latest", "prod"])
    with pytest.raises(ConflictError, match="newest version"):
        ws.api.move_alias(f"{PROJECT}/data:v0", "latest")

    after = ws.api.remove_alias(f"{PROJECT}/data:prod", "prod")

    assert after.aliases == ["latest"]
    with pytest.raises(NotFoundError, match="no alias 'prod'"):
        ws.api.artifact(f"{PROJECT}/data:prod")


def test_aliases_edited_on_the_artifact(ws: Workspace, bucket: str) -> None:
    log(ws, bucket, "data/0.csv")
    v1 = log(ws, bucket, "data/1.csv")

    v1.aliases.append("best")
    v1.save()
    v0 = ws.api.artifact(f"{PROJECT}/data:v0")
    v0.aliases.append("best")
    v0.save()

    assert ws.api.artifact(f"{PROJECT}/data:best").version == "v0"
    assert ws.api.artifact(f"{PROJECT}/data:v1").aliases == ["latest"]
    v0.aliases.remove("best")
    v0.save()
    assert ws.api.artifact(f"{PROJECT}/data:v0").aliases == []


# Edits and deletes


def test_metadata_description_and_tags_editable_after_logging(
    ws: Workspace, bucket: str
) -> None:
    art = log(ws, bucket, "data/", metadata={"source": "crawl"})
    manifest = art.manifest.to_dict()
    digest = art.digest

    loaded = ws.api.artifact(f"{PROJECT}/data:latest")
    loaded.description = "three rows"
    loaded.metadata["rows"] = 3
    loaded.tags.extend(["clean", "eu"])
    loaded.save()

    again = ws.api.artifact(f"{PROJECT}/data:v0")
    assert again.description == "three rows"
    assert again.metadata == {"source": "crawl", "rows": 3}
    assert again.tags == ["clean", "eu"]
    assert again.digest == digest
    assert again.manifest.to_dict() == manifest
    assert paths(ws) == [f"{PROJECT}/data:v0"]
    with pytest.raises(ConflictError, match="cannot change"):
        again.add_reference(f"s3://{bucket}/data/0.csv")


def test_delete_refuses_while_aliases_remain(ws: Workspace, bucket: str) -> None:
    log(ws, bucket, "data/0.csv")
    art = ws.api.add_alias(f"{PROJECT}/data:v0", "prod")

    with pytest.raises(ConflictError, match="still has the aliases prod"):
        art.delete()
    assert paths(ws) == [f"{PROJECT}/data:v0"]

    art.delete(delete_aliases=True)

    assert paths(ws) == []
    with pytest.raises(NotFoundError):
        ws.api.artifact(f"{PROJECT}/data:prod")


def test_deleting_the_newest_moves_latest(ws: Workspace, bucket: str) -> None:
    log(ws, bucket, "data/0.csv")
    newest = log(ws, bucket, "data/1.csv")

    newest.delete()

    assert ws.api.artifact(f"{PROJECT}/data:latest").version == "v0"
    assert log(ws, bucket, "data/2.csv").version == "v2"


# TTL


def test_ttl_expiry_with_a_controllable_clock(
    ws: Workspace, bucket: str, clock: ManualClock
) -> None:
    short = log(ws, bucket, "data/0.csv", ttl=DAY)
    assert short.expires_at == START + DAY
    forever = log(ws, bucket, "data/1.csv", name="kept", ttl=None)

    clock.advance(hours=23)
    assert paths(ws) == [f"{PROJECT}/data:v0"]
    clock.advance(hours=1)

    assert paths(ws) == []
    with pytest.raises(NotFoundError, match="expired"):
        ws.api.artifact(f"{PROJECT}/data:v0")
    assert ws.api.artifact(f"{PROJECT}/kept:latest").expires_at is None
    assert forever.ttl is None


def test_project_default_ttl_and_inherit(
    ws: Workspace, bucket: str, clock: ManualClock
) -> None:
    inherits = log(ws, bucket, "data/0.csv")
    assert inherits.ttl is refstore.INHERIT
    own = log(ws, bucket, "data/0.csv", name="own", ttl=10 * DAY)

    ws.api.set_project_ttl(PROJECT, 2 * DAY)

    assert ws.api.project_ttl(PROJECT) == 2 * DAY
    assert ws.api.artifact(f"{PROJECT}/data:v0").expires_at == START + 2 * DAY
    assert ws.api.artifact(f"{PROJECT}/own:v0").expires_at == START + 10 * DAY
    clock.advance(days=3)
    assert paths(ws) == []
    assert paths(ws, "own") == [own.qualified_name]


def test_ttl_set_on_a_logged_version(ws: Workspace, bucket: str) -> None:
    art = log(ws, bucket, "data/0.csv", ttl=None)

    art.ttl = 7 * DAY
    art.save()

    assert ws.api.artifact(f"{PROJECT}/data:v0").expires_at == START + 7 * DAY
    with pytest.raises(RefstoreError, match="not a TTL"):
        art.ttl = 7  # type: ignore[assignment]


# gc


def test_gc_deletes_expired_versions_and_their_blobs_only(
    ws: Workspace, bucket: str, tmp_path: Path, clock: ManualClock, catalog_mode: str
) -> None:
    embedded_only(catalog_mode)
    notes = tmp_path / "notes.txt"
    notes.write_text("only in the expiring version\n")
    shared = tmp_path / "shared.txt"
    shared.write_text("in both versions\n")
    expiring = ws.artifact("mixed")
    expiring.add_reference(f"s3://{bucket}/data/")
    expiring.add_file(notes)
    expiring.add_file(shared)
    expiring.ttl = DAY
    expiring.save(project=PROJECT)
    kept = ws.artifact("other")
    kept.add_reference(f"s3://{bucket}/data/0.csv")
    kept.add_file(shared)
    kept.save(project=PROJECT)
    blobs = ws.context.blobs
    before_bucket = bucket_state(ws, bucket)
    assert expiring._record is not None
    expired_manifest = expiring._record.manifest_blob
    only_expiring = expiring.manifest.entries["notes.txt"].digest
    in_both = expiring.manifest.entries["shared.txt"].digest
    clock.advance(days=2)

    dry = ws.api.gc(dry_run=True)
    assert [r.path for r in dry.versions] == [f"{PROJECT}/mixed:v0"]
    assert sorted(dry.blobs) == sorted([expired_manifest, only_expiring])
    assert blobs.has(only_expiring)

    report = ws.api.gc()

    assert sorted(report.blobs) == sorted(dry.blobs)
    assert report.freed_bytes > 0
    assert not blobs.has(only_expiring)
    assert not blobs.has(expired_manifest)
    assert blobs.has(in_both)
    assert ws.api.artifact(f"{PROJECT}/other:v0").download(tmp_path / "out")
    assert ws.api.gc().versions == []
    # Referenced objects live in the user's bucket: gc never touches them.
    assert bucket_state(ws, bucket) == before_bucket


def test_gc_spares_young_blobs(
    ws: Workspace, tmp_path: Path, catalog_mode: str
) -> None:
    embedded_only(catalog_mode)
    stray = tmp_path / "stray.txt"
    stray.write_text("written by a save that has not logged yet\n")
    digest, _ = ws.context.blobs.put_file(stray)

    report = ws.api.gc(grace=datetime.timedelta(days=36500))

    assert report.blobs == []
    assert ws.context.blobs.has(digest)


def test_saving_edits_keeps_aliases_moved_meanwhile(ws: Workspace, bucket: str) -> None:
    log(ws, bucket, "data/0.csv")
    log(ws, bucket, "data/1.csv")
    ws.api.add_alias(f"{PROJECT}/data:v0", "best")
    stale = ws.api.artifact(f"{PROJECT}/data:v0")
    ws.api.move_alias(f"{PROJECT}/data:v1", "best")

    stale.description = "edited elsewhere"
    stale.save()

    assert ws.api.artifact(f"{PROJECT}/data:best").version == "v1"
    assert stale.aliases == []
