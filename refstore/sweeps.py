"""Sweeps: searches over a parameter space, run locally by :func:`agent`.

::

    sweep_id = refstore.sweep(
        {"method": "grid", "metric": {"name": "val_acc", "goal": "maximize"},
         "parameters": {"lr": {"values": [0.1, 0.01]}}},
        project="acme/vision")

    def train():
        with refstore.init() as run:          # the trial's run
            lr = run.config["lr"]             # the trial's parameters
            ...
            run.log({"val_acc": accuracy})    # the metric, into the summary
            model = refstore.Artifact(f"model-{sweep_id}", type="model")
            ...
            run.log_artifact(model)           # one collection, a version per run

    refstore.agent(sweep_id, train, count=4, project="acme/vision")
    best = refstore.Api().sweep(f"acme/vision/{sweep_id}").best_run()
    best.logged_artifacts()

The agent runs trials one after another in this process. Several agents (in
several processes) can serve one sweep: trial numbers come from the catalog,
so no two agents run the same grid point. A trial whose function raises
after ``init()`` is marked failed and the agent goes on with the next one;
an error before ``init()`` recorded nothing and stops the agent.

A bayes sweep chooses each trial's parameters from the trials that ended
(finished, failed or crashed) having reported the metric
(:mod:`refstore.sweep_bayes`). Trials still running are left out: their
metric may still change. Agents serving one sweep at once may therefore
propose similar parameters, never the same trial number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from refstore.catalog.base import SweepRecord
from refstore.context import Context
from refstore.errors import RefstoreError
from refstore.run import Run
from refstore.runs import Trial, new_id, project_path, split_path, trial_scope
from refstore.sweep_bayes import observe, suggest
from refstore.sweep_space import Metric, SearchSpace, parse_sweep_config

__all__ = ["Sweep", "agent", "sweep"]

log = logging.getLogger(__name__)


def sweep(
    config: Mapping[str, Any],
    project: str | None = None,
    *,
    context: Context | None = None,
) -> str:
    """Create a sweep from its configuration; return its id."""
    parse_sweep_config(config)
    ctx = context or Context.current()
    record = ctx.catalog.create_sweep(project_path(project, ctx), new_id(), config)
    return record.id


def agent(
    sweep_id: str,
    function: Callable[[], object],
    count: int | None = None,
    project: str | None = None,
    *,
    context: Context | None = None,
) -> list[Run]:
    """Run up to ``count`` trials of a sweep; return their runs.

    ``function`` takes no arguments and calls :func:`refstore.init`, which
    returns the trial's run with the trial's parameters in ``run.config``.
    A grid sweep stops when its grid is used up (``count`` may be omitted);
    a random or bayes one needs ``count``.
    """
    ctx = context or Context.current()
    found = _find(sweep_id, project, ctx)
    space = parse_sweep_config(found.config)
    if count is None and space.method != "grid":
        raise RefstoreError(
            f"a {space.method} sweep never runs out of trials: pass count=N"
        )
    runs: list[Run] = []
    while count is None or len(runs) < count:
        run = _run_trial(ctx, found, space, function)
        if run is None:
            break
        runs.append(run)
    return runs


def _find(sweep_id: str, project: str | None, ctx: Context) -> SweepRecord:
    """``sweep_id`` is an id in ``project``, or ``entity/project/id``."""
    if "/" in sweep_id:
        return ctx.catalog.get_sweep(*split_path(sweep_id, ctx))
    return ctx.catalog.get_sweep(project_path(project, ctx), sweep_id)


def _run_trial(
    ctx: Context,
    found: SweepRecord,
    space: SearchSpace,
    function: Callable[[], object],
) -> Run | None:
    catalog = ctx.catalog
    _, number = catalog.next_trial(found.project, found.id, limit=space.grid_size)
    # A service that predates ``limit`` ignores it; the grid then runs out here.
    params = None if number is None else _parameters(ctx, found, space, number)
    if number is None or params is None:
        catalog.finish_sweep(found.project, found.id)
        log.info("sweep %s has run every grid point", found.path)
        return None
    trial = Trial(found.project, found.id, params, ctx)
    with trial_scope(trial):
        _call(function, trial, number)
    if trial.run is None:
        raise RefstoreError(
            f"the function of sweep {found.path} returned without calling "
            "refstore.init(); call it to get the trial's run and parameters"
        )
    trial.run.finish()
    return trial.run


def _parameters(
    ctx: Context, found: SweepRecord, space: SearchSpace, number: int
) -> dict[str, Any] | None:
    if space.method != "bayes":
        return space.trial(number, seed=found.path)
    ended = [
        (run.config, run.summary)
        for run in ctx.catalog.list_runs(found.project, sweep=found.id)
        if run.state != "running"
    ]
    history = observe(space, ended)
    log.debug(
        "trial %d of sweep %s: %d ended trials reported %s",
        number,
        found.path,
        len(history),
        space.metric.name if space.metric else None,
    )
    return suggest(space, number, found.path, history)


def _call(function: Callable[[], object], trial: Trial, number: int) -> None:
    try:
        function()
    except Exception:
        if trial.run is None:
            raise  # nothing was recorded: likely a bug before the training
        log.warning(
            "trial %d of sweep %s/%s failed; going on with the next",
            number,
            trial.project,
            trial.sweep,
            exc_info=True,
        )
        trial.run.finish(exit_code=1)


class Sweep:
    """A sweep read from the catalog: its configuration and its runs."""

    def __init__(self, record: SweepRecord, context: Context) -> None:
        self._record = record
        self._context = context

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def path(self) -> str:
        return self._record.path

    @property
    def config(self) -> Mapping[str, Any]:
        return self._record.config

    @property
    def state(self) -> str:
        return self._record.state

    @property
    def metric(self) -> Metric | None:
        return parse_sweep_config(self.config).metric

    @property
    def space(self) -> SearchSpace:
        """The parsed configuration: method, metric, parameters, grid size."""
        return parse_sweep_config(self.config)

    def parameters_of(self, run: Run) -> dict[str, Any]:
        """The values a trial's run took for the sweep's parameters, by name.

        They come from the run's config, where the trial's parameters win
        over any config its function passed; a parameter absent there (a run
        edited since) is left out. Nested parameters are named by their
        dotted path (``optimizer.lr``), as ``config.`` filters name them.
        """
        return self.space.values_in(run.config)

    @property
    def runs(self) -> list[Run]:
        """The sweep's runs, oldest first, each with its config and summary.

        A trial whose process died (killed, machine lost) reads as crashed.
        """
        records = self._context.catalog.list_runs(self.project, sweep=self.id)
        return [Run(record, self._context) for record in records]

    def best_run(self) -> Run | None:
        """The run whose summary holds the best value of the sweep's metric.

        Every trial that reported the metric competes, whatever its state:
        a trial that crashed or failed after reporting keeps the value it
        reached (its ``state`` tells; filter ``sweep.runs`` for finished
        ones only). Trials that never reported it are left out.
        """
        metric = self.metric
        if metric is None:
            raise RefstoreError(
                f"sweep {self.path} names no metric; sort sweep.runs by a "
                "summary value instead"
            )
        best: tuple[float, Run] | None = None
        for run in self.runs:
            value = metric.value_in(run.summary)
            if value is not None and (best is None or metric.better(value, best[0])):
                best = (value, run)
        return None if best is None else best[1]

    def __repr__(self) -> str:
        return f"<Sweep {self.path} state={self.state}>"
