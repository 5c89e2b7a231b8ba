"""Runs end to end on S3 (moto), embedded and through the service: lineage too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import refstore
from refstore.errors import ConflictError, NotFoundError, RefstoreError
from refstore.run import Run
from refstore.runs import current_run
from tests.helpers import Workspace
from tests.service import workspace

PROJECT = "acme/vision"


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path, catalog_mode: str) -> Iterator[Workspace]:
    with workspace(catalog_mode, moto_s3, tmp_path) as opened:
        yield opened


@pytest.fixture
def bucket(ws: Workspace) -> str:
    name = ws.s3.make_bucket()
    for i in range(3):
        ws.put(name, f"furniture/chair-{i}.jpg", f"chair {i}".encode())
    return name


def init(ws: Workspace, **kwargs: Any) -> Run:
    kwargs.setdefault("project", PROJECT)
    return refstore.init(context=ws.context, **kwargs)


def pipeline(ws: Workspace, bucket: str) -> dict[str, str]:
    """prep logs a dataset; train uses it and logs a model; eval uses the model."""
    with init(ws, id="prep", job_type="build-dataset") as run:
        data = ws.artifact("furniture")
        data.add_reference(f"s3://{bucket}/furniture/")
        run.log_artifact(data, aliases=["raw"])
    with init(ws, id="train", job_type="train", config={"lr": 0.1}) as run:
        dataset = run.use_artifact("furniture:latest")
        model = ws.artifact("resnet", "model", metadata={"arch": "resnet50"})
        model.add_reference(f"s3://{bucket}/furniture/chair-0.jpg", name="weights")
        run.log_artifact(model)
        run.log({"val_acc": 0.9})
    with init(ws, id="eval", job_type="evaluate") as run:
        run.use_artifact(f"{PROJECT}/resnet:v0")
    return {"dataset": dataset.qualified_name, "model": model.qualified_name}


def ids(runs: list[Run]) -> list[str]:
    return [run.id for run in runs]


def names(artifacts: list[refstore.Artifact]) -> list[str]:
    return [artifact.qualified_name for artifact in artifacts]


# Lineage


def test_walking_the_graph_from_an_artifact(ws: Workspace, bucket: str) -> None:
    paths = pipeline(ws, bucket)

    model = ws.api.artifact(f"{PROJECT}/resnet:latest")
    producer = model.logged_by()
    consumers = model.used_by()

    assert producer is not None
    assert producer.id == "train"
    assert ids(consumers) == ["eval"]
    assert names(producer.used_artifacts()) == [paths["dataset"]]
    assert consumers[0].logged_artifacts() == []
    dataset = producer.used_artifacts()[0]
    upstream = dataset.logged_by()
    assert upstream is not None
    assert (upstream.id, upstream.job_type, upstream.state) == (
        "prep",
        "build-dataset",
        "finished",
    )
    assert ids(dataset.used_by()) == ["train"]


def test_walking_the_graph_from_a_run(ws: Workspace, bucket: str) -> None:
    paths = pipeline(ws, bucket)

    run = ws.api.run(f"{PROJECT}/train")
    produced = run.logged_artifacts()
    consumed = run.used_artifacts()

    assert names(produced) == [paths["model"]]
    assert names(consumed) == [paths["dataset"]]
    earlier = consumed[0].logged_by()
    assert earlier is not None
    assert earlier.id == "prep"
    assert ids(produced[0].used_by()) == ["eval"]
    assert run.config == {"lr": 0.1}
    assert run.summary["val_acc"] == 0.9
    assert consumed[0].manifest.entries["chair-1.jpg"].extra.get("versionID")


def test_a_version_logged_outside_a_run_has_no_producer(
    ws: Workspace, bucket: str
) -> None:
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/furniture/")
    art.save(project=PROJECT)

    assert art.logged_by() is None
    assert art.used_by() == []


# Resuming


def test_logging_an_artifact_to_a_resumed_run(ws: Workspace, bucket: str) -> None:
    with init(ws, id="run-42", job_type="train") as first:
        first.summary["epochs"] = 1
    assert ws.api.run(f"{PROJECT}/run-42").state == "finished"

    with init(ws, id="run-42", resume="allow") as again:
        assert again.summary["epochs"] == 1
        assert again.state == "running"
        late = ws.artifact("late-report", "report")
        late.add_reference(f"s3://{bucket}/furniture/chair-2.jpg")
        again.log_artifact(late)

    run = ws.api.run(f"{PROJECT}/run-42")
    assert run.state == "finished"
    assert run.job_type == "train"
    assert names(run.logged_artifacts()) == [f"{PROJECT}/late-report:v0"]
    producer = ws.api.artifact(f"{PROJECT}/late-report:v0").logged_by()
    assert producer == run


def test_resume_must_needs_the_run(ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match="to resume"):
        init(ws, id="ghost", resume="must")
    with pytest.raises(RefstoreError, match="needs the id"):
        init(ws, resume="must")


def test_resume_never_refuses_an_existing_run(ws: Workspace) -> None:
    with init(ws, id="once"):
        pass

    with pytest.raises(ConflictError, match="already exists"):
        init(ws, id="once", resume="never")
    with pytest.raises(ConflictError, match="already exists"):
        init(ws, id="once")


def test_an_unknown_resume_mode_is_refused(ws: Workspace) -> None:
    with pytest.raises(RefstoreError, match="not a resume mode"):
        init(ws, resume="maybe")


# Life cycle, config and summary


def test_a_block_that_raises_fails_the_run(ws: Workspace) -> None:
    def train() -> None:
        with init(ws, id="broken") as run:
            run.summary["step"] = 3
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        train()

    stored = ws.api.run(f"{PROJECT}/broken")
    assert stored.state == "failed"
    assert stored.summary == {"step": 3}


def test_finish_ends_a_run_started_without_with(ws: Workspace) -> None:
    run = init(ws, id="plain")
    assert current_run() is run

    run.finish()

    assert run.state == "finished"
    assert current_run() is None
    with pytest.raises(ConflictError, match="not running in this process"):
        run.log_artifact(ws.artifact())


def test_config_and_summary_are_saved_as_they_change(ws: Workspace) -> None:
    with init(ws, id="cfg", config={"lr": 0.1, "opt": {"name": "sgd"}}) as run:
        run.config["batch"] = 32
        run.log({"loss": 0.5})
        run.log({"loss": 0.25, "acc": 0.8})
        stored = ws.api.run(f"{PROJECT}/cfg")
        assert stored.config == {"lr": 0.1, "opt": {"name": "sgd"}, "batch": 32}
        assert stored.summary == {"loss": 0.25, "acc": 0.8}
        assert run.config.lr == 0.1
        del run.summary["acc"]

    assert ws.api.run(f"{PROJECT}/cfg").summary == {"loss": 0.25}


def test_values_json_cannot_hold_are_refused(ws: Workspace) -> None:
    with init(ws, id="bad") as run, pytest.raises(RefstoreError, match="cannot be"):
        run.summary["model"] = object()


def test_a_run_read_from_the_api_cannot_log(ws: Workspace) -> None:
    with init(ws, id="done"):
        pass

    with pytest.raises(ConflictError, match="resume='must'"):
        ws.api.run(f"{PROJECT}/done").use_artifact("anything:latest")


# use_artifact


def test_the_forms_use_artifact_takes(ws: Workspace, bucket: str) -> None:
    other = ws.artifact("labels", "table")
    other.add_reference(f"s3://{bucket}/furniture/chair-0.jpg")
    other.save(project="acme/shared")

    with init(ws, id="user") as run:
        by_path = run.use_artifact("acme/shared/labels:latest", type="table")
        draft = ws.artifact("notes", "doc")
        draft.add_reference(f"s3://{bucket}/furniture/chair-1.jpg")
        from_draft = run.use_artifact(draft)
        again = run.use_artifact(from_draft)
        with pytest.raises(NotFoundError, match="not 'model'"):
            run.use_artifact("acme/shared/labels:v0", type="model")

    assert by_path.qualified_name == "acme/shared/labels:v0"
    assert (from_draft.qualified_name, again.version) == (f"{PROJECT}/notes:v0", "v0")
    used = ws.api.run(f"{PROJECT}/user").used_artifacts()
    assert names(used) == ["acme/shared/labels:v0", f"{PROJECT}/notes:v0"]
    assert from_draft.logged_by() is None


def test_a_logged_artifact_cannot_be_logged_again(ws: Workspace, bucket: str) -> None:
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/furniture/")
    art.save(project=PROJECT)

    with init(ws) as run, pytest.raises(ConflictError, match="already logged"):
        run.log_artifact(art)


def test_architectures_as_separate_artifacts(ws: Workspace, bucket: str) -> None:
    with init(ws, job_type="train") as run:
        for step, arch in enumerate(("resnet", "vit", "resnet")):
            checkpoint = ws.artifact(arch, "model", metadata={"step": step})
            checkpoint.add_reference(f"s3://{bucket}/furniture/chair-{step}.jpg")
            run.log_artifact(checkpoint)

    assert ws.api.artifact(f"{PROJECT}/resnet:latest").version == "v1"
    assert ws.api.artifact(f"{PROJECT}/vit:latest").version == "v0"
    assert ws.api.artifact_types(PROJECT) == ["model"]
    versions = ws.api.artifacts("model", f"{PROJECT}/resnet")
    assert [v.metadata["step"] for v in versions] == [0, 2]
    with pytest.raises(NotFoundError, match="not 'dataset'"):
        ws.api.artifacts("dataset", f"{PROJECT}/resnet")


def test_a_resumed_run_cannot_close_a_lineage_cycle(ws: Workspace, bucket: str) -> None:
    pipeline(ws, bucket)

    with (
        init(ws, id="prep", resume="must") as run,
        pytest.raises(ConflictError, match="prep cannot use resnet:v0"),
    ):
        run.use_artifact("resnet:v0")

    assert ws.api.run(f"{PROJECT}/prep").used_artifacts() == []


# Api.runs


def test_runs_filters(ws: Workspace) -> None:
    with init(ws, id="a", job_type="train", config={"lr": 0.1, "opt": {"m": 0.9}}):
        pass
    with init(ws, id="b", job_type="train", config={"lr": 0.01}) as run:
        run.log({"acc": 0.7})
    with pytest.raises(RuntimeError), init(ws, id="c", job_type="eval"):
        raise RuntimeError

    def found(filters: dict[str, Any]) -> list[str]:
        return ids(ws.api.runs(PROJECT, filters))

    assert found({}) == ["a", "b", "c"]
    assert found({"state": "failed"}) == ["c"]
    assert found({"job_type": "train", "config.lr": 0.01}) == ["b"]
    assert found({"config.opt.m": 0.9}) == ["a"]
    assert found({"summary.acc": 0.7}) == ["b"]
    assert found({"config.opt": {"m": 0.9}, "config.lr": True}) == []
    assert found({"config.opt": {"m": 0.9}, "config.lr": 0.1}) == ["a"]
    assert found({"config.lr') OR 1=1 --": 0.1}) == []
    with pytest.raises(RefstoreError, match="double quote"):
        found({'config.a"b': 1})
    with pytest.raises(RefstoreError, match="unknown run filters"):
        ws.api.runs(PROJECT, {"tags": "x"})


# save_code


def test_save_code_logs_the_main_script(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import refstore

            with refstore.init(project="acme/code", id="r1", save_code=True):
                pass
            """
        )
    )
    env = {**os.environ, "REFSTORE_HOME": str(tmp_path / "home")}
    env.pop("REFSTORE_URL", None)

    subprocess.run([sys.executable, str(script)], check=True, env=env, timeout=120)

    api = refstore.Api(refstore.Settings(home=tmp_path / "home"))
    try:
        [code] = api.run("acme/code/r1").used_artifacts()
        assert (code.type, code.name) == ("code", "source-train.py")
        folder = code.download(tmp_path / "out")
        assert (folder / "train.py").read_text() == script.read_text()
    finally:
        api.context.close()
