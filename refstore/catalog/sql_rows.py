"""What every part of the SQL catalog shares: the transaction, lookups, records.

Each catalog method runs one function of the ``sql_*`` modules inside one
transaction, handing it a :class:`Tx`: the connection, the catalog clock's
reading for the whole transaction (so every check and timestamp in it agrees),
the catalog's redacted URL for messages and its run timeout (after which a
silent running run reads as crashed).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from refstore import ttl
from refstore.catalog.base import VersionRecord
from refstore.catalog.tables import aliases, artifacts, projects, version_tags, versions
from refstore.errors import CatalogError, InvalidReferenceError, NotFoundError
from refstore.names import LATEST, parse_project
from refstore.ttl import INHERIT, TtlPolicy

__all__ = [
    "ArtifactRow",
    "Tx",
    "check_json",
    "find_artifact",
    "find_version",
    "insert_missing",
    "inserted",
    "listing",
    "live",
    "missing_alias",
    "newest_live",
    "point_aliases",
    "project_id",
    "project_ttl",
    "records",
    "repoint_latest",
    "split_project",
    "ttl_columns",
    "version_by_number",
    "version_select",
]

_VERSION = re.compile(r"v(0|[1-9][0-9]*)")
_LISTED = 10  # names quoted in a NotFoundError before "..."
# Bound parameters per IN (...): well under SQLite's and PostgreSQL's limits.
_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class Tx:
    """One catalog transaction."""

    conn: Connection
    now: datetime.datetime
    where: str  # the catalog, as messages name it
    run_timeout: datetime.timedelta


@dataclasses.dataclass(frozen=True)
class ArtifactRow:
    """The artifact a transaction works on."""

    id: int
    project: str  # entity/project
    name: str
    type: str

    @property
    def path(self) -> str:
        return f"{self.project}/{self.name}"


def split_project(project: str) -> tuple[str, str]:
    if project.strip("/").count("/") != 1:
        raise InvalidReferenceError(
            f"{project!r} is not a project: the catalog needs entity/project, "
            "e.g. acme/vision"
        )
    return parse_project(project)


def check_json(value: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``value`` as a plain dict, or CatalogError if JSON cannot hold it."""
    try:
        json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CatalogError(
            f"the {what} cannot be stored: {exc}; use strings, finite numbers, "
            "booleans, None, lists and dicts"
        ) from exc
    return dict(value)


def inserted(tx: Tx, table: Table, keys: list[str], values: Mapping[str, Any]) -> bool:
    """Insert unless a row with the same ``keys`` exists; True if this one did."""
    # RETURNING, not rowcount: with implicit RETURNING a driver may report -1.
    query = insert_missing(tx.conn, table, keys, values).returning(table.c.id)
    return tx.conn.execute(query).first() is not None


def insert_missing(
    conn: Connection, table: Table, keys: list[str], values: Mapping[str, Any]
) -> postgresql.Insert | sqlite.Insert:
    """INSERT that does nothing when another transaction inserted the row first."""
    if conn.dialect.name == "postgresql":
        return (
            postgresql.insert(table)
            .values(values)
            .on_conflict_do_nothing(index_elements=keys)
        )
    return (
        sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=keys)
    )


# -- projects and artifacts ---------------------------------------------


def project_id(tx: Tx, project: str, *, create: bool = False) -> int:
    entity, name = split_project(project)
    query = select(projects.c.id).where(
        projects.c.entity == entity, projects.c.name == name
    )
    found = tx.conn.execute(query).scalar()
    if found is None and create:
        values = {"entity": entity, "name": name, "created_at": tx.now}
        tx.conn.execute(insert_missing(tx.conn, projects, ["entity", "name"], values))
        found = tx.conn.execute(query).scalar()
    if found is None:
        raise NotFoundError(
            f"no project {entity}/{name} in the catalog {tx.where}; projects "
            "appear when their first run or artifact is logged"
        )
    return int(found)


def find_artifact(
    tx: Tx, project: str, name: str, *, lock: bool = False
) -> ArtifactRow:
    entity, project_name = split_project(project)
    query = (
        select(artifacts.c.id, artifacts.c.type)
        .join(projects, projects.c.id == artifacts.c.project_id)
        .where(
            projects.c.entity == entity,
            projects.c.name == project_name,
            artifacts.c.name == name,
        )
    )
    if lock:
        query = query.with_for_update(of=artifacts)
    row = tx.conn.execute(query).first()
    path = f"{entity}/{project_name}"
    if row is not None:
        return ArtifactRow(row.id, path, name, row.type)
    parent = project_id(tx, path)
    names = tx.conn.execute(
        select(artifacts.c.name)
        .where(artifacts.c.project_id == parent)
        .order_by(artifacts.c.name)
        .limit(_LISTED + 1)
    ).scalars()
    raise NotFoundError(
        f"no artifact {name!r} in project {path}; "
        + listing("its artifacts are", list(names), "it has no artifacts")
    )


