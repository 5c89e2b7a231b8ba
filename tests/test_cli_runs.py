"""``refstore runs ls``, ``runs show`` and ``sweep show``, embedded and served.

The commands build their own Api, as for a user; its context is the
workspace's, with the catalog clock the tests move, so that a run silent for
longer than the run timeout reads as crashed in both catalog modes.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import refstore
from refstore.catalog.base import NewRun
from refstore.cli import main
from refstore.config import DEFAULT_RUN_TIMEOUT
from refstore.context import Context
from tests.catalog.clock import ManualClock
from tests.helpers import Workspace
from tests.service import workspace

PROJECT = "acme/cli-runs"
TIMEOUT = DEFAULT_RUN_TIMEOUT.total_seconds()
# These tests log local files only: the workspace needs no bucket settings.
NO_BUCKETS = types.SimpleNamespace(settings=types.SimpleNamespace(stores={}))
GRID = {
    "method": "grid",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}, "opt": {"value": "adam"}},
}
ACCURACY = {0.1: 0.8, 0.01: 0.93, 0.001: 0.7}

Cli = Callable[..., Result]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ws(tmp_path: Path, catalog_mode: str, clock: ManualClock) -> Iterator[Workspace]:
    with workspace(catalog_mode, NO_BUCKETS, tmp_path, clock) as opened:
        yield opened


@pytest.fixture
def cli(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """Run ``refstore`` with the workspace's settings and catalog clock."""
    context = Context(ws.settings, ws.context.clock)
    monkeypatch.setattr(Context, "current", staticmethod(lambda: context))

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args))

    yield invoke
    context.close()


def log_runs(ws: Workspace, clock: ManualClock, tmp_path: Path) -> None:
    """prep logs raw; train-a uses it; train-b fails; silent dies; live runs.

    One minute apart; silent's last heartbeat ends up six minutes old.
    """
    ctx = ws.context
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,2\n")
    with refstore.init(PROJECT, "prep", job_type="prep", context=ctx) as run:
        raw = ws.artifact("raw", "dataset")
        raw.add_file(data)
        run.log_artifact(raw, aliases=["candidate"])
    clock.advance(minutes=1)
    config = {"lr": 0.1, "opt": "adam"}
    with refstore.init(PROJECT, "train-a", config=config, context=ctx) as run:
        run.use_artifact("raw:latest")
        run.log({"val_acc": 0.8})
    clock.advance(minutes=1)
    config = {"lr": 0.01, "opt": "sgd"}
    run = refstore.init(
        PROJECT, "train-b", job_type="train", config=config, context=ctx
    )
    run.log({"val_acc": 0.93})
    run.finish(exit_code=1)
    clock.advance(minutes=1)
    # Started by a process that was killed: no heartbeat thread, no finish.
    ctx.catalog.start_run(
        NewRun(PROJECT, "silent", None, "train", {"lr": 0.1}), "never"
    )
    clock.advance(minutes=6)
    ctx.catalog.start_run(NewRun(PROJECT, "live", name="the live one"), "never")


