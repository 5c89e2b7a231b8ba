"""TTLs in the SQL catalog: project defaults, expired versions, what gc keeps.

``expires_at`` is stored with each version, so "has it expired" is one
indexed comparison with the catalog clock's time in every query. It changes
when a version's own TTL is edited, and for every version that inherits the
project's default when that default changes.
"""

from __future__ import annotations

import datetime

from sqlalchemy import bindparam, delete, select, update

from refstore.catalog.base import ProjectRecord, VersionRecord
from refstore.catalog.sql_rows import (
    Tx,
    live,
    project_id,
    records,
    repoint_latest,
    version_select,
)
from refstore.catalog.sql_versions import get_project
from refstore.catalog.tables import artifacts, projects, versions
from refstore.ttl import INHERIT, expires_at, seconds

__all__ = [
    "delete_expired",
    "expired_versions",
    "live_manifest_blobs",
    "set_project_ttl",
]

_CHUNK = 500


def set_project_ttl(
    tx: Tx, project: str, ttl: datetime.timedelta | None
) -> ProjectRecord:
    pk = project_id(tx, project, create=True)
    # Exclusive: no version of the project is logged with the old default
    # while the inheriting ones are re-timed.
    tx.conn.execute(
        select(projects.c.id).where(projects.c.id == pk).with_for_update()
    ).one()
    tx.conn.execute(
        update(projects)
        .where(projects.c.id == pk)
        .values(default_ttl_seconds=seconds(ttl))
    )
    inheriting = tx.conn.execute(
        select(versions.c.id, versions.c.created_at)
        .join(artifacts, artifacts.c.id == versions.c.artifact_id)
        .where(artifacts.c.project_id == pk, versions.c.ttl_inherits.is_(True))
    ).all()
    if inheriting:
        changes = [
            {"pk": row.id, "when": expires_at(row.created_at, INHERIT, ttl)}
            for row in inheriting
        ]
        tx.conn.execute(
            update(versions)
            .where(versions.c.id == bindparam("pk"))
            .values(expires_at=bindparam("when")),
            changes,
        )
    return get_project(tx, project)


def expired_versions(tx: Tx) -> list[VersionRecord]:
    rows = tx.conn.execute(
        version_select()
        .where(versions.c.expires_at <= tx.now)
        .order_by(versions.c.expires_at, versions.c.id)
    ).all()
    return records(tx, rows)


def delete_expired(tx: Tx) -> list[VersionRecord]:
    owners = sorted(
        tx.conn.execute(
            select(versions.c.artifact_id)
            .where(versions.c.expires_at <= tx.now)
            .distinct()
        ).scalars()
    )
    deleted: list[VersionRecord] = []
    for start in range(0, len(owners), _CHUNK):
        deleted.extend(_delete_expired_of(tx, owners[start : start + _CHUNK]))
    return deleted


def _delete_expired_of(tx: Tx, owners: list[int]) -> list[VersionRecord]:
    # Locked in id order, as loggers lock one artifact each: no deadlock, and
    # no logger moves ``latest`` while it is repaired below.
    tx.conn.execute(
        select(artifacts.c.id)
        .where(artifacts.c.id.in_(owners))
        .order_by(artifacts.c.id)
        .with_for_update()
    ).all()
    expired = versions.c.expires_at <= tx.now
    mine = versions.c.artifact_id.in_(owners)
    rows = tx.conn.execute(
        version_select().where(expired, mine).order_by(versions.c.expires_at)
    ).all()
    found = records(tx, rows)
    tx.conn.execute(delete(versions).where(expired, mine))
    for owner in owners:
        repoint_latest(tx, owner)
    return found


def live_manifest_blobs(tx: Tx) -> set[str]:
    query = select(versions.c.manifest_blob).where(live(tx.now)).distinct()
    return set(tx.conn.execute(query).scalars())
