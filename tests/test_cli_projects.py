"""``refstore project delete`` and ``rename`` on the embedded catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import refstore
from refstore import cli_projects
from refstore.cli import main
from refstore.config import Settings
from refstore.context import Context

PROJECT = "acme/cli"


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """A home holding acme/cli: one run that logged one copied file."""
    monkeypatch.setenv("REFSTORE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REFSTORE_URL", raising=False)
    monkeypatch.delenv("REFSTORE_PROJECT", raising=False)
    notes = tmp_path / "notes.txt"
    notes.write_text("notes\n")
    ctx = Context(Settings.from_env())
    with refstore.init(project=PROJECT, id="r1", context=ctx) as run:
        artifact = refstore.Artifact("notes", "text", context=ctx)
        artifact.add_file(notes)
        run.log_artifact(artifact)
    yield ctx
    ctx.close()


def cli(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def projects(context: Context) -> list[str]:
    return [p.path for p in context.catalog.list_projects()]


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_projects, "_interactive", lambda: True)


def test_delete_without_a_terminal_needs_yes(context: Context) -> None:
    result = cli("project", "delete", PROJECT)

    assert result.exit_code == 2
    assert "pass --yes to delete it" in result.output
    assert projects(context) == [PROJECT]


def test_delete_with_yes(context: Context) -> None:
    result = cli("project", "delete", PROJECT, "--yes")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "deleted acme/cli: 1 artifact, 1 version, 1 run, 0 sweeps, 1 lineage edge",
        "blob-store files no other version needs go at `refstore gc`",
    ]
    assert projects(context) == []


@pytest.mark.usefixtures("terminal")
def test_delete_asks_to_type_the_project(context: Context) -> None:
    result = cli("project", "delete", PROJECT, stdin=f"{PROJECT}\n")

    assert result.exit_code == 0, result.output
    assert f"type {PROJECT} to delete it" in result.output
    assert "this deletes acme/cli: 1 artifact" in result.output
    assert projects(context) == []


@pytest.mark.usefixtures("terminal")
@pytest.mark.parametrize("typed", ["cli", "acme/other", "y", ""])
def test_delete_keeps_the_project_unless_its_path_is_typed(
    context: Context, typed: str
) -> None:
    result = cli("project", "delete", PROJECT, stdin=f"{typed}\n")

    assert result.exit_code == 2
    assert "acme/cli was not deleted" in result.output
    assert projects(context) == [PROJECT]


def test_dry_run_prints_what_would_go(context: Context) -> None:
    text = cli("project", "delete", PROJECT, "--dry-run")
    data = cli("project", "delete", PROJECT, "--dry-run", "--json")

    assert text.exit_code == data.exit_code == 0
    assert text.output.startswith("would delete acme/cli: 1 artifact, 1 version")
    assert json.loads(data.output) == {
        "project": PROJECT,
        "artifacts": 1,
        "versions": 1,
        "runs": 1,
        "sweeps": 0,
        "lineage_edges": 1,
        "cross_project_uses": 0,
        "dry_run": True,
    }
    assert projects(context) == [PROJECT]


def test_delete_reports_uses_by_other_projects(context: Context) -> None:
    with refstore.init(project="acme/other", id="r2", context=context) as run:
        run.use_artifact(f"{PROJECT}/notes:latest")

    result = cli("project", "delete", PROJECT, "--yes", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cross_project_uses"] == 1
    assert projects(context) == ["acme/other"]


def test_delete_of_a_missing_project_exits_2(context: Context) -> None:
    result = cli("project", "delete", "acme/nothing", "--yes")

    assert result.exit_code == 2
    assert "no project acme/nothing" in result.output


def test_rename(context: Context) -> None:
    result = cli("project", "rename", PROJECT, "lab/renamed")
    listed = cli("ls", "lab/renamed", "--json")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "renamed acme/cli to lab/renamed"
    assert [row["name"] for row in json.loads(listed.output)] == ["notes"]
    assert projects(context) == ["lab/renamed"]


def test_rename_refusals_exit_2(context: Context) -> None:
    with refstore.init(project="acme/taken", id="r", context=context):
        pass

    taken = cli("project", "rename", PROJECT, "acme/taken")
    bad = cli("project", "rename", PROJECT, "acme/no good")

    assert taken.exit_code == bad.exit_code == 2
    assert "a project acme/taken already exists" in taken.output
    assert "not a valid project name" in bad.output
    assert projects(context) == ["acme/cli", "acme/taken"]


def test_rename_json(context: Context) -> None:
    result = cli("project", "rename", PROJECT, "acme/moved", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["project"], data["entity"], data["name"]) == (
        "acme/moved",
        "acme",
        "moved",
    )