def table(text: str) -> list[dict[str, str]]:
    """The rows of a printed table, by column header; cells may be empty."""
    header, *lines = text.splitlines()
    columns = [(m.group(), m.start()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    ends = [start for _, start in columns[1:]] + [None]
    return [
        {
            name: line[start:end].strip()
            for (name, start), end in zip(columns, ends, strict=True)
        }
        for line in lines
    ]


def fields(text: str) -> dict[str, str]:
    """The ``label: value`` lines of a show command's text output."""
    pairs = (line.strip().partition(": ") for line in text.splitlines())
    return {label: value for label, sep, value in pairs if sep}


def ids(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [run["id"] for run in json.loads(result.stdout)]


# runs ls


def test_runs_ls_lists_every_run_oldest_first(
    ws: Workspace, clock: ManualClock, tmp_path: Path, cli: Cli
) -> None:
    log_runs(ws, clock, tmp_path)

    result = cli("runs", "ls", PROJECT)

    assert result.exit_code == 0, result.output
    rows = table(result.stdout)
    assert [(r["ID"], r["STATE"], r["JOB TYPE"]) for r in rows] == [
        ("prep", "finished", "prep"),
        ("train-a", "finished", ""),
        ("train-b", "failed", "train"),
        ("silent", "crashed", "train"),
        ("live", "running", ""),
    ]
    assert rows[3]["HEARTBEAT"] == "6 minutes ago"
    assert rows[4]["HEARTBEAT"] == "just now"
    assert rows[4]["NAME"] == "the live one"
    assert rows[0]["CREATED"] == "2030-01-01T00:00:00+00:00"


def test_runs_ls_json_has_every_field(
    ws: Workspace, clock: ManualClock, tmp_path: Path, cli: Cli
) -> None:
    log_runs(ws, clock, tmp_path)

    result = cli("runs", "ls", PROJECT, "--json")

    assert result.exit_code == 0, result.output
    runs = {run["id"]: run for run in json.loads(result.stdout)}
    assert list(runs) == ["prep", "train-a", "train-b", "silent", "live"]
    assert runs["train-b"] == {
        "path": f"{PROJECT}/train-b",
        "id": "train-b",
        "name": None,
        "state": "failed",
        "job_type": "train",
        "sweep": None,
        "created": "2030-01-01T00:02:00+00:00",
        "updated": "2030-01-01T00:02:00+00:00",
        "heartbeat": "2030-01-01T00:02:00+00:00",
        "heartbeat_age_seconds": 420.0,
        "config": {"lr": 0.01, "opt": "sgd"},
        "summary": {"val_acc": 0.93},
    }
    assert (runs["silent"]["state"], runs["silent"]["heartbeat_age_seconds"]) == (
        "crashed",
        360.0,
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(["--state", "crashed"], ["silent"], id="crashed"),
        pytest.param(["--state", "running"], ["live"], id="running-not-crashed"),
        pytest.param(["--state", "failed"], ["train-b"], id="failed"),
        pytest.param(["--job-type", "train"], ["train-b", "silent"], id="job-type"),
        pytest.param(["--filter", "config.lr=0.1"], ["train-a", "silent"], id="number"),
        pytest.param(["--filter", "config.opt=adam"], ["train-a"], id="text"),
        pytest.param(
            ["--filter", "config.lr=0.1", "--filter", "summary.val_acc=0.8"],
            ["train-a"],
            id="every-filter-holds",
        ),
        pytest.param(
            ["--job-type", "train", "--filter", "config.lr=0.1"],
            ["silent"],
            id="job-type-and-filter",
        ),
        pytest.param(["--filter", 'config.lr="0.1"'], [], id="json-string"),
    ],
)
def test_runs_ls_filters(
    ws: Workspace,
    clock: ManualClock,
    tmp_path: Path,
    cli: Cli,
    options: list[str],
    expected: list[str],
) -> None:
    log_runs(ws, clock, tmp_path)

    assert ids(cli("runs", "ls", PROJECT, "--json", *options)) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            ["--sort", "-summary.val_acc"],
            ["train-b", "train-a", "prep", "silent", "live"],
            id="descending-unreported-last",
        ),
        pytest.param(
            ["--sort=summary.val_acc"],
            ["train-a", "train-b", "prep", "silent", "live"],
            id="ascending",
        ),
        pytest.param(
            ["--sort", "-created"],
            ["live", "silent", "train-b", "train-a", "prep"],
            id="newest-first",
        ),
        pytest.param(
            ["--sort", "id"], ["live", "prep", "silent", "train-a", "train-b"], id="id"
        ),
        pytest.param(
            ["--sort", "config.lr", "--limit", "2"], ["train-b", "train-a"], id="limit"
        ),
    ],
)
def test_runs_ls_sorts(
    ws: Workspace,
    clock: ManualClock,
    tmp_path: Path,
    cli: Cli,
    options: list[str],
    expected: list[str],
) -> None:
    log_runs(ws, clock, tmp_path)

    assert ids(cli("runs", "ls", PROJECT, "--json", *options)) == expected


