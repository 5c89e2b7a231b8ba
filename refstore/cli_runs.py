"""Commands that read runs and sweeps: ``runs ls``, ``runs show``, ``sweep show``.

:mod:`refstore.cli` adds them to the ``refstore`` group. They read through
:class:`refstore.Api`, so they work alike on the embedded catalog and on a
service (``REFSTORE_URL``). Whether a run has crashed is the catalog's call,
by its own clock and run timeout; heartbeat ages are by this machine's clock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import click

from refstore.api import Api
from refstore.artifact import Artifact
from refstore.catalog.base import RUN_STATES
from refstore.cli_output import EXIT_CODES, handle_errors, print_json, print_table
from refstore.errors import NotFoundError
from refstore.run import Run
from refstore.runs import project_path, split_path
from refstore.sweeps import Sweep

__all__ = ["COMMANDS"]

_SORT_FIELDS = ("created", "updated", "heartbeat", "id", "name", "state", "job_type")
_SORT_FORM = (
    f"use {', '.join(_SORT_FIELDS)}, config.KEY or summary.KEY, with a leading "
    "- for descending (e.g. -summary.val_acc)"
)
_FILTER_FORM = "use config.KEY=VALUE or summary.KEY=VALUE (e.g. config.lr=0.1)"


@click.group(epilog=EXIT_CODES)
def runs() -> None:
    """List and inspect runs: their state, config, summary and artifacts.

    A run is running, finished, failed, or crashed: still running by its
    record, but silent for longer than the catalog's run timeout (its
    process was killed, its machine lost, or it lost contact).
    """


@runs.command("ls", epilog=EXIT_CODES)
@click.argument("project")
@click.option("--state", type=click.Choice(RUN_STATES), help="Only runs in this state.")
@click.option("--job-type", help="Only runs of this job type.")
@click.option("--sweep", help="Only the trials of the sweep with this id.")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="config.KEY=VALUE or summary.KEY=VALUE (repeatable, all must hold); "
    "VALUE is read as JSON when it is JSON (0.1, true, null), else as text.",
)
@click.option(
    "--sort",
    metavar="FIELD",
    help="created (the default), updated, heartbeat, id, name, state, job_type, "
    "config.KEY or summary.KEY; a leading - sorts descending.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Show the first N runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@handle_errors
def runs_ls(
    project: str,
    state: str | None,
    job_type: str | None,
    sweep: str | None,
    filters: Sequence[str],
    sort: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List the runs of ENTITY/PROJECT, oldest first."""
    fields = {"state": state, "job_type": job_type, "sweep": sweep}
    wanted = {k: v for k, v in fields.items() if v is not None}
    wanted.update(_parse_filters(filters))
    order = None if sort is None else _SortOrder.parse(sort)
    api = Api()
    with _listing_hint(api, project_path(project, api.context)):
        found = api.runs(project, wanted)
    if order is not None:
        found = order.apply(found)
    found = found[:limit]
    if as_json:
        print_json([_run_dict(api, run) for run in found])
        return
    extra = None if order is None or "." not in order.field else order.field
    print_table([_run_row(api, run, extra) for run in found])


@runs.command("show", epilog=EXIT_CODES)
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@handle_errors
def runs_show(path: str, as_json: bool) -> None:
    """Show the run ENTITY/PROJECT/RUN_ID, with the artifacts it logged and used."""
    api = Api()
    with _listing_hint(api, split_path(path, api.context)[0]):
        run = api.run(path)
    data = _run_dict(api, run)
    data["logged"] = [_artifact_dict(a) for a in run.logged_artifacts()]
    data["used"] = [_artifact_dict(a) for a in run.used_artifacts()]
    if as_json:
        print_json(data)
        return
    _echo_run(data)


@click.group(epilog=EXIT_CODES)
def sweep() -> None:
    """Inspect sweeps: their trials and the best run by their metric.

    Sweeps are created and run from Python: refstore.sweep() and
    refstore.agent().
    """


@sweep.command("show", epilog=EXIT_CODES)
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep as JSON.")
@handle_errors
def sweep_show(path: str, as_json: bool) -> None:
    """Show the sweep ENTITY/PROJECT/SWEEP_ID, its trials and its best run.

    The best run is the one whose summary holds the best value of the
    sweep's metric, whatever its state: a trial that crashed after reporting
    still competes.
    """
    api = Api()
    project = split_path(path, api.context)[0]
    with _sweep_hint(api, project):
        found = api.sweep(path)
    data = _sweep_dict(found)
    if as_json:
        print_json(data)
        return
    _echo_sweep(data)


# -- parsing ---------------------------------------------------------------


def _parse_filters(items: Sequence[str]) -> dict[str, Any]:
    wanted: dict[str, Any] = {}
    for item in items:
        key, equals, text = item.partition("=")
        if any(operator in key for operator in "<>!"):
            raise click.UsageError(
                f"--filter {item!r}: only equality is supported; {_FILTER_FORM}, "
                "and order by a value with --sort"
            )
        if not equals or not _is_value_key(key):
            raise click.UsageError(f"--filter {item!r}: {_FILTER_FORM}")
        wanted[key] = _json_or_text(text)
    return wanted


