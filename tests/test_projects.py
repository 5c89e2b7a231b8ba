"""Deleting and renaming projects through the Python API (embedded and service)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import refstore
from refstore.errors import ConflictError, InvalidReferenceError, NotFoundError
from tests.catalog.clock import ManualClock
from tests.helpers import Workspace
from tests.service import workspace

PROJECT = "acme/vision"
CONSUMER = "acme/reports"


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
def pipeline(ws: Workspace, tmp_path: Path) -> str:
    """prep logs data (a reference and a copied file), train uses it and
    logs a model; a run of another project uses the model. The file's digest."""
    bucket = ws.s3.make_bucket()
    ws.put(bucket, "raw/0.csv", b"row\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("only acme/vision holds this\n")
    with refstore.init(project=PROJECT, id="prep", context=ws.context) as run:
        data = ws.artifact("data")
        data.add_reference(f"s3://{bucket}/raw/")
        data.add_file(notes)
        run.log_artifact(data, aliases=["best"])
    with refstore.init(project=PROJECT, id="train", context=ws.context) as run:
        run.use_artifact("data:best")
        model = ws.artifact("model", "model")
        model.add_reference(f"s3://{bucket}/raw/0.csv")
        run.log_artifact(model)
    with refstore.init(project=CONSUMER, id="report", context=ws.context) as run:
        run.use_artifact(f"{PROJECT}/model:latest")
    return data.manifest.entries["notes.txt"].digest


def test_delete_removes_the_project_and_reports_it(
    ws: Workspace, pipeline: str
) -> None:
    report = ws.api.delete_project(PROJECT)

    assert (report.artifacts, report.versions, report.runs) == (2, 2, 2)
    assert (report.lineage_edges, report.cross_project_uses) == (4, 1)
    with pytest.raises(NotFoundError):
        ws.api.artifact(f"{PROJECT}/data:best")
    with pytest.raises(NotFoundError):
        ws.api.run(f"{PROJECT}/prep")
    assert ws.api.run(f"{CONSUMER}/report").used_artifacts() == []
    assert [p.path for p in ws.api.projects()] == [CONSUMER]


def test_a_dry_run_deletes_nothing(ws: Workspace, pipeline: str) -> None:
    dry = ws.api.delete_project(PROJECT, dry_run=True)

    assert dry.dry_run
    assert (dry.artifacts, dry.versions, dry.cross_project_uses) == (2, 2, 1)
    assert ws.api.artifact(f"{PROJECT}/data:best").version == "v0"
    assert len(ws.api.run(f"{CONSUMER}/report").used_artifacts()) == 1


def test_deleting_a_missing_project_is_not_found(ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match="no project acme/nothing"):
        ws.api.delete_project("acme/nothing")


@pytest.mark.parametrize("path", ["vision", "acme/vision/data", "acme/bad name"])
def test_a_project_path_must_be_spelt_out(ws: Workspace, path: str) -> None:
    with pytest.raises(InvalidReferenceError):
        ws.api.delete_project(path)
    with pytest.raises(InvalidReferenceError):
        ws.api.rename_project(path, "acme/other")


def test_gc_frees_the_blobs_of_a_deleted_project(
    ws: Workspace, pipeline: str, catalog_mode: str
) -> None:
    if catalog_mode == "service":
        pytest.skip("a service collects its own blobs (tests/server/test_projects.py)")
    record = ws.context.catalog.get_version(PROJECT, "data", "best")
    no_grace = datetime.timedelta(0)
    assert ws.api.gc(grace=no_grace).blobs == []

    ws.api.delete_project(PROJECT)
    report = ws.api.gc(grace=no_grace)

    assert {pipeline, record.manifest_blob} <= set(report.blobs)
    assert not ws.context.blobs.has(pipeline)
    assert not ws.context.blobs.has(record.manifest_blob)


def test_rename_keeps_artifacts_runs_and_lineage(ws: Workspace, pipeline: str) -> None:
    moved = ws.api.rename_project(PROJECT, "acme/vision2")

    assert moved.path == "acme/vision2"
    model = ws.api.artifact("acme/vision2/model:latest")
    producer = model.logged_by()
    assert producer is not None
    assert producer.path == "acme/vision2/train"
    assert [r.path for r in model.used_by()] == [f"{CONSUMER}/report"]
    data = ws.api.artifact("acme/vision2/data:best")
    assert data.manifest.entries["notes.txt"].digest == pipeline
    graph = ws.api.lineage("acme/vision2/data:best", depth=2)
    assert "acme/vision2/model:v0" in graph.render("text")
    with pytest.raises(NotFoundError):
        ws.api.artifact(f"{PROJECT}/model:latest")


def test_rename_moves_a_project_to_another_entity(
    ws: Workspace, pipeline: str, catalog_mode: str
) -> None:
    # At a service, alice may create projects under her own name.
    target = "alice/vision" if catalog_mode == "service" else "lab/vision"

    ws.api.rename_project(PROJECT, target)

    assert ws.api.artifact(f"{target}/data:best").version == "v0"
    assert [r.id for r in ws.api.runs(target)] == ["prep", "train"]


def test_rename_refuses_a_taken_path(ws: Workspace, pipeline: str) -> None:
    with pytest.raises(ConflictError, match=f"a project {CONSUMER} already exists"):
        ws.api.rename_project(PROJECT, CONSUMER)
    with pytest.raises(InvalidReferenceError):
        ws.api.rename_project(PROJECT, "acme/-bad")
    assert ws.api.artifact(f"{PROJECT}/data:best").version == "v0"
