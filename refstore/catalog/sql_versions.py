"""Versions and aliases in the SQL catalog: log, read, edit, delete.

Writers serialise on the artifact they change: the artifact row is locked
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite write transactions hold the
database's write lock from ``BEGIN IMMEDIATE``) before the version counter is
read or an alias moves, so there is never a second ``v3`` and no alias move
is lost.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Row

from refstore.catalog import sql_blob_index, sql_lineage
from refstore.catalog.base import (
    ArtifactRecord,
    NewVersion,
    ProjectRecord,
    VersionEdit,
    VersionRecord,
)
from refstore.catalog.edits import merge_edit
from refstore.catalog.sql_rows import (
    ArtifactRow,
    Tx,
    find_artifact,
    find_version,
    insert_missing,
    live,
    missing_alias,
    newest_live,
    point_aliases,
    project_id,
    project_ttl,
    records,
    repoint_latest,
    split_project,
    ttl_columns,
    version_by_number,
    version_select,
)
from refstore.catalog.tables import aliases, artifacts, projects, version_tags, versions
from refstore.errors import ConflictError, NotFoundError
from refstore.names import LATEST

__all__ = [
    "delete_version",
    "get_project",
    "get_version",
    "list_artifact_types",
    "list_artifacts",
    "list_projects",
    "list_versions",
    "log",
    "remove_alias",
    "set_alias",
    "update_version",
]


# -- logging ----------------------------------------------------------------


def log(tx: Tx, new: NewVersion, extra: Sequence[str]) -> tuple[VersionRecord, bool]:
    """Log ``new``; ``extra`` are its aliases besides ``latest``."""
    artifact, project_pk = _lock_or_create_artifact(tx, new)
    run_pk = sql_lineage.run_pk(tx, new.project, new.run) if new.run else None
    latest = newest_live(tx, artifact.id)
    created = latest is None or latest.digest != new.digest
    if created:
        version_pk = _insert_version(tx, artifact, project_pk, new)
        point_aliases(tx, artifact.id, version_pk, [LATEST, *extra])
    else:
        assert latest is not None
        version_pk = latest.id
        point_aliases(tx, artifact.id, version_pk, extra)
    _add_tags(tx, version_pk, new.tags)
    if run_pk is not None:
        sql_lineage.add_edge(tx, run_pk, version_pk, "logged")
    return _record_of(tx, version_pk), created


def _lock_or_create_artifact(tx: Tx, new: NewVersion) -> tuple[ArtifactRow, int]:
    project_pk = project_id(tx, new.project, create=True)
    query = (
        select(artifacts.c.id, artifacts.c.type)
        .where(artifacts.c.project_id == project_pk, artifacts.c.name == new.name)
        .with_for_update()
    )
    row = tx.conn.execute(query).first()
    if row is None:
        values = {
            "project_id": project_pk,
            "name": new.name,
            "type": new.type,
            "description": new.description,
            "created_at": tx.now,
        }
        tx.conn.execute(
            insert_missing(tx.conn, artifacts, ["project_id", "name"], values)
        )
        row = tx.conn.execute(query).first()
    if row is None:
        # Another writer made the artifact, and a project delete removed it
        # with its project, both between our two reads.
        raise ConflictError(
            f"the project {new.project} was deleted while {new.name} was being "
            "logged into it; log it again to start the project anew"
        )
    entity, project_name = split_project(new.project)
    artifact = ArtifactRow(row.id, f"{entity}/{project_name}", new.name, row.type)
    if artifact.type != new.type:
        raise ConflictError(
            f"{artifact.path} is an artifact of type {artifact.type!r}; it cannot "
            f"take a version of type {new.type!r}. Log it under another name, "
            f"or as type {artifact.type!r}"
        )
    return artifact, project_pk


def _insert_version(
    tx: Tx, artifact: ArtifactRow, project_pk: int, new: NewVersion
) -> int:
    # The counter, not max(version) + 1: a deleted v3 must not come back as
    # another v3. The artifact row is locked, so the read-increment is safe.
    number = tx.conn.execute(
        select(artifacts.c.next_version).where(artifacts.c.id == artifact.id)
    ).scalar_one()
    tx.conn.execute(
        update(artifacts)
        .where(artifacts.c.id == artifact.id)
        .values(next_version=number + 1)
    )
    default = project_ttl(tx, project_pk, lock=True)
    values = {
        "artifact_id": artifact.id,
        "version": number,
        "digest": new.digest,
        "manifest_blob": new.manifest_blob,
        "entry_count": new.entry_count,
        "total_size": new.total_size,
        "description": new.description,
        "metadata": dict(new.metadata),
        "created_at": tx.now,
        "blobs_indexed": new.files is not None,
        **ttl_columns(new.ttl, tx.now, default),
    }
    tx.conn.execute(insert(versions).values(values))
    version_pk = int(
        tx.conn.execute(
            select(versions.c.id).where(
                versions.c.artifact_id == artifact.id, versions.c.version == number
            )
        ).scalar_one()
    )
    sql_blob_index.add(tx, version_pk, {new.manifest_blob, *(new.files or ())})
    return version_pk


def _add_tags(tx: Tx, version_pk: int, tags: Iterable[str]) -> None:
    for tag in sorted(set(tags)):
        values = {"version_id": version_pk, "tag": tag}
        tx.conn.execute(
            insert_missing(tx.conn, version_tags, ["version_id", "tag"], values)
        )


def _record_of(tx: Tx, version_pk: int) -> VersionRecord:
    row = tx.conn.execute(version_select().where(versions.c.id == version_pk)).one()
    return records(tx, [row])[0]


# -- reading ----------------------------------------------------------------


def get_version(tx: Tx, project: str, name: str, selector: str) -> VersionRecord:
    artifact = find_artifact(tx, project, name)
    return records(tx, [find_version(tx, artifact, selector)])[0]


def list_versions(tx: Tx, project: str, name: str) -> list[VersionRecord]:
    artifact = find_artifact(tx, project, name)
    rows = tx.conn.execute(
        version_select()
        .where(versions.c.artifact_id == artifact.id, live(tx.now))
        .order_by(versions.c.version)
    ).all()
    return records(tx, rows)


def list_projects(tx: Tx) -> list[ProjectRecord]:
    query = select(projects).order_by(projects.c.entity, projects.c.name)
    return [_project_record(row) for row in tx.conn.execute(query)]


def get_project(tx: Tx, project: str) -> ProjectRecord:
    pk = project_id(tx, project)
    row = tx.conn.execute(select(projects).where(projects.c.id == pk)).one()
    return _project_record(row)


def _project_record(row: Row[Any]) -> ProjectRecord:
    seconds = row.default_ttl_seconds
    default = None if seconds is None else datetime.timedelta(seconds=seconds)
    return ProjectRecord(row.entity, row.name, row.created_at, default)


def list_artifacts(tx: Tx, project: str) -> list[ArtifactRecord]:
    pk = project_id(tx, project)
    counted = and_(versions.c.artifact_id == artifacts.c.id, live(tx.now))
    query = (
        select(
            artifacts.c.name,
            artifacts.c.type,
            artifacts.c.description,
            artifacts.c.created_at,
            func.count(versions.c.id).label("version_count"),
            func.max(versions.c.version).label("latest_version"),
        )
        .outerjoin(versions, counted)
        .where(artifacts.c.project_id == pk)
        .group_by(artifacts.c.id)
        .order_by(artifacts.c.name)
    )
    entity, project_name = split_project(project)
    return [
        ArtifactRecord(
            project=f"{entity}/{project_name}",
            name=row.name,
            type=row.type,
            description=row.description,
            created_at=row.created_at,
            version_count=row.version_count,
            latest_version=row.latest_version,
        )
        for row in tx.conn.execute(query)
    ]


def list_artifact_types(tx: Tx, project: str) -> list[str]:
    pk = project_id(tx, project)
    query = select(artifacts.c.type).where(artifacts.c.project_id == pk).distinct()
    return sorted(tx.conn.execute(query).scalars())


# -- editing ----------------------------------------------------------------


def update_version(
    tx: Tx, project: str, name: str, number: int, edit: VersionEdit
) -> VersionRecord:
    # Read after the artifact's lock: no other edit of this version can slip
    # in between the comparison of loaded values and the write.
    artifact = find_artifact(tx, project, name, lock=True)
    row = version_by_number(tx, artifact, number)
    edit = merge_edit(records(tx, [row])[0], edit)
    default = project_ttl(tx, project_id(tx, project), lock=True)
    tx.conn.execute(
        update(versions)
        .where(versions.c.id == row.id)
        .values(
            description=edit.description,
            metadata=dict(edit.metadata),
            **ttl_columns(edit.ttl, row.created_at, default),
        )
    )
    tx.conn.execute(delete(version_tags).where(version_tags.c.version_id == row.id))
    _add_tags(tx, row.id, edit.tags)
    tx.conn.execute(
        delete(aliases).where(
            aliases.c.version_id == row.id,
            aliases.c.alias.in_(set(edit.remove_aliases) - {LATEST}),
        )
    )
    point_aliases(tx, artifact.id, row.id, sorted(set(edit.add_aliases) - {LATEST}))
    return _record_of(tx, row.id)


def delete_version(
    tx: Tx, project: str, name: str, number: int, *, delete_aliases: bool
) -> VersionRecord:
    artifact = find_artifact(tx, project, name, lock=True)
    record = records(tx, [version_by_number(tx, artifact, number)])[0]
    held = [alias for alias in record.aliases if alias != LATEST]
    if held and not delete_aliases:
        raise ConflictError(
            f"{record.path} still has the aliases {', '.join(held)}; move or "
            "remove them first, or delete with delete_aliases=True "
            "(--delete-aliases)"
        )
    tx.conn.execute(
        delete(versions).where(
            versions.c.artifact_id == artifact.id, versions.c.version == number
        )
    )
    repoint_latest(tx, artifact.id)
    return record


# -- aliases ----------------------------------------------------------------


def set_alias(
    tx: Tx, project: str, name: str, alias: str, number: int, *, move: bool
) -> VersionRecord:
    artifact = find_artifact(tx, project, name, lock=True)
    row = version_by_number(tx, artifact, number)
    if alias == LATEST:
        _check_latest(tx, artifact, row)
        return records(tx, [row])[0]
    if not move:
        _check_unused(tx, artifact, alias, row)
    point_aliases(tx, artifact.id, row.id, [alias])
    return _record_of(tx, row.id)


def _check_latest(tx: Tx, artifact: ArtifactRow, row: Row[Any]) -> None:
    newest = newest_live(tx, artifact.id)
    if newest is not None and newest.id != row.id:
        raise ConflictError(
            f"{LATEST!r} always names the newest version of {artifact.path} "
            f"(v{newest.version}) and cannot be moved to v{row.version}; "
            "use another alias"
        )


def _check_unused(tx: Tx, artifact: ArtifactRow, alias: str, row: Row[Any]) -> None:
    """ConflictError when ``alias`` names another version that has not expired."""
    holder = tx.conn.execute(
        select(versions.c.id, versions.c.version)
        .join(aliases, aliases.c.version_id == versions.c.id)
        .where(aliases.c.artifact_id == artifact.id, aliases.c.alias == alias)
        .where(live(tx.now))
    ).first()
    if holder is not None and holder.id != row.id:
        raise ConflictError(
            f"the alias {alias!r} already names v{holder.version} of "
            f"{artifact.path}; aliases are unique within an artifact. Move it "
            "instead (`refstore alias move`, or set_alias(..., move=True))"
        )


def remove_alias(
    tx: Tx, project: str, name: str, alias: str, number: int | None
) -> None:
    artifact = find_artifact(tx, project, name, lock=True)
    query = delete(aliases).where(
        aliases.c.artifact_id == artifact.id, aliases.c.alias == alias
    )
    if number is not None:
        row = version_by_number(tx, artifact, number)
        query = query.where(aliases.c.version_id == row.id)
    if tx.conn.execute(query).rowcount:
        return
    if number is None:
        raise NotFoundError(missing_alias(tx, artifact, alias))
    raise NotFoundError(f"{artifact.path}:v{number} has no alias {alias!r}")