def test_runs_ls_text_shows_the_sort_value(
    ws: Workspace, clock: ManualClock, tmp_path: Path, cli: Cli
) -> None:
    log_runs(ws, clock, tmp_path)

    result = cli("runs", "ls", PROJECT, "--sort", "-summary.val_acc", "--limit", "3")

    assert result.exit_code == 0, result.output
    assert [(r["ID"], r["SUMMARY.VAL_ACC"]) for r in table(result.stdout)] == [
        ("train-b", "0.93"),
        ("train-a", "0.8"),
        ("prep", ""),
    ]


# runs show


def test_runs_show_text(
    ws: Workspace, clock: ManualClock, tmp_path: Path, cli: Cli
) -> None:
    log_runs(ws, clock, tmp_path)

    used = cli("runs", "show", f"{PROJECT}/train-a")
    logged = cli("runs", "show", f"{PROJECT}/prep")

    assert used.exit_code == 0, used.output
    assert logged.exit_code == 0, logged.output
    shown = fields(used.stdout)
    assert shown["run"] == f"{PROJECT}/train-a"
    assert shown["state"] == "finished"
    assert shown["created"] == "2030-01-01T00:01:00+00:00"
    assert shown["heartbeat"] == "2030-01-01T00:01:00+00:00 (8 minutes ago)"
    assert used.stdout.split("config:\n", 1)[1].startswith(
        "  lr: 0.1\n  opt: adam\nsummary:\n  val_acc: 0.8\nlogged: (none)\nused:\n"
        f"  {PROJECT}/raw:v0 (dataset; candidate, latest)\n"
    )
    assert logged.stdout.endswith(
        f"logged:\n  {PROJECT}/raw:v0 (dataset; candidate, latest)\nused: (none)\n"
    )
    assert fields(logged.stdout)["job type"] == "prep"


def test_runs_show_explains_a_crash(
    ws: Workspace, clock: ManualClock, tmp_path: Path, cli: Cli
) -> None:
    log_runs(ws, clock, tmp_path)

    crashed = cli("runs", "show", f"{PROJECT}/silent")
    live = cli("runs", "show", f"{PROJECT}/live")

    assert crashed.exit_code == 0, crashed.output
    state = fields(crashed.stdout)["state"]
    assert state.startswith("crashed (")
    assert "its last heartbeat was 6 minutes ago" in state
    assert fields(live.stdout)["state"] == "running"


def test_runs_show_json(
    ws: Workspace, clock: ManualClock, tmp_path: Path, cli: Cli
) -> None:
    log_runs(ws, clock, tmp_path)

    result = cli("runs", "show", f"{PROJECT}/train-a", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["id"], data["state"], data["config"], data["summary"]) == (
        "train-a",
        "finished",
        {"lr": 0.1, "opt": "adam"},
        {"val_acc": 0.8},
    )
    assert data["logged"] == []
    assert data["used"] == [
        {
            "artifact": f"{PROJECT}/raw:v0",
            "type": "dataset",
            "aliases": ["candidate", "latest"],
        }
    ]


# sweep show


def run_grid(ws: Workspace) -> str:
    sweep_id = refstore.sweep(GRID, project=PROJECT, context=ws.context)

    def train() -> None:
        with refstore.init(job_type="train") as run:
            run.log({"val_acc": ACCURACY[run.config["lr"]]})

    refstore.agent(sweep_id, train, project=PROJECT, context=ws.context)
    return sweep_id


def test_sweep_show_text(ws: Workspace, cli: Cli) -> None:
    sweep_id = run_grid(ws)
    best = ws.api.sweep(f"{PROJECT}/{sweep_id}").best_run()
    assert best is not None

    result = cli("sweep", "show", f"{PROJECT}/{sweep_id}")

    assert result.exit_code == 0, result.output
    head, _, trials = result.stdout.partition("ID ")
    assert fields(head) == {
        "sweep": f"{PROJECT}/{sweep_id}",
        "method": "grid",
        "metric": "val_acc (maximize)",
        "state": "finished",
        "trials": "3 of 3 grid points",
        "best run": f"{best.path} (val_acc 0.93, finished)",
    }
    rows = table("ID " + trials)
    assert [
        (r["STATE"], r["SUMMARY.VAL_ACC"], r["CONFIG.LR"], r["CONFIG.OPT"])
        for r in rows
    ] == [
        ("finished", "0.8", "0.1", "adam"),
        ("finished", "0.93", "0.01", "adam"),
        ("finished", "0.7", "0.001", "adam"),
    ]
    assert rows[1]["ID"] == best.id