def _is_value_key(key: str) -> bool:
    """Whether ``key`` is ``config.KEY`` or ``summary.KEY`` (dots nest)."""
    head, dot, rest = key.partition(".")
    parts = rest.split(".")
    return head in ("config", "summary") and bool(dot) and all(parts)


def _json_or_text(text: str) -> Any:
    # A shell has no types: 0.1 means the number, adam the word.
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


_MISSING = object()
_TIME_FIELDS = {
    "created": "created_at",
    "updated": "updated_at",
    "heartbeat": "heartbeat_at",
}


@dataclasses.dataclass(frozen=True)
class _SortOrder:
    """What ``--sort`` asked for: a field of the run, and the direction."""

    field: str
    descending: bool

    @classmethod
    def parse(cls, text: str) -> _SortOrder:
        field = text.removeprefix("-")
        if field not in _SORT_FIELDS and not _is_value_key(field):
            raise click.UsageError(f"--sort {text!r}: {_SORT_FORM}")
        return cls(field, text.startswith("-"))

    def apply(self, found: list[Run]) -> list[Run]:
        """Sorted by the field; runs without it come last, oldest first."""
        having = [run for run in found if _field(run, self.field) is not _MISSING]
        lacking = [run for run in found if _field(run, self.field) is _MISSING]
        # Stable either way: runs with equal values stay oldest first.
        having.sort(
            key=lambda run: _rank(_field(run, self.field)), reverse=self.descending
        )
        return having + lacking


def _field(run: Run, field: str) -> Any:
    """The value of a --sort field in ``run``; ``_MISSING`` when absent."""
    record = run.record
    if "." in field:
        return _nested(record.config, record.summary, field)
    value = getattr(record, _TIME_FIELDS.get(field, field))
    return _MISSING if value is None else value


def _nested(config: Mapping[str, Any], summary: Mapping[str, Any], key: str) -> Any:
    """The value at ``config.a.b`` or ``summary.a.b``; ``_MISSING`` when absent."""
    head, _, rest = key.partition(".")
    value: Any = config if head == "config" else summary
    for part in rest.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _rank(value: Any) -> tuple[int, Any]:
    """A sort key under which numbers, text and anything else compare."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, str | datetime.datetime):
        return (1, value)
    return (2, json.dumps(value, sort_keys=True, default=str))


# -- not found ---------------------------------------------------------------


@contextlib.contextmanager
def _listing_hint(api: Api, project: str) -> Iterator[None]:
    """Add to a not-found error the command that lists what does exist."""
    try:
        yield
    except NotFoundError as exc:
        raise NotFoundError(f"{exc}; {_project_hint(api, project)}") from exc


@contextlib.contextmanager
def _sweep_hint(api: Api, project: str) -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        if not _project_exists(api, project):
            raise NotFoundError(f"{exc}; `refstore ls` lists the projects") from exc
        # The catalog lists no sweeps; the sweeps that ran trials show in runs.
        ids = sorted({run.sweep for run in api.runs(project) if run.sweep})
        known = ", ".join(ids) if ids else "none"
        raise NotFoundError(
            f"{exc}; sweeps with trials in {project}: {known} (see `refstore "
            f"runs ls {project} --json`)"
        ) from exc


def _project_hint(api: Api, project: str) -> str:
    if _project_exists(api, project):
        return f"`refstore runs ls {project}` lists its runs"
    return "`refstore ls` lists the projects"


def _project_exists(api: Api, project: str) -> bool:
    return project in {found.path for found in api.projects()}


# -- rendering -----------------------------------------------------------------


def _run_dict(api: Api, run: Run) -> dict[str, Any]:
    record = run.record
    return {
        "path": run.path,
        "id": run.id,
        "name": run.name,
        "state": run.state,
        "job_type": run.job_type,
        "sweep": run.sweep,
        "created": record.created_at.isoformat(),
        "updated": record.updated_at.isoformat(),
        "heartbeat": record.heartbeat_at.isoformat(),
        "heartbeat_age_seconds": round(_age(api, run), 3),
        "config": dict(run.config),
        "summary": dict(run.summary),
    }


def _run_row(api: Api, run: Run, extra: str | None) -> dict[str, Any]:
    row = {
        "id": run.id,
        "name": run.name,
        "state": run.state,
        "job type": run.job_type,
        "created": run.record.created_at.isoformat(timespec="seconds"),
        "heartbeat": _ago(_age(api, run)),
        "sweep": run.sweep,
    }
    if extra is not None:
        # The value the rows are sorted by, so that the order reads.
        value = _field(run, extra)
        row[extra] = None if value is _MISSING else _shown(value)
    return row


def _age(api: Api, run: Run) -> float:
    # Clocks of two machines may disagree a little: never show a future beat.
    seconds = (api.context.now() - run.record.heartbeat_at).total_seconds()
    return max(0.0, seconds)


def _ago(seconds: float) -> str:
    units = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    for unit, size in units:
        count = int(seconds // size)
        if count >= 1:
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def _shown(value: Any) -> str:
    """A config or summary value as text: a string as it is, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _artifact_dict(artifact: Artifact) -> dict[str, Any]:
    return {
        "artifact": artifact.qualified_name,
        "type": artifact.type,
        "aliases": artifact.aliases,
    }


