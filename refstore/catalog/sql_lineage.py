"""Lineage in the SQL catalog: which runs logged and used which versions.

The graph is bipartite: an edge joins a run and a version, ``logged`` (the
run produced it) or ``used`` (the run consumed it). A run that logs what it
used, or uses what it logged, would point an edge back at itself; such an
edge is not recorded, so a single run never forms a cycle.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select

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
from refstore.catalog.tables import lineage_edges, runs, versions

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


def add_edge(tx: Tx, run: int, version: int, kind: Kind) -> None:
    opposite = tx.conn.execute(
        select(lineage_edges.c.id).where(
            lineage_edges.c.run_id == run,
            lineage_edges.c.version_id == version,
            lineage_edges.c.kind == _OPPOSITE[kind],
        )
    ).first()
    if opposite is not None:
        return
    values = {"run_id": run, "version_id": version, "kind": kind, "created_at": tx.now}
    keys = ["run_id", "version_id", "kind"]
    tx.conn.execute(insert_missing(tx.conn, lineage_edges, keys, values))


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
