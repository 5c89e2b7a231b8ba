"""Deleting and renaming projects in the SQL catalog, on SQLite and PostgreSQL.

The catalog is the service's (:class:`ServedCatalog`), so that the rows only
a service writes (project blobs, idempotency keys) are there to be deleted
too; rows are counted per table straight from the database.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from refstore.blobs import BlobStore
from refstore.catalog import tables
from refstore.catalog.base import NewRun, NewVersion, VersionEdit
from refstore.catalog.engine import open_engine
from refstore.catalog.served import ManifestLimits, ServedCatalog, fingerprint
from refstore.catalog.sql_access import RequestKey
from refstore.errors import ConflictError, InvalidReferenceError, NotFoundError
from refstore.gc import collect
from refstore.manifest import ManifestEntry
from tests.catalog.clock import ManualClock
from tests.server.support import (
    log,
    new_version,
    reference,
    store_file,
    stored_manifest,
)

VISION = "acme/vision"
OTHER = "acme/other"
TABLES = [
    tables.projects,
    tables.artifacts,
    tables.versions,
    tables.aliases,
    tables.version_tags,
    tables.runs,
    tables.sweeps,
    tables.lineage_edges,
    tables.project_blobs,
    tables.request_keys,
]


@pytest.fixture
def served(
    catalog_url: str, blobs: BlobStore, clock: ManualClock
) -> Iterator[ServedCatalog]:
    with ServedCatalog(catalog_url, blobs, clock) as opened:
        yield opened


def row_counts(url: str) -> dict[str, int]:
    engine, _ = open_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: conn.execute(
                    select(func.count()).select_from(table)
                ).scalar_one()
                for table in TABLES
            }
    finally:
        engine.dispose()


def seed_other(catalog: ServedCatalog) -> None:
    """A project that must come through a delete of acme/vision untouched."""
    catalog.start_run(NewRun(OTHER, "prep"), "never")
    catalog.start_run(NewRun(OTHER, "audit"), "never")
    log(catalog, OTHER, "labels", "labels v0", aliases=("gold",), run="prep")


def seed_vision(catalog: ServedCatalog) -> str:
    """Two artifacts, three versions, aliases, a tag, runs, a sweep, a key,
    lineage inside the project and across it both ways; return the digest
    of the one copied file its model holds."""
    catalog.create_sweep(VISION, "search", {"method": "grid"})
    catalog.start_run(NewRun(VISION, "train", sweep="search"), "never")
    catalog.start_run(NewRun(VISION, "eval"), "never")
    catalog.use_version(VISION, "train", OTHER, "labels", "gold")
    log(catalog, VISION, "data", "data v0", run="train")
    keyed = new_version(catalog, VISION, "data", "data v1", aliases=("best",))
    key = RequestKey("k" * 32, "alice", fingerprint(keyed))
    catalog.log_checked(keyed, key, ManifestLimits())
    copied = store_file(catalog, VISION, b"weights")
    catalog.log_checked(model_version(catalog, copied), None, ManifestLimits())
    catalog.update_version(
        VISION, "model", 0, VersionEdit(None, {}, ("eu",), None, ("prod",))
    )
    catalog.use_version(VISION, "eval", VISION, "model", "prod")
    catalog.use_version(OTHER, "audit", VISION, "data", "best")
    return copied


def model_version(catalog: ServedCatalog, copied: str) -> NewVersion:
    entries = [
        reference("config.json", "model config"),
        ManifestEntry(path="weights.bin", digest=copied, size=7),
    ]
    blob, digest, count, size = stored_manifest(catalog.blobs, entries)
    catalog.add_project_blobs(VISION, [blob])
    return NewVersion(VISION, "model", "model", digest, blob, count, size, run="train")


# Delete


def test_delete_removes_every_row_of_the_project(
    served: ServedCatalog, catalog_url: str
) -> None:
    seed_other(served)
    before = row_counts(catalog_url)
    seed_vision(served)

    served.delete_project(VISION)

    assert row_counts(catalog_url) == before
    assert [p.path for p in served.list_projects()] == [OTHER]
    assert served.get_version(OTHER, "labels", "gold").version == 0
    assert served.used_versions(OTHER, "audit") == []
    assert served.used_by(OTHER, "labels", 0) == []


def test_delete_reports_what_went(served: ServedCatalog) -> None:
    seed_other(served)
    seed_vision(served)

    report = served.delete_project(VISION)

    # Edges: train used labels, logged data:v0 and model:v0; eval used the
    # model; acme/other's audit used data:v1 (the one cross-project use).
    assert dataclasses.asdict(report) == {
        "project": VISION,
        "artifacts": 2,
        "versions": 3,
        "runs": 2,
        "sweeps": 1,
        "lineage_edges": 5,
        "cross_project_uses": 1,
        "dry_run": False,
    }


def test_a_dry_run_counts_the_same_and_deletes_nothing(
    served: ServedCatalog, catalog_url: str
) -> None:
    seed_other(served)
    seed_vision(served)
    before = row_counts(catalog_url)

    dry = served.delete_project(VISION, dry_run=True)

    assert row_counts(catalog_url) == before
    assert dry.dry_run
    real = served.delete_project(VISION)
    assert dataclasses.replace(dry, dry_run=False) == real


def test_expired_versions_go_too(served: ServedCatalog, clock: ManualClock) -> None:
    log(served, VISION, "data", "short-lived", ttl=datetime.timedelta(days=1))
    clock.advance(days=2)

    report = served.delete_project(VISION)

    assert (report.artifacts, report.versions) == (1, 1)
    assert served.expired_versions() == []


def test_deleting_a_missing_project_is_not_found(served: ServedCatalog) -> None:
    with pytest.raises(NotFoundError, match="no project acme/nothing"):
        served.delete_project("acme/nothing")
    with pytest.raises(NotFoundError):
        served.delete_project("acme/nothing", dry_run=True)


def test_gc_frees_the_blobs_only_the_deleted_project_needed(
    served: ServedCatalog, clock: ManualClock
) -> None:
    seed_other(served)
    copied = seed_vision(served)
    kept = served.get_version(OTHER, "labels", "gold").manifest_blob
    gone = [
        v.manifest_blob
        for n in ("data", "model")
        for v in served.list_versions(VISION, n)
    ]
    assert collect(served, now=clock(), grace=datetime.timedelta(0)).blobs == []

    served.delete_project(VISION)
    report = collect(served, now=clock(), grace=datetime.timedelta(0))

    assert sorted(report.blobs) == sorted([*gone, copied])
    assert report.versions == []
    assert served.blobs.has(kept)
    assert not any(served.blobs.has(digest) for digest in report.blobs)


def test_writing_to_a_deleted_project_starts_a_new_one(served: ServedCatalog) -> None:
    seed_other(served)
    seed_vision(served)
    served.delete_project(VISION)

    record = log(served, VISION, "data", "fresh start")

    # Version numbers restart: the artifact is a new one.
    assert record.path == f"{VISION}/data:v0"
    assert served.list_runs(VISION) == []


# Rename


def test_rename_keeps_everything_in_the_project(served: ServedCatalog) -> None:
    seed_other(served)
    seed_vision(served)
    served.set_project_ttl(VISION, datetime.timedelta(days=30))
    served.set_visibility(VISION, "public")
    project = served.get_project(VISION)
    versions = served.list_versions(VISION, "data")

    record = served.rename_project(VISION, "lab/vision2")

    assert (record.path, record.created_at) == ("lab/vision2", project.created_at)
    assert record.default_ttl == datetime.timedelta(days=30)
    assert served.projects_access(["lab/vision2"])["lab/vision2"].visibility == "public"
    moved = served.list_versions("lab/vision2", "data")
    assert moved == [dataclasses.replace(v, project="lab/vision2") for v in versions]
    assert served.get_version("lab/vision2", "model", "prod").tags == ("eu",)
    assert [r.id for r in served.list_runs("lab/vision2")] == ["train", "eval"]
    assert served.list_runs("lab/vision2", sweep="search")[0].id == "train"


def test_lineage_follows_a_renamed_project(served: ServedCatalog) -> None:
    seed_other(served)
    seed_vision(served)

    served.rename_project(VISION, "lab/vision2")

    logged_by = served.logged_by("lab/vision2", "model", 0)
    assert logged_by is not None
    assert logged_by.path == "lab/vision2/train"
    assert [r.path for r in served.used_by("lab/vision2", "model", 0)] == [
        "lab/vision2/eval"
    ]
    assert [v.path for v in served.used_versions(OTHER, "audit")] == [
        "lab/vision2/data:v1"
    ]
    assert [r.path for r in served.used_by(OTHER, "labels", 0)] == ["lab/vision2/train"]


def test_the_old_path_of_a_renamed_project_is_gone(served: ServedCatalog) -> None:
    seed_other(served)
    seed_vision(served)

    served.rename_project(VISION, "acme/vision2")

    with pytest.raises(NotFoundError):
        served.get_project(VISION)
    with pytest.raises(NotFoundError):
        served.get_version(VISION, "data", "latest")
    with pytest.raises(NotFoundError):
        served.rename_project(VISION, "acme/vision3")


def test_rename_refuses_a_taken_path(served: ServedCatalog) -> None:
    seed_other(served)
    seed_vision(served)

    with pytest.raises(ConflictError, match="a project acme/other already exists"):
        served.rename_project(VISION, OTHER)
    with pytest.raises(ConflictError, match="already named"):
        served.rename_project(VISION, VISION)
    assert served.get_version(VISION, "data", "best").version == 1


@pytest.mark.parametrize(
    "new",
    [
        pytest.param("vision2", id="no-entity"),
        pytest.param("acme/vision/2", id="three-parts"),
        pytest.param("acme/-vision", id="leading-dash"),
        pytest.param("acme/vi sion", id="space"),
        pytest.param("acme/" + "v" * 129, id="too-long"),
    ],
)
def test_rename_refuses_bad_names(served: ServedCatalog, new: str) -> None:
    log(served, VISION, "data", "data v0")

    with pytest.raises(InvalidReferenceError):
        served.rename_project(VISION, new)
    assert served.get_project(VISION).path == VISION