def test_sweep_show_json_and_its_runs(ws: Workspace, cli: Cli) -> None:
    sweep_id = run_grid(ws)

    result = cli("sweep", "show", f"{PROJECT}/{sweep_id}", "--json")
    listed = cli("runs", "ls", PROJECT, "--sweep", sweep_id, "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["method"], data["metric"], data["goal"], data["state"]) == (
        "grid",
        "val_acc",
        "maximize",
        "finished",
    )
    assert (data["trial_count"], data["grid_size"]) == (3, 3)
    trials = [(r["state"], r["metric"], r["parameters"]) for r in data["runs"]]
    assert trials == [
        ("finished", 0.8, {"lr": 0.1, "opt": "adam"}),
        ("finished", 0.93, {"lr": 0.01, "opt": "adam"}),
        ("finished", 0.7, {"lr": 0.001, "opt": "adam"}),
    ]
    assert data["best_run"] == data["runs"][1]
    assert ids(listed) == [r["id"] for r in data["runs"]]


def test_sweep_show_counts_a_crashed_trial_that_reported(
    ws: Workspace, clock: ManualClock, cli: Cli
) -> None:
    config = {**GRID, "metric": {"name": "loss", "goal": "minimize"}}
    sweep_id = refstore.sweep(config, project=PROJECT, context=ws.context)
    catalog = ws.context.catalog
    killed = NewRun(
        PROJECT, "killed", config={"lr": 0.5, "opt": "adam"}, sweep=sweep_id
    )
    catalog.start_run(killed, "never")
    catalog.update_run(PROJECT, "killed", summary={"loss": 0.1})

    def train() -> None:
        with refstore.init() as run:
            run.log({"loss": run.config["lr"] * 10})

    refstore.agent(sweep_id, train, count=1, project=PROJECT, context=ws.context)
    clock.advance(seconds=TIMEOUT + 1)

    result = cli("sweep", "show", f"{PROJECT}/{sweep_id}", "--json")

    data = json.loads(result.stdout)
    assert [(r["id"], r["state"], r["metric"]) for r in data["runs"]] == [
        ("killed", "crashed", 0.1),
        (data["runs"][1]["id"], "finished", 1.0),
    ]
    assert (data["best_run"]["id"], data["best_run"]["state"]) == ("killed", "crashed")
    assert (data["goal"], data["state"], data["trial_count"]) == (
        "minimize",
        "running",
        2,
    )


def test_sweep_show_names_nested_parameters_by_their_path(
    ws: Workspace, cli: Cli
) -> None:
    config = {
        "method": "bayes",
        "metric": {"name": "loss", "goal": "minimize"},
        "random_trials": 2,
        "parameters": {
            "optimizer": {
                "parameters": {
                    "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1},
                    "name": {"values": ["sgd", "adam"]},
                }
            },
        },
    }
    sweep_id = refstore.sweep(config, project=PROJECT, context=ws.context)

    def train() -> None:
        with refstore.init() as run:
            run.log({"loss": run.config["optimizer"]["lr"]})

    runs = refstore.agent(sweep_id, train, count=3, project=PROJECT, context=ws.context)

    text = cli("sweep", "show", f"{PROJECT}/{sweep_id}")
    shown = cli("sweep", "show", f"{PROJECT}/{sweep_id}", "--json")
    by_lr = cli("runs", "ls", PROJECT, "--sort", "config.optimizer.lr", "--json")

    assert text.exit_code == 0, text.output
    head, _, trials = text.stdout.partition("ID ")
    assert fields(head)["method"] == "bayes"
    rows = table("ID " + trials)
    assert [(r["ID"], r["CONFIG.OPTIMIZER.NAME"]) for r in rows] == [
        (run.id, run.config["optimizer"]["name"]) for run in runs
    ]
    data = json.loads(shown.stdout)
    assert [r["parameters"] for r in data["runs"]] == [
        {
            "optimizer.lr": run.config["optimizer"]["lr"],
            "optimizer.name": run.config["optimizer"]["name"],
        }
        for run in runs
    ]
    assert data["best_run"]["parameters"]["optimizer.lr"] == min(
        run.config["optimizer"]["lr"] for run in runs
    )
    # The column names a --sort (and --filter) field as it is.
    assert ids(by_lr) == [
        run.id for run in sorted(runs, key=lambda run: run.config["optimizer"]["lr"])
    ]


