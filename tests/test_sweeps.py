"""Sweeps end to end (moto S3, SQLite catalog), and their parameter spaces."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import refstore
from refstore.errors import RefstoreError
from refstore.sweep_space import parse_sweep_config
from tests.helpers import Workspace
from tests.service import workspace

PROJECT = "acme/vision"
GRID = {
    "method": "grid",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "parameters": {
        "lr": {"values": [0.1, 0.01, 0.001]},
        "arch": {"values": ["resnet", "vit"]},
        "epochs": {"value": 2},
    },
}


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path, catalog_mode: str) -> Iterator[Workspace]:
    with workspace(catalog_mode, moto_s3, tmp_path) as opened:
        yield opened


@pytest.fixture
def bucket(ws: Workspace) -> str:
    name = ws.s3.make_bucket()
    for i in range(6):
        ws.put(name, f"checkpoints/{i}.pt", f"weights {i}".encode())
    return name


def accuracy(config: Any) -> float:
    """A made-up metric, best for vit at lr 0.01."""
    bonus = 0.1 if config["arch"] == "vit" else 0.0
    return round(0.8 + bonus - abs(config["lr"] - 0.01), 4)


def test_the_artifact_of_the_best_run(ws: Workspace, bucket: str) -> None:
    sweep_id = refstore.sweep(GRID, project=PROJECT, context=ws.context)
    trials: list[int] = []

    def train() -> None:
        with refstore.init(job_type="train", config={"batch": 8}) as run:
            trial = len(trials)
            trials.append(trial)
            run.log({"val_acc": accuracy(run.config)})
            model = ws.artifact(f"model-{sweep_id}", "model")
            model.add_reference(f"s3://{bucket}/checkpoints/{trial}.pt")
            run.log_artifact(model)

    runs = refstore.agent(sweep_id, train, project=PROJECT, context=ws.context)

    assert len(runs) == 6
    sweep = ws.api.sweep(f"{PROJECT}/{sweep_id}")
    assert sweep.state == "finished"
    configs = [run.config for run in sweep.runs]
    assert {(c["arch"], c["lr"]) for c in configs} == {
        (arch, lr) for arch in ("resnet", "vit") for lr in (0.1, 0.01, 0.001)
    }
    assert all(c["epochs"] == 2 and c["batch"] == 8 for c in configs)
    assert all(run.sweep == sweep_id and run.state == "finished" for run in runs)
    best = sweep.best_run()
    assert best is not None
    assert (best.config["arch"], best.config["lr"]) == ("vit", 0.01)
    [model] = best.logged_artifacts()
    assert model.name == f"model-{sweep_id}"
    trial = runs.index(best)
    assert model.manifest.entries[f"{trial}.pt"].ref == (
        f"s3://{bucket}/checkpoints/{trial}.pt"
    )
    versions = ws.api.artifact_versions(f"{PROJECT}/model-{sweep_id}")
    assert len(versions) == 6


def test_a_second_agent_continues_the_grid(ws: Workspace) -> None:
    sweep_id = refstore.sweep(GRID, project=PROJECT, context=ws.context)

    def train() -> None:
        with refstore.init() as run:
            run.log({"val_acc": accuracy(run.config)})

    path = f"{PROJECT}/{sweep_id}"
    first = refstore.agent(path, train, count=4, context=ws.context)
    rest = refstore.agent(path, train, count=4, context=ws.context)

    assert (len(first), len(rest)) == (4, 2)
    seen = [(r.config["arch"], r.config["lr"]) for r in first + rest]
    assert len(set(seen)) == 6


def test_random_search_draws_within_the_ranges(ws: Workspace) -> None:
    config = {
        "method": "random",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
            "dropout": {"min": 0.1, "max": 0.5},
            "layers": {"min": 2, "max": 4},
            "opt": {"values": ["sgd", "adam"]},
        },
    }
    sweep_id = refstore.sweep(config, project=PROJECT, context=ws.context)

    def train() -> None:
        with refstore.init() as run:
            run.log({"loss": run.config["dropout"] * run.config["layers"]})

    runs = refstore.agent(sweep_id, train, count=5, project=PROJECT, context=ws.context)

    assert len(runs) == 5
    for run in runs:
        assert 1e-4 <= run.config["lr"] <= 1e-1
        assert 0.1 <= run.config["dropout"] <= 0.5
        assert run.config["layers"] in (2, 3, 4)
        assert run.config["opt"] in ("sgd", "adam")
    best = ws.api.sweep(f"{PROJECT}/{sweep_id}").best_run()
    assert best is not None
    assert best.summary["loss"] == min(r.summary["loss"] for r in runs)
    with pytest.raises(RefstoreError, match="pass count"):
        refstore.agent(sweep_id, train, project=PROJECT, context=ws.context)


def test_a_failing_trial_is_marked_and_the_agent_goes_on(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    sweep_id = refstore.sweep(GRID, project=PROJECT, context=ws.context)

    def train() -> None:
        with refstore.init() as run:
            if run.config["arch"] == "vit":
                raise ValueError("diverged")
            run.log({"val_acc": accuracy(run.config)})

    with caplog.at_level(logging.WARNING, logger="refstore.sweeps"):
        runs = refstore.agent(sweep_id, train, project=PROJECT, context=ws.context)

    states = {run.config["arch"]: set() for run in runs}
    for run in runs:
        states[run.config["arch"]].add(run.state)
    assert states == {"resnet": {"finished"}, "vit": {"failed"}}
    assert "failed" in caplog.text
    best = ws.api.sweep(f"{PROJECT}/{sweep_id}").best_run()
    assert best is not None
    assert best.config["arch"] == "resnet"


def test_a_function_that_never_calls_init(ws: Workspace) -> None:
    sweep_id = refstore.sweep(GRID, project=PROJECT, context=ws.context)

    with pytest.raises(RefstoreError, match=r"without calling refstore.init\(\)"):
        refstore.agent(sweep_id, lambda: None, project=PROJECT, context=ws.context)


def test_init_inside_a_trial_keeps_to_the_sweep(ws: Workspace) -> None:
    sweep_id = refstore.sweep(GRID, project=PROJECT, context=ws.context)

    def train() -> None:
        refstore.init(project="acme/other")

    with pytest.raises(RefstoreError, match="belongs to acme/vision"):
        refstore.agent(sweep_id, train, count=1, project=PROJECT, context=ws.context)


def test_best_run_needs_a_metric(ws: Workspace) -> None:
    config = {"method": "grid", "parameters": {"a": {"values": [1]}}}
    sweep_id = refstore.sweep(config, project=PROJECT, context=ws.context)

    with pytest.raises(RefstoreError, match="names no metric"):
        ws.api.sweep(f"{PROJECT}/{sweep_id}").best_run()


# Parameter spaces


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({"method": "hyperband"}, "method must be one of", id="method"),
        pytest.param({"method": "grid"}, "must map each parameter", id="no-params"),
        pytest.param(
            {"method": "grid", "parameters": {"a": {"min": 0, "max": 1}}},
            "a grid sweep needs 'values'",
            id="grid-range",
        ),
        pytest.param(
            {"method": "random", "parameters": {"a": {"min": 2, "max": 1}}},
            "'min' must be below 'max'",
            id="min-max",
        ),
        pytest.param(
            {"method": "random", "parameters": {"a": {"distribution": "beta"}}},
            "parameter 'a': unknown distribution 'beta'; use one of",
            id="distribution",
        ),
        pytest.param(
            {"method": "random", "parameters": {"a": {"mu": 0}}},
            "parameter 'a' needs 'values', 'value', 'min' and 'max', 'parameters'",
            id="no-kind",
        ),
        pytest.param(
            {"method": "random", "parameters": {"a": {"values": []}}},
            "non-empty list",
            id="empty-values",
        ),
        pytest.param(
            {
                "method": "grid",
                "metric": {"name": "x", "goal": "best"},
                "parameters": {"a": {"value": 1}},
            },
            "maximize or minimize",
            id="goal",
        ),
    ],
)
def test_invalid_sweep_configs(config: dict[str, Any], message: str) -> None:
    with pytest.raises(RefstoreError, match=message):
        parse_sweep_config(config)


def nested(spec: dict[str, Any], method: str = "random") -> dict[str, Any]:
    """A config whose only parameter nests ``spec`` as optimizer.lr."""
    return {
        "method": method,
        "metric": {"name": "loss"},
        "parameters": {"optimizer": {"parameters": {"lr": spec}}},
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param(
            nested({"min": 0.5, "max": 0.1}),
            r"parameter 'optimizer\.lr': 'min' must be below 'max'",
            id="nested-min-max",
        ),
        pytest.param(
            nested({"values": []}),
            r"parameter 'optimizer\.lr': 'values' must be a non-empty list",
            id="nested-empty-values",
        ),
        pytest.param(
            nested({"distribution": "zipf", "min": 1, "max": 2}),
            r"parameter 'optimizer\.lr': unknown distribution 'zipf'",
            id="nested-distribution",
        ),
        pytest.param(
            {
                "method": "grid",
                "parameters": {
                    "optimizer": {"values": ["sgd"], "parameters": {"lr": {"value": 1}}}
                },
            },
            "parameter 'optimizer' mixes 'parameters' with 'values'; a nested "
            "parameter holds only 'parameters'",
            id="nested-mixed",
        ),
        pytest.param(
            {"method": "grid", "parameters": {"optimizer": {"parameters": {}}}},
            "parameter 'optimizer': \"parameters\" must map each parameter",
            id="nested-empty",
        ),
        pytest.param(
            nested({"min": 0.1, "max": 0.5}, method="grid"),
            r"parameter 'optimizer\.lr': a grid sweep needs 'values' or 'value'",
            id="nested-grid-range",
        ),
        pytest.param(
            {
                "method": "random",
                "parameters": {
                    "a.b": {"value": 1},
                    "a": {"parameters": {"b": {"value": 2}}},
                },
            },
            "parameters a.b are named twice",
            id="dotted-clash",
        ),
        pytest.param(
            {"method": "bayes", "parameters": {"a": {"min": 0.0, "max": 1.0}}},
            'a bayes sweep needs the metric it optimizes: add "metric"',
            id="bayes-metric",
        ),
        pytest.param(
            {**nested({"value": 1}, method="grid"), "random_trials": 3},
            '"random_trials" applies to method bayes, not grid',
            id="random-trials-grid",
        ),
        pytest.param(
            {**nested({"min": 0.0, "max": 1.0}, method="bayes"), "random_trials": 0},
            '"random_trials" must be a whole number above 0',
            id="random-trials-zero",
        ),
        pytest.param(
            nested({"distribution": "int_uniform", "min": 0.5, "max": 4}),
            "parameter 'optimizer.lr': int_uniform needs integer min and max",
            id="int-uniform-floats",
        ),
        pytest.param(
            nested({"distribution": "normal", "sigma": 0}),
            "parameter 'optimizer.lr': 'sigma' must be above 0",
            id="sigma",
        ),
        pytest.param(
            nested({"min": "0", "max": 1}),
            "parameter 'optimizer.lr': 'min' must be a number",
            id="min-text",
        ),
    ],
)
def test_invalid_sweep_configs_name_the_parameter(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(RefstoreError, match=message):
        parse_sweep_config(config)


def test_refstore_sweep_refuses_a_bad_config(ws: Workspace) -> None:
    config = nested({"min": 1.0, "max": 0.1})

    with pytest.raises(RefstoreError, match=r"'optimizer\.lr': 'min' must be below"):
        refstore.sweep(config, project=PROJECT, context=ws.context)


def test_grid_points_in_a_fixed_order() -> None:
    space = parse_sweep_config(GRID)

    points = [space.trial(n, seed="s") for n in range(7)]

    assert space.grid_size == 6
    assert points[0] == {"arch": "resnet", "epochs": 2, "lr": 0.1}
    assert points[1] == {"arch": "resnet", "epochs": 2, "lr": 0.01}
    assert points[3] == {"arch": "vit", "epochs": 2, "lr": 0.1}
    assert points[6] is None


def test_random_draws_depend_on_seed_and_trial_only() -> None:
    space = parse_sweep_config(
        {
            "method": "random",
            "parameters": {
                "x": {"distribution": "normal", "mu": 5, "sigma": 1},
                "q": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2},
                "c": {"distribution": "constant", "value": 7},
            },
        }
    )

    first = space.trial(3, seed="acme/vision/abc")

    assert first == space.trial(3, seed="acme/vision/abc")
    assert first != space.trial(4, seed="acme/vision/abc")
    assert first is not None
    assert first["c"] == 7
    assert first["q"] % 2 == 0


# Nested parameters

NESTED = {
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {
        "optimizer": {
            "parameters": {
                "name": {"values": ["sgd", "adam"]},
                "lr": {"values": [0.1, 0.01]},
            }
        },
        "model": {"parameters": {"layers": {"values": [2, 3]}}},
        "epochs": {"value": 2},
    },
}


def nested_loss(config: Any) -> float:
    optimizer = config["optimizer"]
    bonus = 0.5 if optimizer["name"] == "adam" else 0.0
    return round(optimizer["lr"] * 10 + config["model"]["layers"] - bonus, 4)


def test_grid_over_nested_leaves() -> None:
    space = parse_sweep_config({**NESTED, "method": "grid"})

    points = [space.trial(n, seed="s") for n in range(space.grid_size or 0)]

    assert space.grid_size == 8
    assert [leaf.name for leaf in space.leaves] == [
        "epochs",
        "model.layers",
        "optimizer.lr",
        "optimizer.name",
    ]
    assert points[0] == {
        "epochs": 2,
        "model": {"layers": 2},
        "optimizer": {"lr": 0.1, "name": "sgd"},
    }
    assert points[1] == {
        "epochs": 2,
        "model": {"layers": 2},
        "optimizer": {"lr": 0.1, "name": "adam"},
    }
    seen = {
        (p["model"]["layers"], p["optimizer"]["lr"], p["optimizer"]["name"])
        for p in points
        if p is not None
    }
    assert len(seen) == 8
    assert space.trial(8, seed="s") is None


@pytest.mark.parametrize("method", ["grid", "random", "bayes"])
def test_nested_parameters_reach_run_config(ws: Workspace, method: str) -> None:
    config = {**NESTED, "method": method}
    if method == "bayes":
        config["random_trials"] = 2
    sweep_id = refstore.sweep(config, project=PROJECT, context=ws.context)

    def train() -> None:
        passed = {"optimizer": {"momentum": 0.9}, "batch": 8}
        with refstore.init(config=passed) as run:
            run.log({"loss": nested_loss(run.config)})

    runs = refstore.agent(sweep_id, train, count=4, project=PROJECT, context=ws.context)

    assert len(runs) == 4
    for run in runs:
        assert set(run.config) == {"optimizer", "model", "epochs", "batch"}
        optimizer = run.config["optimizer"]
        # The function's nested config merges with the trial's parameters.
        assert set(optimizer) == {"name", "lr", "momentum"}
        assert optimizer["name"] in ("sgd", "adam")
        assert optimizer["lr"] in (0.1, 0.01)
        assert run.config["model"]["layers"] in (2, 3)
    sweep = ws.api.sweep(f"{PROJECT}/{sweep_id}")
    assert sweep.parameters_of(runs[0]) == {
        "epochs": 2,
        "model.layers": runs[0].config["model"]["layers"],
        "optimizer.lr": runs[0].config["optimizer"]["lr"],
        "optimizer.name": runs[0].config["optimizer"]["name"],
    }


def test_trial_count_after_an_exhausted_grid_is_the_grid_size(ws: Workspace) -> None:
    sweep_id = refstore.sweep(GRID, project=PROJECT, context=ws.context)

    def train() -> None:
        with refstore.init() as run:
            run.log({"val_acc": accuracy(run.config)})

    first = refstore.agent(sweep_id, train, project=PROJECT, context=ws.context)
    again = refstore.agent(sweep_id, train, project=PROJECT, context=ws.context)

    sweep = ws.api.sweep(f"{PROJECT}/{sweep_id}")
    assert (len(first), len(again)) == (6, 0)
    assert (sweep.state, sweep.space.grid_size) == ("finished", 6)
    record = ws.context.catalog.get_sweep(PROJECT, sweep_id)
    assert record.trial_count == 6
