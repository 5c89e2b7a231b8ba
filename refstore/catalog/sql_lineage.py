"""Lineage in the SQL catalog: which runs logged and used which versions.

The graph is bipartite: an edge joins a run and a version, ``logged`` (the
run produced it) or ``used`` (the run consumed it). Data flows from a
version to the runs that used it and from a run to what it logged, and that
flow must never come back to where it started: a model trained on data
derived from itself has no first version.

A run that logs what it used, or uses what it logged, would point an edge
back at itself; such an edge is not recorded, and the run carries on. A
longer cycle, through other runs (a resumed run using what a later run made
of its output, or logging content identical to a version upstream of it),
is refused with a ConflictError that names the path. The check walks
upstream, where the graph is narrow (ancestry), not downstream, where one
dataset may feed thousands of runs, in one recursive query. On PostgreSQL
lineage writes take one transaction-scoped advisory lock first, so that two
transactions cannot each add half of a cycle unseen by the other; SQLite
write transactions already hold the database's write lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from sqlalchemy import CTE, Select, and_, func, select

from refstore.catalog.base import RunRecord, VersionRecord
from refstore.catalog.sql_rows import (
    Tx,
    find_artifact,
    find_version,
    insert_missing,
    live,
    records,
    version_by_number,
    version_select,
)
from refstore.catalog.sql_runs import run_pk, run_records, run_select
from refstore.catalog.tables import artifacts, lineage_edges, projects, runs, versions
from refstore.errors import ConflictError

__all__ = [
    "add_edge",
    "logged_by",
    "logged_versions",
    "run_pk",
    "use_version",
    "used_by",
    "used_versions",
]

Kind = Literal["logged", "used"]
_OPPOSITE: dict[Kind, Kind] = {"logged": "used", "used": "logged"}
_LOCK_KEY = int.from_bytes(b"lineage", "big")  # any bigint; the migrations' differs
Node = tuple[Literal["run", "version"], int]


def add_edge(tx: Tx, run: int, version: int, kind: Kind) -> None:
    """Record that ``run`` logged or used ``version``, unless it closes a cycle."""
    _serialise_lineage_writes(tx)
    if _has_edge(tx, run, version, _OPPOSITE[kind]):
        return
    if _has_edge(tx, run, version, kind):
        return
    _refuse_cycle(tx, run, version, kind)
    values = {"run_id": run, "version_id": version, "kind": kind, "created_at": tx.now}
    keys = ["run_id", "version_id", "kind"]
    tx.conn.execute(insert_missing(tx.conn, lineage_edges, keys, values))


def _serialise_lineage_writes(tx: Tx) -> None:
    if tx.conn.dialect.name == "postgresql":
        tx.conn.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))


def _has_edge(tx: Tx, run: int, version: int, kind: Kind) -> bool:
    query = select(lineage_edges.c.id).where(
        lineage_edges.c.run_id == run,
        lineage_edges.c.version_id == version,
        lineage_edges.c.kind == kind,
    )
    return tx.conn.execute(query).first() is not None


# -- cycles -----------------------------------------------------------------


def _refuse_cycle(tx: Tx, run: int, version: int, kind: Kind) -> None:
    """ConflictError when the new edge would let data flow back to its source.

    ``run`` using ``version`` closes a cycle when ``run`` logged something
    upstream of ``version``; ``run`` logging ``version`` does when
    ``version`` is upstream of what ``run`` used.
    """
    if kind == "used":
        starts = [version]
        goal = _logged_by_run(tx, run)
    else:
        starts = list(tx.conn.execute(_used_by_run(run)).scalars())
        goal = _is_version(version)
    if not starts:
        return
    start = select(versions.c.id.label("version_id")).where(versions.c.id.in_(starts))
    if not _reaches(tx, _upstream(start), run, version, kind):
        return
    path = _path(tx, starts, goal)
    raise ConflictError(_cycle_message(tx, path, run, version, kind))


def _used_by_run(run: int) -> Select[Any]:
    return select(lineage_edges.c.version_id).where(
        lineage_edges.c.run_id == run, lineage_edges.c.kind == "used"
    )


def _upstream(start: Select[Any]) -> CTE:
    """The versions ``start`` selects and every version upstream of them.

    UNION, not UNION ALL: each version is visited once, so the walk ends
    even on a graph that holds a cycle recorded before cycles were refused.
    """
    walk = start.cte("upstream", recursive=True)
    logged = lineage_edges.alias("logged")
    used = lineage_edges.alias("used")
    step = (
        select(used.c.version_id)
        .select_from(walk)
        .join(
            logged,
            and_(logged.c.version_id == walk.c.version_id, logged.c.kind == "logged"),
        )
        .join(used, and_(used.c.run_id == logged.c.run_id, used.c.kind == "used"))
    )
    return walk.union(step)


def _reaches(tx: Tx, upstream: CTE, run: int, version: int, kind: Kind) -> bool:
    found = select(upstream.c.version_id)
    if kind == "used":
        query = select(lineage_edges.c.id).where(
            lineage_edges.c.run_id == run,
            lineage_edges.c.kind == "logged",
            lineage_edges.c.version_id.in_(found),
        )
    else:
        query = found.where(upstream.c.version_id == version)
    return tx.conn.execute(query.limit(1)).first() is not None


# -- naming the cycle -------------------------------------------------------

Goal = Callable[[Sequence[int]], int | None]


def _logged_by_run(tx: Tx, run: int) -> Goal:
    def goal(frontier: Sequence[int]) -> int | None:
        query = select(lineage_edges.c.version_id).where(
            lineage_edges.c.run_id == run,
            lineage_edges.c.kind == "logged",
            lineage_edges.c.version_id.in_(frontier),
        )
        return tx.conn.execute(query.limit(1)).scalar()

    return goal


def _is_version(version: int) -> Goal:
    return lambda frontier: version if version in frontier else None


def _path(tx: Tx, starts: Sequence[int], goal: Goal) -> list[Node]:
    """The flow from the version ``goal`` finds down to one of ``starts``.

    A walk upstream, breadth first, one query per step; it runs only once a
    cycle is known, to name it.
    """
    below: dict[int, tuple[int, int] | None] = dict.fromkeys(starts)
    frontier = list(starts)
    while frontier:
        found = goal(frontier)
        if found is not None:
            return _downstream(found, below)
        frontier = _step_up(tx, frontier, below)
    raise AssertionError("the recursive query found a cycle that the walk did not")


def _step_up(
    tx: Tx, frontier: Sequence[int], below: dict[int, tuple[int, int] | None]
) -> list[int]:
    logged = lineage_edges.alias("logged")
    used = lineage_edges.alias("used")
    query = (
        select(logged.c.version_id, logged.c.run_id, used.c.version_id)
        .join(used, and_(used.c.run_id == logged.c.run_id, used.c.kind == "used"))
        .where(logged.c.kind == "logged", logged.c.version_id.in_(frontier))
    )
    reached = []
    for made, run, source in tx.conn.execute(query):
        if source not in below:
            below[source] = (run, made)
            reached.append(source)
    return reached


def _downstream(found: int, below: dict[int, tuple[int, int] | None]) -> list[Node]:
    path: list[Node] = [("version", found)]
    step = below[found]
    while step is not None:
        run, made = step
        path += [("run", run), ("version", made)]
        step = below[made]
    return path


def _cycle_message(tx: Tx, path: list[Node], run: int, version: int, kind: Kind) -> str:
    # The refused run begins the flow it would use, and ends the one it logs.
    path = [("run", run), *path] if kind == "used" else [*path, ("run", run)]
    names = _names(tx, path, run)
    flow = _flow(path, names)
    me, it = names[("run", run)], names[("version", version)]
    if kind == "used":
        return (
            f"{flow}: {me} cannot use {it}, which would close a cycle in the "
            "lineage; use it from a new run"
        )
    return (
        f"{flow}: {me} cannot log content identical to {it}, which would close "
        "a cycle in the lineage; log it from a new run, or change its content"
    )


def _flow(path: list[Node], names: dict[Node, str]) -> str:
    """``run R1 logged A:v0, used by run R2, which logged B:v0``."""
    first = path[0]
    words = [("run " if first[0] == "run" else "") + names[first]]
    for position, node in enumerate(path[1:]):
        if node[0] == "version":
            lead = " logged" if position == 0 else ", which logged"
            words.append(f"{lead} {names[node]}")
        else:
            lead = " was used by" if position == 0 else ", used by"
            words.append(f"{lead} run {names[node]}")
    return "".join(words)


def _names(tx: Tx, path: list[Node], run: int) -> dict[Node, str]:
    """Runs and versions as people know them; the project only when another."""
    run_ids = [pk for kind, pk in path if kind == "run"]
    version_ids = [pk for kind, pk in path if kind == "version"]
    where = (projects.c.id, projects.c.entity, projects.c.name)
    run_rows = tx.conn.execute(
        select(runs.c.id, runs.c.key, *where)
        .join(projects, projects.c.id == runs.c.project_id)
        .where(runs.c.id.in_(run_ids))
    ).all()
    version_rows = tx.conn.execute(
        select(versions.c.id, artifacts.c.name, versions.c.version, *where)
        .join(artifacts, artifacts.c.id == versions.c.artifact_id)
        .join(projects, projects.c.id == artifacts.c.project_id)
        .where(versions.c.id.in_(version_ids))
    ).all()
    home = next(row[2] for row in run_rows if row[0] == run)

    def named(name: str, project: int, entity: str, project_name: str) -> str:
        return name if project == home else f"{entity}/{project_name}/{name}"

    names: dict[Node, str] = {
        ("run", row[0]): named(row[1], *row[2:]) for row in run_rows
    }
    for pk, name, number, *project in version_rows:
        names[("version", pk)] = named(f"{name}:v{number}", *project)
    return names


def use_version(
    tx: Tx, project: str, run_id: str, artifact_project: str, name: str, selector: str
) -> VersionRecord:
    run = run_pk(tx, project, run_id)
    artifact = find_artifact(tx, artifact_project, name)
    row = find_version(tx, artifact, selector)
    add_edge(tx, run, row.id, "used")
    return records(tx, [row])[0]


def logged_by(tx: Tx, project: str, name: str, number: int) -> RunRecord | None:
    found = _runs_of(tx, project, name, number, "logged")
    return found[0] if found else None


def used_by(tx: Tx, project: str, name: str, number: int) -> list[RunRecord]:
    return _runs_of(tx, project, name, number, "used")


def _runs_of(
    tx: Tx, project: str, name: str, number: int, kind: Kind
) -> list[RunRecord]:
    version = version_by_number(tx, find_artifact(tx, project, name), number)
    query = (
        run_select()
        .join(lineage_edges, lineage_edges.c.run_id == runs.c.id)
        .where(lineage_edges.c.version_id == version.id, lineage_edges.c.kind == kind)
        .order_by(lineage_edges.c.id)
    )
    return run_records(tx, tx.conn.execute(query))


def logged_versions(tx: Tx, project: str, run_id: str) -> list[VersionRecord]:
    return _versions_of(tx, project, run_id, "logged")


def used_versions(tx: Tx, project: str, run_id: str) -> list[VersionRecord]:
    return _versions_of(tx, project, run_id, "used")


def _versions_of(tx: Tx, project: str, run_id: str, kind: Kind) -> list[VersionRecord]:
    run = run_pk(tx, project, run_id)
    rows = tx.conn.execute(
        version_select()
        .join(lineage_edges, lineage_edges.c.version_id == versions.c.id)
        .where(lineage_edges.c.run_id == run, lineage_edges.c.kind == kind)
        .where(live(tx.now))
        .order_by(lineage_edges.c.id)
    ).all()
    return records(tx, rows)