def test_sweep_show_without_a_metric(ws: Workspace, cli: Cli) -> None:
    config = {"method": "random", "parameters": {"lr": {"min": 0.0, "max": 1.0}}}
    sweep_id = refstore.sweep(config, project=PROJECT, context=ws.context)
    refstore.agent(
        sweep_id, lambda: refstore.init(), count=1, project=PROJECT, context=ws.context
    )

    result = cli("sweep", "show", f"{PROJECT}/{sweep_id}")

    assert result.exit_code == 0, result.output
    shown = fields(result.stdout.partition("ID ")[0])
    assert (shown["metric"], shown["trials"]) == ("(none)", "1")
    assert shown["best run"] == "(none: the sweep names no metric)"
    assert "SUMMARY." not in result.stdout
    assert re.search(r"^\S+\s+finished\s+0\.\d+$", result.stdout, re.MULTILINE)


# errors


@pytest.mark.parametrize(
    ("args", "missing", "hint"),
    [
        pytest.param(
            ["runs", "ls", "acme/nowhere"],
            "no project acme/nowhere",
            "`refstore ls` lists the projects",
            id="runs-ls-project",
        ),
        pytest.param(
            ["runs", "show", f"{PROJECT}/ghost"],
            "no run 'ghost' in project acme/cli-runs",
            f"`refstore runs ls {PROJECT}` lists its runs",
            id="run",
        ),
        pytest.param(
            ["runs", "show", "acme/nowhere/ghost", "--json"],
            "no project acme/nowhere",
            "`refstore ls` lists the projects",
            id="run-project",
        ),
        pytest.param(
            ["sweep", "show", f"{PROJECT}/ghost"],
            "no sweep 'ghost' in project acme/cli-runs",
            f"sweeps with trials in {PROJECT}: SWEEP (see `refstore runs ls",
            id="sweep",
        ),
        pytest.param(
            ["sweep", "show", "acme/nowhere/ghost"],
            "no project acme/nowhere",
            "`refstore ls` lists the projects",
            id="sweep-project",
        ),
    ],
)
def test_what_is_not_found_exits_2_naming_it(
    ws: Workspace, cli: Cli, args: list[str], missing: str, hint: str
) -> None:
    sweep_id = run_grid(ws)

    result = cli(*args)

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert missing in result.stderr
    assert hint.replace("SWEEP", sweep_id) in result.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            ["--filter", "summary.val_acc>=0.9"],
            "--filter 'summary.val_acc>=0.9': only equality is supported",
            id="comparison",
        ),
        pytest.param(
            ["--filter", "lr=0.1"],
            "--filter 'lr=0.1': use config.KEY=VALUE or summary.KEY=VALUE",
            id="bare-key",
        ),
        pytest.param(
            ["--filter", "config.lr"],
            "--filter 'config.lr': use config.KEY=VALUE",
            id="no-value",
        ),
        pytest.param(
            ["--filter", "config..lr=1"],
            "--filter 'config..lr=1': use config.KEY=VALUE",
            id="empty-part",
        ),
        pytest.param(
            ["--sort", "val_acc"],
            "--sort 'val_acc': use created, updated, heartbeat, id, name, state, "
            "job_type, config.KEY or summary.KEY, with a leading - for descending",
            id="sort-field",
        ),
        pytest.param(
            ["--sort", "-summary."], "--sort '-summary.': use created", id="sort-key"
        ),
    ],
)
def test_bad_filter_and_sort_are_usage_errors(
    tmp_path: Path, options: list[str], message: str
) -> None:
    env = {"REFSTORE_HOME": str(tmp_path), "REFSTORE_URL": None}

    result = CliRunner().invoke(main, ["runs", "ls", PROJECT, *options], env=env)

    assert result.exit_code == 2, result.output
    assert f"Error: {message}" in result.stderr
    assert not (tmp_path / "catalog.db").exists()  # refused before any lookup