def _echo_run(data: dict[str, Any]) -> None:
    for label, key in (("run", "path"), ("name", "name"), ("job type", "job_type")):
        click.echo(f"{label:>10}: {data[key] or ''}")
    click.echo(f"{'state':>10}: {_state_text(data)}")
    click.echo(f"{'sweep':>10}: {data['sweep'] or ''}")
    for key in ("created", "updated"):
        click.echo(f"{key:>10}: {data[key]}")
    age = _ago(data["heartbeat_age_seconds"])
    click.echo(f"{'heartbeat':>10}: {data['heartbeat']} ({age})")
    _echo_values("config", data["config"])
    _echo_values("summary", data["summary"])
    _echo_artifacts("logged", data["logged"])
    _echo_artifacts("used", data["used"])


def _state_text(data: dict[str, Any]) -> str:
    if data["state"] != "crashed":
        return str(data["state"])
    age = _ago(data["heartbeat_age_seconds"])
    return (
        f"crashed (still running by its record, but its last heartbeat was {age}: "
        "its process was killed, its machine lost, or it lost contact)"
    )


def _echo_values(title: str, values: dict[str, Any]) -> None:
    click.echo(f"{title}:" if values else f"{title}: (empty)")
    # Sorted: a PostgreSQL catalog keeps JSON keys in an order of its own.
    for key, value in sorted(values.items()):
        click.echo(f"  {key}: {_shown(value)}")


def _echo_artifacts(title: str, artifacts: list[dict[str, Any]]) -> None:
    click.echo(f"{title}:" if artifacts else f"{title}: (none)")
    for found in artifacts:
        aliases = ", ".join(found["aliases"]) or "no aliases"
        click.echo(f"  {found['artifact']} ({found['type']}; {aliases})")


def _sweep_dict(found: Sweep) -> dict[str, Any]:
    space = found.space
    metric = None if space.metric is None else space.metric.name
    trials = found.runs
    best = None if metric is None else found.best_run()
    return {
        "sweep": found.path,
        "id": found.id,
        "method": space.method,
        "metric": metric,
        "goal": None if space.metric is None else space.metric.goal,
        "state": found.state,
        "trial_count": len(trials),
        "grid_size": space.grid_size,
        "runs": [_trial_dict(found, run, metric) for run in trials],
        "best_run": None if best is None else _trial_dict(found, best, metric),
        "config": dict(found.config),
    }


def _trial_dict(found: Sweep, run: Run, metric: str | None) -> dict[str, Any]:
    return {
        "path": run.path,
        "id": run.id,
        "state": run.state,
        "metric": None if metric is None else run.summary.get(metric),
        "parameters": found.parameters_of(run),
    }


def _echo_sweep(data: dict[str, Any]) -> None:
    metric = data["metric"]
    goal = f"{metric} ({data['goal']})" if metric else "(none)"
    grid = "" if data["grid_size"] is None else f" of {data['grid_size']} grid points"
    click.echo(f"{'sweep':>8}: {data['sweep']}")
    click.echo(f"{'method':>8}: {data['method']}")
    click.echo(f"{'metric':>8}: {goal}")
    click.echo(f"{'state':>8}: {data['state']}")
    click.echo(f"{'trials':>8}: {data['trial_count']}{grid}")
    click.echo(f"{'best run':>8}: {_best_text(data)}")
    print_table([_trial_row(trial, metric) for trial in data["runs"]])


def _best_text(data: dict[str, Any]) -> str:
    best = data["best_run"]
    if data["metric"] is None:
        return "(none: the sweep names no metric)"
    if best is None:
        return f"(none: no trial reported {data['metric']})"
    return (
        f"{best['path']} ({data['metric']} {_shown(best['metric'])}, {best['state']})"
    )


def _trial_row(trial: dict[str, Any], metric: str | None) -> dict[str, Any]:
    # Columns named as --filter and --sort name them: summary.X, config.X.
    row: dict[str, Any] = {"id": trial["id"], "state": trial["state"]}
    if metric is not None:
        value = trial["metric"]
        row[f"summary.{metric}"] = None if value is None else _shown(value)
    for name, value in trial["parameters"].items():
        row[f"config.{name}"] = _shown(value)
    return row


COMMANDS: list[click.Command] = [runs, sweep]