# -- versions -------------------------------------------------------------


def live(now: datetime.datetime) -> ColumnElement[bool]:
    """Versions that have not expired at ``now``."""
    return or_(versions.c.expires_at.is_(None), versions.c.expires_at > now)


def version_select() -> Select[Any]:
    """Versions with their artifact and project, as :func:`records` reads them."""
    return (
        select(
            versions,
            artifacts.c.name.label("artifact_name"),
            artifacts.c.type.label("artifact_type"),
            projects.c.entity.label("entity"),
            projects.c.name.label("project_name"),
        )
        .join(artifacts, artifacts.c.id == versions.c.artifact_id)
        .join(projects, projects.c.id == artifacts.c.project_id)
    )


def newest_live(tx: Tx, artifact_id: int) -> Row[Any] | None:
    """The version ``latest`` names: the newest one that has not expired."""
    return tx.conn.execute(
        version_select()
        .where(versions.c.artifact_id == artifact_id, live(tx.now))
        .order_by(versions.c.version.desc())
        .limit(1)
    ).first()


def version_by_number(tx: Tx, artifact: ArtifactRow, number: int) -> Row[Any]:
    row = tx.conn.execute(
        version_select().where(
            versions.c.artifact_id == artifact.id, versions.c.version == number
        )
    ).first()
    if row is None:
        raise NotFoundError(_missing_version(tx, artifact, f"v{number}"))
    _check_live(tx, artifact, row)
    return row


def find_version(tx: Tx, artifact: ArtifactRow, selector: str) -> Row[Any]:
    """The version ``vN``, the one an alias names, or the newest for ``latest``."""
    match = _VERSION.fullmatch(selector)
    if match is not None:
        return version_by_number(tx, artifact, int(match[1]))
    if selector == LATEST:
        row = newest_live(tx, artifact.id)
        if row is None:
            raise NotFoundError(_missing_version(tx, artifact, LATEST))
        return row
    row = tx.conn.execute(
        version_select()
        .join(aliases, aliases.c.version_id == versions.c.id)
        .where(aliases.c.artifact_id == artifact.id, aliases.c.alias == selector)
    ).first()
    if row is None:
        raise NotFoundError(missing_alias(tx, artifact, selector))
    _check_live(tx, artifact, row, alias=selector)
    return row


def _check_live(
    tx: Tx, artifact: ArtifactRow, row: Row[Any], alias: str | None = None
) -> None:
    if row.expires_at is None or row.expires_at > tx.now:
        return
    named = f"the alias {alias!r} names v{row.version}, which" if alias else "it"
    raise NotFoundError(
        f"{artifact.path} has no version v{row.version} any more: {named} expired "
        f"at {row.expires_at.isoformat()} and is kept only until `refstore gc`"
    )


def records(tx: Tx, rows: Sequence[Row[Any]]) -> list[VersionRecord]:
    """Records for rows of :func:`version_select`, with aliases and tags."""
    ids = [row.id for row in rows]
    alias_names = _names_by_version(tx, aliases.c.alias, aliases.c.version_id, ids)
    tags = _names_by_version(tx, version_tags.c.tag, version_tags.c.version_id, ids)
    newest = _newest_live_numbers(tx, {row.artifact_id for row in rows})
    found = []
    for row in rows:
        names = [name for name in alias_names.get(row.id, ()) if name != LATEST]
        if newest.get(row.artifact_id) == row.version:
            names.append(LATEST)
        found.append(_version_record(row, names, tags.get(row.id, ())))
    return found


def _names_by_version(
    tx: Tx, name: Any, version_id: Any, ids: Sequence[int]
) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        query = select(version_id, name).where(version_id.in_(chunk))
        for owner, value in tx.conn.execute(query):
            found.setdefault(owner, []).append(value)
    return found


