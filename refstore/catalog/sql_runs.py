"""Runs and sweeps in the SQL catalog.

A run is created or resumed in one transaction that first looks for it with
its row locked, so two processes resuming one run id (``resume="allow"``)
both end up with the same run, and with ``resume="never"`` exactly one of
them creates it. A sweep hands out trial numbers from a counter on its row,
taken under the row's lock: agents in several processes never get the same
trial, and with a limit (a grid's size) none gets a number past it.

A run's ``crashed`` state is stored nowhere: a run stored as running whose
heartbeat is older than the transaction's ``now`` minus the run timeout is
reported as crashed, and filtered as such in SQL. The embedded catalog and
the service thereby agree, each by its own clock and timeout, and a run
revives as soon as its heartbeat is fresh again.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select, update
from sqlalchemy.engine import Row

from refstore.catalog.base import (
    NewRun,
    Resume,
    RunRecord,
    RunState,
    StoredRunState,
    SweepRecord,
)
from refstore.catalog.run_filters import Lookup, matches
from refstore.catalog.sql_rows import (
    Tx,
    check_json,
    inserted,
    listing,
    project_id,
    split_project,
)
from refstore.catalog.sql_run_filters import condition
from refstore.catalog.tables import projects, runs, sweeps
from refstore.errors import ConflictError, NotFoundError

__all__ = [
    "create_sweep",
    "finish_sweep",
    "get_run",
    "get_sweep",
    "list_runs",
    "next_trial",
    "run_pk",
    "run_records",
    "run_select",
    "start_run",
    "update_run",
]

_LISTED = 10


# -- runs -------------------------------------------------------------------


def run_select() -> Select[Any]:
    """Runs with their project and sweep, as :func:`run_records` reads them."""
    return (
        select(
            runs,
            projects.c.entity.label("entity"),
            projects.c.name.label("project_name"),
            sweeps.c.key.label("sweep_key"),
        )
        .join(projects, projects.c.id == runs.c.project_id)
        .outerjoin(sweeps, sweeps.c.id == runs.c.sweep_id)
    )


def run_records(tx: Tx, rows: Any) -> list[RunRecord]:
    return [
        RunRecord(
            project=f"{row.entity}/{row.project_name}",
            id=row.key,
            name=row.name,
            job_type=row.job_type,
            state="crashed" if _crashed(tx, row) else row.state,
            config=row.config,
            summary=row.summary,
            sweep=row.sweep_key,
            created_at=row.created_at,
            updated_at=row.updated_at,
            heartbeat_at=row.heartbeat_at,
        )
        for row in rows
    ]


def _silent_since(tx: Tx) -> datetime.datetime:
    """A running run whose last heartbeat is older than this has crashed."""
    return tx.now - tx.run_timeout


def _crashed(tx: Tx, row: Any) -> bool:
    return bool(row.state == "running" and row.heartbeat_at < _silent_since(tx))


def _state_is(tx: Tx, state: RunState) -> ColumnElement[bool]:
    if state == "crashed":
        return and_(runs.c.state == "running", runs.c.heartbeat_at < _silent_since(tx))
    if state == "running":
        return and_(runs.c.state == "running", runs.c.heartbeat_at >= _silent_since(tx))
    return runs.c.state == state


def _find_run(tx: Tx, project: str, run_id: str, *, lock: bool = False) -> Row[Any]:
    pk = project_id(tx, project)
    query = run_select().where(runs.c.project_id == pk, runs.c.key == run_id)
    if lock:
        query = query.with_for_update(of=runs)
    row = tx.conn.execute(query).first()
    if row is not None:
        return row
    recent = tx.conn.execute(
        select(runs.c.key)
        .where(runs.c.project_id == pk)
        .order_by(runs.c.id.desc())
        .limit(_LISTED + 1)
    ).scalars()
    entity, name = split_project(project)
    raise NotFoundError(
        f"no run {run_id!r} in project {entity}/{name}; "
        + listing("its newest runs are", list(recent), "it has no runs")
    )


def run_pk(tx: Tx, project: str, run_id: str) -> int:
    return int(_find_run(tx, project, run_id).id)


def get_run(tx: Tx, project: str, run_id: str) -> RunRecord:
    return run_records(tx, [_find_run(tx, project, run_id)])[0]


def start_run(tx: Tx, new: NewRun, resume: Resume) -> tuple[RunRecord, bool]:
    project_pk = project_id(tx, new.project, create=True)
    sweep_pk = _find_sweep(tx, new.project, new.sweep).id if new.sweep else None
    existing = _locked_run(tx, project_pk, new.id)
    if existing is None:
        if resume == "must":
            raise NotFoundError(
                f"no run {new.id!r} in project {new.project} to resume; "
                "resume='allow' creates it when it does not exist"
            )
        if _insert_run(tx, project_pk, sweep_pk, new):
            return get_run(tx, new.project, new.id), False
        # Another process created it between the look and the insert.
        existing = _locked_run(tx, project_pk, new.id)
        assert existing is not None
    if resume == "never":
        raise ConflictError(
            f"the run {new.project}/{new.id} already exists; resume it with "
            "resume='allow' (or 'must'), or start a run with another id"
        )
    _resume(tx, existing, new, sweep_pk)
    return get_run(tx, new.project, new.id), True


def _locked_run(tx: Tx, project_pk: int, key: str) -> Row[Any] | None:
    query = (
        select(runs)
        .where(runs.c.project_id == project_pk, runs.c.key == key)
        .with_for_update()
    )
    return tx.conn.execute(query).first()


def _insert_run(tx: Tx, project_pk: int, sweep_pk: int | None, new: NewRun) -> bool:
    values = {
        "project_id": project_pk,
        "key": new.id,
        "name": new.name,
        "job_type": new.job_type,
        "state": "running",
        "config": check_json(new.config, f"config of run {new.id}"),
        "summary": {},
        "sweep_id": sweep_pk,
        "created_at": tx.now,
        "updated_at": tx.now,
        "heartbeat_at": tx.now,
    }
    return inserted(tx, runs, ["project_id", "key"], values)


def _resume(tx: Tx, row: Row[Any], new: NewRun, sweep_pk: int | None) -> None:
    config = check_json({**row.config, **new.config}, f"config of run {new.id}")
    tx.conn.execute(
        update(runs)
        .where(runs.c.id == row.id)
        .values(
            state="running",
            config=config,
            name=new.name or row.name,
            job_type=new.job_type or row.job_type,
            sweep_id=sweep_pk if sweep_pk is not None else row.sweep_id,
            updated_at=tx.now,
            heartbeat_at=tx.now,
        )
    )


def update_run(
    tx: Tx,
    project: str,
    run_id: str,
    *,
    config: Mapping[str, Any] | None,
    summary: Mapping[str, Any] | None,
    state: StoredRunState | None,
) -> RunRecord:
    row = _find_run(tx, project, run_id, lock=True)
    values: dict[str, Any] = {"updated_at": tx.now}
    edit_only = state is None and (config is not None or summary is not None)
    # Anyone may edit a crashed run's config or summary (Api().run(path)):
    # that is no sign of life. A heartbeat or a new state from its owner is.
    if not (edit_only and _crashed(tx, row)):
        values["heartbeat_at"] = tx.now
    if config is not None:
        values["config"] = check_json(config, f"config of run {run_id}")
    if summary is not None:
        values["summary"] = check_json(summary, f"summary of run {run_id}")
    if state is not None:
        values["state"] = state
    tx.conn.execute(update(runs).where(runs.c.id == row.id).values(values))
    return get_run(tx, project, run_id)


def list_runs(
    tx: Tx,
    project: str,
    *,
    state: RunState | None,
    job_type: str | None,
    sweep: str | None,
    where: Sequence[Lookup] = (),
) -> list[RunRecord]:
    query = run_select().where(runs.c.project_id == project_id(tx, project))
    if state is not None:
        query = query.where(_state_is(tx, state))
    if job_type is not None:
        query = query.where(runs.c.job_type == job_type)
    if sweep is not None:
        query = query.where(sweeps.c.key == sweep)
    dialect = tx.conn.dialect.name
    for lookup in where:
        query = query.where(condition(dialect, runs.c[lookup.column], lookup))
    found = run_records(tx, tx.conn.execute(query.order_by(runs.c.id)))
    # What SQL only narrowed (lists, dicts, large numbers) Python decides.
    rest = [lookup for lookup in where if not lookup.in_sql]
    return [record for record in found if matches(record, rest)] if rest else found


# -- sweeps -----------------------------------------------------------------


def _sweep_select() -> Select[Any]:
    return select(
        sweeps,
        projects.c.entity.label("entity"),
        projects.c.name.label("project_name"),
    ).join(projects, projects.c.id == sweeps.c.project_id)


def _sweep_record(row: Row[Any]) -> SweepRecord:
    return SweepRecord(
        project=f"{row.entity}/{row.project_name}",
        id=row.key,
        config=row.config,
        state=row.state,
        trial_count=row.trial_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _find_sweep(tx: Tx, project: str, sweep_id: str, *, lock: bool = False) -> Row[Any]:
    pk = project_id(tx, project)
    query = _sweep_select().where(sweeps.c.project_id == pk, sweeps.c.key == sweep_id)
    if lock:
        query = query.with_for_update(of=sweeps)
    row = tx.conn.execute(query).first()
    if row is None:
        raise NotFoundError(
            f"no sweep {sweep_id!r} in project {project}; create one with "
            "refstore.sweep(config, project=...)"
        )
    return row


def create_sweep(
    tx: Tx, project: str, sweep_id: str, config: Mapping[str, Any]
) -> SweepRecord:
    pk = project_id(tx, project, create=True)
    values = {
        "project_id": pk,
        "key": sweep_id,
        "config": check_json(config, f"config of sweep {sweep_id}"),
        "state": "pending",
        "trial_count": 0,
        "created_at": tx.now,
        "updated_at": tx.now,
    }
    if not inserted(tx, sweeps, ["project_id", "key"], values):
        raise ConflictError(f"the sweep {project}/{sweep_id} already exists")
    return get_sweep(tx, project, sweep_id)


def get_sweep(tx: Tx, project: str, sweep_id: str) -> SweepRecord:
    return _sweep_record(_find_sweep(tx, project, sweep_id))


def next_trial(
    tx: Tx, project: str, sweep_id: str, limit: int | None = None
) -> tuple[SweepRecord, int | None]:
    row = _find_sweep(tx, project, sweep_id, lock=True)
    if limit is not None and row.trial_count >= limit:
        # Used up: count nothing, so that trial_count stays the number of
        # trials handed out however often agents ask.
        return _sweep_record(row), None
    state = "running" if row.state == "pending" else row.state
    tx.conn.execute(
        update(sweeps)
        .where(sweeps.c.id == row.id)
        .values(trial_count=row.trial_count + 1, state=state, updated_at=tx.now)
    )
    return get_sweep(tx, project, sweep_id), int(row.trial_count)


def finish_sweep(tx: Tx, project: str, sweep_id: str) -> SweepRecord:
    row = _find_sweep(tx, project, sweep_id, lock=True)
    tx.conn.execute(
        update(sweeps)
        .where(sweeps.c.id == row.id)
        .values(state="finished", updated_at=tx.now)
    )
    return get_sweep(tx, project, sweep_id)
