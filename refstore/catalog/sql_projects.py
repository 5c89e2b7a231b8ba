"""Deleting and renaming projects in the SQL catalog, inside the caller's transaction.

A delete removes the rows explicitly, children before parents, rather than
leaning on ``ON DELETE CASCADE``: the counts it reports come from the same
statements, and request keys name their project by path, not by a foreign
key. The project's row is locked first (``FOR UPDATE`` on PostgreSQL;
SQLite's write lock is already held), so writers of the project wait.

A rename changes the project's entity and name only. Artifacts, runs,
sweeps, aliases and lineage refer to the project's id, so they follow it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, or_, select, update

from refstore.catalog.base import ProjectDeletion, ProjectRecord
from refstore.catalog.sql_rows import Tx, project_id, split_project
from refstore.catalog.sql_versions import get_project
from refstore.catalog.tables import (
    aliases,
    artifacts,
    lineage_edges,
    project_blobs,
    projects,
    request_keys,
    runs,
    sweeps,
    version_blobs,
    version_tags,
    versions,
)
from refstore.errors import ConflictError

__all__ = ["delete_project", "rename_project"]


def delete_project(tx: Tx, project: str, *, dry_run: bool) -> ProjectDeletion:
    """Delete ``project`` and all it holds (``dry_run``: only count it)."""
    pk = _locked(tx, project)
    report = _count(tx, project, pk, dry_run=dry_run)
    if not dry_run:
        _delete_rows(tx, project, pk)
    return report


def rename_project(tx: Tx, project: str, new: str) -> ProjectRecord:
    """Move ``project`` to the path ``new``; ConflictError if that is taken."""
    entity, name = split_project(new)
    pk = _locked(tx, project)
    _check_free(tx, project, new)
    tx.conn.execute(
        update(projects).where(projects.c.id == pk).values(entity=entity, name=name)
    )
    # Idempotency keys name their project by path: they move with it, so
    # that deleting the project later deletes them too.
    tx.conn.execute(
        update(request_keys)
        .where(request_keys.c.project == project)
        .values(project=new)
    )
    return get_project(tx, new)


def _locked(tx: Tx, project: str) -> int:
    entity, name = split_project(project)
    found = tx.conn.execute(
        select(projects.c.id)
        .where(projects.c.entity == entity, projects.c.name == name)
        .with_for_update()
    ).scalar()
    if found is None:
        # project_id raises the NotFoundError every other lookup raises.
        return project_id(tx, project)
    # Writers lock an artifact before its versions and aliases; taking the
    # artifacts first too makes them wait for the delete, not deadlock on it.
    tx.conn.execute(
        select(artifacts.c.id)
        .where(artifacts.c.project_id == found)
        .order_by(artifacts.c.id)
        .with_for_update()
    ).all()
    return int(found)


def _check_free(tx: Tx, project: str, new: str) -> None:
    if new == project:
        raise ConflictError(f"the project {project} is already named {new}")
    entity, name = split_project(new)
    taken = tx.conn.execute(
        select(projects.c.id).where(
            projects.c.entity == entity, projects.c.name == name
        )
    ).first()
    if taken is not None:
        raise ConflictError(
            f"cannot rename {project} to {new}: a project {new} already exists in "
            f"{tx.where}; choose another name, or delete {new} first"
        )


# -- what a project holds ---------------------------------------------------


def _artifact_ids(pk: int) -> Select[Any]:
    return select(artifacts.c.id).where(artifacts.c.project_id == pk)


def _version_ids(pk: int) -> Select[Any]:
    return select(versions.c.id).where(versions.c.artifact_id.in_(_artifact_ids(pk)))


def _run_ids(pk: int) -> Select[Any]:
    return select(runs.c.id).where(runs.c.project_id == pk)


def _its_edges(pk: int) -> ColumnElement[bool]:
    """The lineage edges of the project's runs, and those to its versions."""
    return or_(
        lineage_edges.c.run_id.in_(_run_ids(pk)),
        lineage_edges.c.version_id.in_(_version_ids(pk)),
    )


def _count(tx: Tx, project: str, pk: int, *, dry_run: bool) -> ProjectDeletion:
    foreign_uses = (
        select(lineage_edges.c.id)
        .join(runs, runs.c.id == lineage_edges.c.run_id)
        .where(
            lineage_edges.c.version_id.in_(_version_ids(pk)), runs.c.project_id != pk
        )
    )
    return ProjectDeletion(
        project=project,
        artifacts=_how_many(tx, _artifact_ids(pk)),
        versions=_how_many(tx, _version_ids(pk)),
        runs=_how_many(tx, _run_ids(pk)),
        sweeps=_how_many(tx, select(sweeps.c.id).where(sweeps.c.project_id == pk)),
        lineage_edges=_how_many(tx, select(lineage_edges.c.id).where(_its_edges(pk))),
        cross_project_uses=_how_many(tx, foreign_uses),
        dry_run=dry_run,
    )


def _how_many(tx: Tx, rows: Select[Any]) -> int:
    query = select(func.count()).select_from(rows.subquery())
    return int(tx.conn.execute(query).scalar_one())


def _delete_rows(tx: Tx, project: str, pk: int) -> None:
    statements = [
        delete(lineage_edges).where(_its_edges(pk)),
        delete(aliases).where(aliases.c.artifact_id.in_(_artifact_ids(pk))),
        delete(version_tags).where(version_tags.c.version_id.in_(_version_ids(pk))),
        delete(version_blobs).where(version_blobs.c.version_id.in_(_version_ids(pk))),
        delete(versions).where(versions.c.artifact_id.in_(_artifact_ids(pk))),
        delete(artifacts).where(artifacts.c.project_id == pk),
        delete(runs).where(runs.c.project_id == pk),
        delete(sweeps).where(sweeps.c.project_id == pk),
        delete(project_blobs).where(project_blobs.c.project_id == pk),
        delete(request_keys).where(request_keys.c.project == project),
        delete(projects).where(projects.c.id == pk),
    ]
    for statement in statements:
        tx.conn.execute(statement)
