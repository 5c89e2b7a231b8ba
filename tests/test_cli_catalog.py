"""``refstore lineage``, ``alias``, ``ttl`` and ``gc``, run in-process against moto."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import refstore
from refstore.cli import main
from refstore.config import Settings
from refstore.context import Context

PROJECT = "acme/cli"


@pytest.fixture
def home(moto_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[stores.s3]\nendpoint_url = "{moto_s3.endpoint_url}"\nregion = "us-east-1"\n'
    )
    monkeypatch.setenv("REFSTORE_HOME", str(home))
    monkeypatch.delenv("REFSTORE_URL", raising=False)
    monkeypatch.delenv("REFSTORE_PROJECT", raising=False)
    return home


@pytest.fixture
def context(home: Path) -> Iterator[Context]:
    ctx = Context(Settings.from_env())
    yield ctx
    ctx.close()


@pytest.fixture
def bucket(moto_s3: Any) -> str:
    name = str(moto_s3.make_bucket())
    for i in range(2):
        moto_s3.client.put_object(Bucket=name, Key=f"raw/{i}.txt", Body=b"x" * i)
    return name


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def pipeline(context: Context, bucket: str) -> None:
    """prep -> "raw" data -> train -> "my model" -> eval."""
    with refstore.init(project=PROJECT, id="prep", context=context) as run:
        data = refstore.Artifact("raw", "dataset", context=context)
        data.add_reference(f"s3://{bucket}/raw/")
        run.log_artifact(data)
    with refstore.init(project=PROJECT, id="train", job_type="train", context=context):
        pass
    with refstore.init(
        project=PROJECT, id="train", resume="must", context=context
    ) as run:
        run.use_artifact("raw:latest")
        model = refstore.Artifact("model", "model", context=context)
        model.add_reference(f"s3://{bucket}/raw/1.txt")
        run.log_artifact(model)
    with refstore.init(project=PROJECT, id="eval", context=context) as run:
        run.use_artifact("model:v0")


# lineage


def test_lineage_text_and_json(context: Context, bucket: str) -> None:
    pipeline(context, bucket)

    text = cli("lineage", f"{PROJECT}/model:latest")
    graph = json.loads(cli("lineage", f"{PROJECT}/model:v0", "--json").stdout)

    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines() == [
        f"{PROJECT}/model:v0 (model)",
        "up:",
        f"   <- logged by run {PROJECT}/train (train, finished)",
        f"      <- used {PROJECT}/raw:v0 (dataset)",
        "down:",
        f"   -> used by run {PROJECT}/eval (finished)",
    ]
    assert graph["root"] == f"artifact:{PROJECT}/model:v0"
    assert {node["kind"] for node in graph["nodes"]} == {"artifact", "run"}
    assert {(e["source"], e["target"], e["kind"]) for e in graph["edges"]} == {
        (f"artifact:{PROJECT}/raw:v0", f"run:{PROJECT}/train", "used"),
        (f"run:{PROJECT}/train", f"artifact:{PROJECT}/model:v0", "logged"),
        (f"artifact:{PROJECT}/model:v0", f"run:{PROJECT}/eval", "used"),
    }


def test_lineage_depth_reaches_further(context: Context, bucket: str) -> None:
    pipeline(context, bucket)

    near = json.loads(cli("lineage", f"{PROJECT}/model:v0", "--json").stdout)
    far = json.loads(
        cli("lineage", f"{PROJECT}/model:v0", "--depth", "2", "--json").stdout
    )

    assert f"run:{PROJECT}/prep" not in {n["id"] for n in near["nodes"]}
    assert f"run:{PROJECT}/prep" in {n["id"] for n in far["nodes"]}


_DOT_NODE = re.compile(r'^  ("(?:[^"\\]|\\.)*") \[shape=(box|ellipse)[^\]]*\];$')
_DOT_EDGE = re.compile(
    r'^  ("(?:[^"\\]|\\.)*") -> ("(?:[^"\\]|\\.)*") \[label="(used|logged)"\];$'
)


def test_lineage_dot_is_well_formed(context: Context, bucket: str) -> None:
    pipeline(context, bucket)

    lines = cli("lineage", f"{PROJECT}/model:v0", "--format", "dot").stdout.splitlines()

    assert lines[:2] == ["digraph lineage {", "  rankdir=LR;"]
    assert lines[-1] == "}"
    nodes = [m[1] for line in lines if (m := _DOT_NODE.match(line))]
    edges = [m.groups() for line in lines if (m := _DOT_EDGE.match(line))]
    assert len(nodes) + len(edges) == len(lines) - 3, "a line is neither"
    assert len(nodes) == 4
    assert len(edges) == 3
    assert all(source in nodes and target in nodes for source, target, _ in edges)


_MERMAID_NODE = re.compile(r'^  (n\d+)(\["[^"]*"\]|\(\["[^"]*"\]\))$')
_MERMAID_EDGE = re.compile(r"^  (n\d+) -->\|(used|logged)\| (n\d+)$")


def test_lineage_mermaid_is_well_formed(context: Context, bucket: str) -> None:
    pipeline(context, bucket)

    lines = cli(
        "lineage", f"{PROJECT}/model:v0", "--format", "mermaid"
    ).stdout.splitlines()

    assert lines[0] == "flowchart LR"
    assert re.fullmatch(r"  style n\d+ stroke-width:3px", lines[-1])
    nodes = [m[1] for line in lines if (m := _MERMAID_NODE.match(line))]
    edges = [m.groups() for line in lines if (m := _MERMAID_EDGE.match(line))]
    assert len(nodes) + len(edges) == len(lines) - 2, "a line is neither"
    assert (len(nodes), len(edges)) == (4, 3)
    assert all(source in nodes and target in nodes for source, _, target in edges)


def test_lineage_of_a_missing_version_exits_2(home: Path) -> None:
    result = CliRunner().invoke(main, ["lineage", f"{PROJECT}/nothing:v0"])

    assert result.exit_code == 2
    assert "no project" in result.output


# alias


def test_alias_add_move_remove(context: Context, bucket: str) -> None:
    pipeline(context, bucket)
    model = refstore.Artifact("model", "model", context=context)
    model.add_reference(f"s3://{bucket}/raw/0.txt")
    model.save(project=PROJECT)

    added = cli("alias", "add", f"{PROJECT}/model:v0", "prod", "--json")
    refused = CliRunner().invoke(main, ["alias", "add", f"{PROJECT}/model:v1", "prod"])
    moved = cli("alias", "move", f"{PROJECT}/model:v1", "prod")
    removed = cli("alias", "remove", f"{PROJECT}/model:prod", "prod", "--json")

    assert json.loads(added.stdout) == {
        "artifact": f"{PROJECT}/model:v0",
        "aliases": ["prod"],
    }
    assert refused.exit_code == 2
    assert "alias move" in refused.output
    assert moved.stdout.startswith(f"prod moved to {PROJECT}/model:v1")
    assert json.loads(removed.stdout)["aliases"] == ["latest"]


# ttl


def test_ttl_set_and_show(context: Context, bucket: str) -> None:
    pipeline(context, bucket)

    shown = json.loads(cli("ttl", "show", PROJECT, "--json").stdout)
    cli("ttl", "set", PROJECT, "30d")
    version = json.loads(
        cli("ttl", "set", f"{PROJECT}/raw:v0", "1w2d", "--json").stdout
    )
    inherit = cli("ttl", "show", f"{PROJECT}/model:v0")
    bad = CliRunner().invoke(main, ["ttl", "set", PROJECT, "inherit"])

    assert shown == {"project": PROJECT, "default_ttl": "none"}
    assert cli("ttl", "show", PROJECT).stdout.strip().endswith(": 30d")
    assert version["ttl"] == "9d"
    assert version["expires_at"] is not None
    assert "ttl inherit, expires at" in inherit.stdout
    assert bad.exit_code == 2
    assert "cannot be 'inherit'" in bad.output


# gc


def test_gc_deletes_expired_versions_and_leaves_the_bucket(
    home: Path, moto_s3: Any, bucket: str, tmp_path: Path
) -> None:
    def listing() -> Any:
        return moto_s3.client.list_object_versions(Bucket=bucket).get("Versions")

    # Logged a year ago with a TTL of a day: expired by the real clock.
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=365)
    old = Context(Settings.from_env(), clock=lambda: past)
    try:
        art = refstore.Artifact("old", "dataset", context=old)
        art.add_reference(f"s3://{bucket}/raw/")
        (tmp_path / "notes.txt").write_text("copied into the blob store\n")
        art.add_file(tmp_path / "notes.txt")
        art.ttl = datetime.timedelta(days=1)
        art.save(project=PROJECT)
    finally:
        old.close()
    before = listing()

    dry = json.loads(cli("gc", "--dry-run", "--grace", "0", "--json").stdout)
    done = json.loads(cli("gc", "--grace", "0", "--json").stdout)
    again = cli("gc")

    assert dry["versions"] == done["versions"] == [f"{PROJECT}/old:v0"]
    assert dry["dry_run"] is True
    assert len(done["blobs"]) == 2  # the manifest and notes.txt
    assert again.stdout.strip().endswith(
        "deleted 0 expired versions and 0 blob-store files (0 B)"
    )
    assert listing() == before
