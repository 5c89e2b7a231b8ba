"""Bayes sweeps: TPE proposals, pure and through the agent, embedded and served."""

from __future__ import annotations

import math
import statistics
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import refstore
from refstore.catalog.base import NewRun
from refstore.errors import RefstoreError
from refstore.sweep_bayes import Observation, observe, suggest
from refstore.sweep_space import parse_sweep_config
from tests.helpers import Workspace
from tests.service import workspace

PROJECT = "acme/vision"
SEEDS = [f"acme/vision/sweep{n}" for n in range(7)]
QUADRATIC = {
    "metric": {"name": "score", "goal": "maximize"},
    "parameters": {
        "x": {"min": -5.0, "max": 5.0},
        "y": {"min": -5.0, "max": 5.0},
    },
}


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path, catalog_mode: str) -> Iterator[Workspace]:
    with workspace(catalog_mode, moto_s3, tmp_path) as opened:
        yield opened


def score(params: dict[str, Any]) -> float:
    """A bowl whose top, 0, is at (1.3, -0.7)."""
    return -((params["x"] - 1.3) ** 2) - (params["y"] + 0.7) ** 2


def best_after(method: str, seed: str, trials: int) -> float:
    """The best score a sweep of ``method`` reaches in ``trials`` trials."""
    space = parse_sweep_config({**QUADRATIC, "method": method})
    history: list[Observation] = []
    for number in range(trials):
        if method == "bayes":
            params = suggest(space, number, seed, history)
        else:
            params = space.trial(number, seed)
        assert params is not None
        history.append(Observation(space.values_in(params), -score(params)))
    return -min(observation.loss for observation in history)


def test_bayes_beats_random_search_on_a_quadratic() -> None:
    # Same seeds, so both draw the same first (random) trials; 30 trials.
    bayes = [best_after("bayes", seed, 30) for seed in SEEDS]
    random = [best_after("random", seed, 30) for seed in SEEDS]

    # Measured: median distance to the top 0.14 (bayes) against 0.71
    # (random), and 6 of 7 bayes sweeps beat the random median. The
    # proposals are seeded, so these never vary from run to run; the
    # margins leave room to tune the estimator.
    median_random = statistics.median(random)
    assert statistics.median(bayes) > median_random / 3
    assert sum(best > median_random for best in bayes) >= 5


def test_the_first_trials_are_the_random_draws() -> None:
    space = parse_sweep_config({**QUADRATIC, "method": "bayes"})
    history = [Observation({"x": 0.0, "y": 0.0}, 1.0)] * 3

    assert space.random_trials == 5  # max(5, 2 x 2 parameters)
    for number in range(5):
        assert suggest(space, number, "s", history) == space.trial(number, "s")
    assert suggest(space, 5, "s", history) != space.trial(5, "s")


def test_too_few_observations_fall_back_to_random_draws() -> None:
    space = parse_sweep_config({**QUADRATIC, "method": "bayes", "random_trials": 1})
    one = [Observation({"x": 0.0, "y": 0.0}, 1.0)]

    assert suggest(space, 7, "s", one) == space.trial(7, "s")


def test_proposals_depend_on_seed_trial_and_history_only() -> None:
    space = parse_sweep_config({**QUADRATIC, "method": "bayes"})
    history = [
        Observation({"x": float(n) - 4, "y": 0.5 * n}, float(n)) for n in range(8)
    ]

    first = suggest(space, 8, "acme/vision/abc", history)

    assert first == suggest(space, 8, "acme/vision/abc", list(history))
    assert first != suggest(space, 8, "acme/vision/abd", history)
    assert first != suggest(space, 9, "acme/vision/abc", history)


MIXED = {
    "method": "bayes",
    "metric": {"name": "loss", "goal": "minimize"},
    "random_trials": 3,
    "parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
        "layers": {"min": 2, "max": 6},
        "dropout": {"distribution": "q_uniform", "min": 0.0, "max": 0.5, "q": 0.1},
        "noise": {"distribution": "q_normal", "mu": 0.0, "sigma": 2.0, "q": 0.5},
        "shift": {"distribution": "normal", "mu": 10.0, "sigma": 1.0},
        "opt": {"values": ["sgd", "adam", "rmsprop"]},
        "model": {"parameters": {"width": {"values": [64, 128]}}},
        "epochs": {"value": 3},
    },
}


def mixed_loss(params: dict[str, Any]) -> float:
    return (
        abs(math.log10(params["lr"]) + 3)
        + abs(params["layers"] - 4)
        + (0.0 if params["opt"] == "adam" else 1.0)
        + params["model"]["width"] / 128
    )