def _newest_live_numbers(tx: Tx, artifact_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(artifact_ids)
    found: dict[int, int] = {}
    for start in range(0, len(ids), _CHUNK):
        query = (
            select(versions.c.artifact_id, func.max(versions.c.version))
            .where(versions.c.artifact_id.in_(ids[start : start + _CHUNK]))
            .where(live(tx.now))
            .group_by(versions.c.artifact_id)
        )
        found.update((owner, number) for owner, number in tx.conn.execute(query))
    return found


def _version_record(
    row: Row[Any], alias_names: Iterable[str], tags: Iterable[str]
) -> VersionRecord:
    return VersionRecord(
        project=f"{row.entity}/{row.project_name}",
        name=row.artifact_name,
        type=row.artifact_type,
        version=row.version,
        # Sorted here, not in SQL: collations differ between databases.
        aliases=tuple(sorted(alias_names)),
        description=row.description,
        metadata=row.metadata,
        digest=row.digest,
        manifest_blob=row.manifest_blob,
        entry_count=row.entry_count,
        total_size=row.total_size,
        created_at=row.created_at,
        tags=tuple(sorted(tags)),
        ttl=_policy(row.ttl_inherits, row.ttl_seconds),
        expires_at=row.expires_at,
    )


def _policy(inherits: bool, seconds: int | None) -> TtlPolicy:
    if inherits:
        return INHERIT
    return None if seconds is None else datetime.timedelta(seconds=seconds)


# -- messages -------------------------------------------------------------


def _missing_version(tx: Tx, artifact: ArtifactRow, selector: str) -> str:
    low, high, count = tx.conn.execute(
        select(
            func.min(versions.c.version),
            func.max(versions.c.version),
            func.count(),
        ).where(versions.c.artifact_id == artifact.id, live(tx.now))
    ).one()
    if not count:
        return f"{artifact.path} has no version {selector}; it has no versions"
    span = f"v{low}" if low == high else f"v{low}..v{high}"
    gaps = "" if high - low + 1 == count else f" ({count} of them)"
    return f"{artifact.path} has no version {selector}; its versions are {span}{gaps}"


def missing_alias(tx: Tx, artifact: ArtifactRow, alias: str) -> str:
    names = tx.conn.execute(
        select(aliases.c.alias)
        .where(aliases.c.artifact_id == artifact.id)
        .order_by(aliases.c.alias)
        .limit(_LISTED + 1)
    ).scalars()
    return f"{artifact.path} has no alias {alias!r}; " + listing(
        "its aliases are", list(names), "it has no aliases"
    )


def listing(lead: str, names: Sequence[str], empty: str) -> str:
    if not names:
        return empty
    shown = ", ".join(names[:_LISTED])
    return f"{lead} {shown}" + (", ..." if len(names) > _LISTED else "")


# -- shared writes --------------------------------------------------------


def point_aliases(
    tx: Tx, artifact_id: int, version_id: int, names: Iterable[str]
) -> None:
    """Point each alias at ``version_id``, moving it from wherever it was."""
    for name in names:
        moved = tx.conn.execute(
            update(aliases)
            .where(aliases.c.artifact_id == artifact_id, aliases.c.alias == name)
            .values(version_id=version_id, updated_at=tx.now)
        ).rowcount
        if not moved:
            tx.conn.execute(
                insert(aliases).values(
                    artifact_id=artifact_id,
                    alias=name,
                    version_id=version_id,
                    updated_at=tx.now,
                )
            )


def repoint_latest(tx: Tx, artifact_id: int) -> None:
    """After deletes: the stored ``latest`` names the newest remaining version.

    Lookups resolve ``latest`` to the newest version that has not expired;
    the stored alias is kept for the schema's readers (and older refstores).
    """
    top = tx.conn.execute(
        select(versions.c.id)
        .where(versions.c.artifact_id == artifact_id)
        .order_by(versions.c.version.desc())
        .limit(1)
    ).scalar()
    if top is not None:
        point_aliases(tx, artifact_id, top, [LATEST])


def project_ttl(
    tx: Tx, project_pk: int, *, lock: bool = False
) -> datetime.timedelta | None:
    """The project's default TTL; ``lock`` holds it until the transaction ends."""
    query = select(projects.c.default_ttl_seconds).where(projects.c.id == project_pk)
    if lock:
        # Shared: loggers of one project do not wait for each other, only for
        # a change of the default, which re-times the versions inheriting it.
        query = query.with_for_update(read=True)
    seconds = tx.conn.execute(query).scalar()
    return None if seconds is None else datetime.timedelta(seconds=seconds)


def ttl_columns(
    policy: TtlPolicy,
    created_at: datetime.datetime,
    project_default: datetime.timedelta | None,
) -> dict[str, Any]:
    """The TTL columns of a version with ``policy``."""
    return {
        "ttl_inherits": policy is INHERIT,
        "ttl_seconds": None if policy is INHERIT else ttl.seconds(policy),
        "expires_at": ttl.expires_at(created_at, policy, project_default),
    }