def test_proposals_keep_to_each_distribution() -> None:
    space = parse_sweep_config(MIXED)
    history: list[Observation] = []

    for number in range(40):
        params = suggest(space, number, "acme/vision/mixed", history)
        history.append(Observation(space.values_in(params), mixed_loss(params)))

        assert 1e-5 <= params["lr"] <= 1e-1
        assert type(params["layers"]) is int
        assert 2 <= params["layers"] <= 6
        assert math.isclose(params["dropout"] * 10, round(params["dropout"] * 10))
        assert 0.0 <= params["dropout"] <= 0.5
        assert params["noise"] * 2 == round(params["noise"] * 2)
        assert isinstance(params["shift"], float)
        assert params["opt"] in ("sgd", "adam", "rmsprop")
        assert params["model"] == {"width": params["model"]["width"]}
        assert params["model"]["width"] in (64, 128)
        assert params["epochs"] == 3
    modelled = [o.values for o in history[20:]]
    # Once modelled, the best choices dominate: adam, and 4 layers.
    assert sum(v["opt"] == "adam" for v in modelled) > len(modelled) / 2
    assert sum(v["layers"] == 4 for v in modelled) > len(modelled) / 3


def test_trials_that_did_not_report_are_not_observed() -> None:
    space = parse_sweep_config({**QUADRATIC, "method": "bayes"})
    trials = [
        ({"x": 1.0, "y": 2.0}, {"score": 3.0}),
        ({"x": 1.0, "y": 2.0}, {}),
        ({"x": 1.0, "y": 2.0}, {"score": float("nan")}),
        ({"x": 1.0, "y": 2.0}, {"score": "high"}),
    ]

    assert observe(space, trials) == [Observation({"x": 1.0, "y": 2.0}, -3.0)]


# Through the agent


def bayes_sweep(ws: Workspace, config: dict[str, Any] | None = None) -> str:
    return refstore.sweep(
        config or {**QUADRATIC, "method": "bayes"}, project=PROJECT, context=ws.context
    )


def train() -> None:
    with refstore.init() as run:
        run.log({"score": score(dict(run.config))})


def test_a_bayes_sweep_through_the_agent(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("refstore.sweeps.new_id", lambda: "agent001")
    sweep_id = bayes_sweep(ws)

    runs = refstore.agent(
        sweep_id, train, count=20, project=PROJECT, context=ws.context
    )

    scores = [run.summary["score"] for run in runs]
    best = ws.api.sweep(f"{PROJECT}/{sweep_id}").best_run()
    assert best is not None
    assert best.summary["score"] == max(scores)
    # The modelled trials (after the 5 random ones) closed in on the top.
    assert max(scores[5:]) > max(scores[:5])
    assert max(scores) > -0.5
    assert len(runs) == len({run.id for run in runs}) == 20
    assert ws.context.catalog.get_sweep(PROJECT, sweep_id).trial_count == 20
    with pytest.raises(RefstoreError, match="a bayes sweep never runs out"):
        refstore.agent(sweep_id, train, project=PROJECT, context=ws.context)


def test_a_bayes_sweep_is_reproducible_for_a_sweep_id(
    moto_s3: Any, tmp_path: Path, catalog_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("refstore.sweeps.new_id", lambda: "fixed001")
    configs = []
    for home in ("first", "second"):
        with workspace(catalog_mode, moto_s3, tmp_path / home) as opened:
            sweep_id = bayes_sweep(opened)
            runs = refstore.agent(
                sweep_id, train, count=8, project=PROJECT, context=opened.context
            )
            configs.append([dict(run.config) for run in runs])

    assert sweep_id == "fixed001"
    assert configs[0] == configs[1]


def test_bayes_ignores_trials_still_running(ws: Workspace) -> None:
    config = {**QUADRATIC, "method": "bayes", "random_trials": 1}
    sweep_id = bayes_sweep(ws, config)
    refstore.agent(sweep_id, train, count=3, project=PROJECT, context=ws.context)
    ended = [(r.config, r.summary) for r in ws.api.sweep(f"{PROJECT}/{sweep_id}").runs]
    # Another agent's trial: it reported a score, but is still training.
    catalog = ws.context.catalog
    catalog.start_run(
        NewRun(PROJECT, "busy", config={"x": 4.0, "y": 4.0}, sweep=sweep_id), "never"
    )
    catalog.update_run(PROJECT, "busy", summary={"score": 100.0})
    busy = ({"x": 4.0, "y": 4.0}, {"score": 100.0})

    [run] = refstore.agent(
        sweep_id, train, count=1, project=PROJECT, context=ws.context
    )

    space = parse_sweep_config(config)
    seed = f"{PROJECT}/{sweep_id}"
    assert dict(run.config) == suggest(space, 3, seed, observe(space, ended))
    assert dict(run.config) != suggest(space, 3, seed, observe(space, [*ended, busy]))


def test_agents_in_threads_share_one_bayes_sweep(ws: Workspace) -> None:
    sweep_id = bayes_sweep(ws)
    found: list[Any] = []

    def serve() -> None:
        found.extend(
            refstore.agent(
                sweep_id, train, count=5, project=PROJECT, context=ws.context
            )
        )

    agents = [threading.Thread(target=serve) for _ in range(3)]
    for agent in agents:
        agent.start()
    for agent in agents:
        agent.join()

    assert len(found) == len({run.id for run in found}) == 15
    assert ws.context.catalog.get_sweep(PROJECT, sweep_id).trial_count == 15
