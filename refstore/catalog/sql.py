"""The SQL catalog: SQLite by default, PostgreSQL for teams.

Writers serialise on the artifact they change. On PostgreSQL a write
transaction locks the artifact row (``SELECT ... FOR UPDATE``) before it reads
the newest version number or moves an alias; on SQLite every write
transaction starts with ``BEGIN IMMEDIATE``, which takes the database's single
write lock up front, and other writers wait for it (the busy timeout). Either
way the read of ``max(version)`` and the insert of the next one cannot
interleave with another writer's, so there is never a second ``v3``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from refstore.blobs import BlobStore
from refstore.catalog import migrations
from refstore.catalog.base import (
    ArtifactRecord,
    NewVersion,
    ProjectRecord,
    VersionRecord,
)
from refstore.catalog.engine import catalog_error, open_engine, redacted, translating
from refstore.catalog.tables import aliases, artifacts, projects, versions
from refstore.errors import (
    CatalogError,
    ConflictError,
    InvalidReferenceError,
    NotFoundError,
)
from refstore.names import LATEST, parse_project, validate_alias, validate_name

__all__ = ["SqlCatalog", "current_revision", "upgrade"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bounded retries for the conflicts a database may still report under
# concurrency (serialisation failure, deadlock, a lost insert race).
_ATTEMPTS = 5
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "23505"})
_VERSION = re.compile(r"v(0|[1-9][0-9]*)")
_LISTED = 10  # names quoted in a NotFoundError before "..."


@dataclasses.dataclass(frozen=True)
class _Artifact:
    """The artifact a transaction works on."""

    id: int
    project: str  # entity/project
    name: str
    type: str

    @property
    def path(self) -> str:
        return f"{self.project}/{self.name}"


class SqlCatalog:
    """A catalog in SQLite or PostgreSQL; the schema is upgraded on opening.

    ``url`` is a path to a SQLite file, ``sqlite:///...`` or
    ``postgresql://...`` (spoken with psycopg 3).
    """

    def __init__(self, url: str, blobs: BlobStore) -> None:
        self.url = url
        self.blobs = blobs
        self._engine, lock_path = open_engine(url)
        try:
            with translating(url):
                migrations.upgrade(self._engine, lock_path)
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"SqlCatalog({redacted(self.url)!r})"

    def __enter__(self) -> SqlCatalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    def log_version(self, new: NewVersion) -> tuple[VersionRecord, bool]:
        _check_new_version(new)
        extra = _user_aliases(new.aliases)
        record, created = self._write(lambda conn: self._log(conn, new, extra))
        if created:
            log.info(
                "logged %s (%d entries, %d bytes)",
                record.path,
                record.entry_count,
                record.total_size,
            )
        else:
            log.info("%s already holds this manifest; no new version", record.path)
        return record, created

    def get_version(self, project: str, name: str, selector: str) -> VersionRecord:
        def work(conn: Connection) -> VersionRecord:
            artifact = self._find_artifact(conn, project, name)
            return self._record(
                conn, artifact, self._find_version(conn, artifact, selector)
            )

        return self._read(work)

    def list_projects(self) -> list[ProjectRecord]:
        query = select(projects).order_by(projects.c.entity, projects.c.name)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [ProjectRecord(row.entity, row.name, row.created_at) for row in rows]

    def list_artifacts(self, project: str) -> list[ArtifactRecord]:
        entity, project_name = _split_project(project)

        def work(conn: Connection) -> Sequence[Row[Any]]:
            project_id = self._project_id(conn, entity, project_name)
            return conn.execute(_artifact_summaries(project_id)).all()

        path = f"{entity}/{project_name}"
        return [
            ArtifactRecord(
                project=path,
                name=row.name,
                type=row.type,
                description=row.description,
                created_at=row.created_at,
                version_count=row.version_count,
                latest_version=row.latest_version,
            )
            for row in self._read(work)
        ]

    def list_versions(self, project: str, name: str) -> list[VersionRecord]:
        def work(conn: Connection) -> list[VersionRecord]:
            artifact = self._find_artifact(conn, project, name)
            query = (
                select(versions)
                .where(versions.c.artifact_id == artifact.id)
                .order_by(versions.c.version)
            )
            names = _aliases_by_version(conn, artifact.id)
            return [
                _version_record(artifact, row, names.get(row.id, ()))
                for row in conn.execute(query)
            ]

        return self._read(work)

    def set_alias(
        self, project: str, name: str, alias: str, version: int
    ) -> VersionRecord:
        validate_alias(alias)

        def work(conn: Connection) -> VersionRecord:
            artifact = self._find_artifact(conn, project, name, lock=True)
            row = self._version_by_number(conn, artifact, version)
            if alias == LATEST:
                self._check_latest(conn, artifact, row)
            _point_aliases(conn, artifact.id, row.id, [alias])
            return self._record(conn, artifact, row)

        record = self._write(work)
        log.info("alias %s of %s/%s now names %s", alias, project, name, record.path)
        return record

    def remove_alias(self, project: str, name: str, alias: str) -> None:
        if alias == LATEST:
            raise ConflictError(
                f"the alias {LATEST!r} of {project}/{name} cannot be removed: it "
                "always names the newest version. Remove or move other aliases"
            )

        def work(conn: Connection) -> None:
            artifact = self._find_artifact(conn, project, name, lock=True)
            removed = conn.execute(
                delete(aliases).where(
                    aliases.c.artifact_id == artifact.id, aliases.c.alias == alias
                )
            ).rowcount
            if not removed:
                raise NotFoundError(_missing_alias(conn, artifact, alias))

        self._write(work)
        log.info("removed alias %s of %s/%s", alias, project, name)

    # Transactions

    def _read(self, work: Callable[[Connection], T]) -> T:
        return self._transaction(work, write=False)

    def _write(self, work: Callable[[Connection], T]) -> T:
        return self._transaction(work, write=True)

    def _transaction(self, work: Callable[[Connection], T], *, write: bool) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._engine.connect() as conn:
                    conn.execution_options(refstore_write=write)
                    with conn.begin():
                        return work(conn)
            except DBAPIError as exc:
                if not (write and attempt < _ATTEMPTS and _is_transient(exc)):
                    raise catalog_error(self.url, exc) from exc
                log.debug("retrying a catalog write after %s", exc.orig)
                # Jitter keeps the writers that collided from colliding again.
                time.sleep(random.uniform(0.005, 0.05) * attempt)  # noqa: S311
        raise AssertionError("the loop above returns or raises")

    # Steps of log_version

    def _log(
        self, conn: Connection, new: NewVersion, extra: Sequence[str]
    ) -> tuple[VersionRecord, bool]:
        artifact = self._lock_or_create_artifact(conn, new)
        latest = _alias_target(conn, artifact.id, LATEST)
        if latest is not None and latest.digest == new.digest:
            _point_aliases(conn, artifact.id, latest.id, extra)
            return self._record(conn, artifact, latest), False
        row = _insert_version(conn, artifact.id, new)
        _point_aliases(conn, artifact.id, row.id, [LATEST, *extra])
        return _version_record(artifact, row, {LATEST, *extra}), True

    def _lock_or_create_artifact(self, conn: Connection, new: NewVersion) -> _Artifact:
        entity, project_name = _split_project(new.project)
        project_id = self._project_id(conn, entity, project_name, create=True)
        query = (
            select(artifacts.c.id, artifacts.c.type)
            .where(artifacts.c.project_id == project_id, artifacts.c.name == new.name)
            .with_for_update()
        )
        row = conn.execute(query).first()
        if row is None:
            values = {
                "project_id": project_id,
                "name": new.name,
                "type": new.type,
                "description": new.description,
                "created_at": _now(),
            }
            conn.execute(
                _insert_missing(conn, artifacts, ["project_id", "name"], values)
            )
            row = conn.execute(query).one()
        artifact = _Artifact(row.id, f"{entity}/{project_name}", new.name, row.type)
        if artifact.type != new.type:
            raise ConflictError(
                f"{artifact.path} is an artifact of type {artifact.type!r}; it cannot "
                f"take a version of type {new.type!r}. Log it under another name, "
                f"or as type {artifact.type!r}"
            )
        return artifact

    # Lookups

    def _project_id(
        self, conn: Connection, entity: str, name: str, *, create: bool = False
    ) -> int:
        query = select(projects.c.id).where(
            projects.c.entity == entity, projects.c.name == name
        )
        found = conn.execute(query).scalar()
        if found is None and create:
            values = {"entity": entity, "name": name, "created_at": _now()}
            conn.execute(_insert_missing(conn, projects, ["entity", "name"], values))
            found = conn.execute(query).scalar()
        if found is None:
            raise NotFoundError(
                f"no project {entity}/{name} in the catalog {redacted(self.url)}; "
                "projects appear when their first artifact is logged"
            )
        return int(found)

    def _find_artifact(
        self, conn: Connection, project: str, name: str, *, lock: bool = False
    ) -> _Artifact:
        entity, project_name = _split_project(project)
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
        row = conn.execute(query).first()
        path = f"{entity}/{project_name}"
        if row is not None:
            return _Artifact(row.id, path, name, row.type)
        project_id = self._project_id(conn, entity, project_name)
        names = conn.execute(
            select(artifacts.c.name)
            .where(artifacts.c.project_id == project_id)
            .order_by(artifacts.c.name)
            .limit(_LISTED + 1)
        ).scalars()
        raise NotFoundError(
            f"no artifact {name!r} in project {path}; "
            + _listing("its artifacts are", list(names), "it has no artifacts")
        )

    def _find_version(
        self, conn: Connection, artifact: _Artifact, selector: str
    ) -> Row[Any]:
        """The version ``vN`` or the one an alias names."""
        match = _VERSION.fullmatch(selector)
        if match is not None:
            return self._version_by_number(conn, artifact, int(match[1]))
        row = _alias_target(conn, artifact.id, selector)
        if row is None:
            raise NotFoundError(_missing_alias(conn, artifact, selector))
        return row

    def _version_by_number(
        self, conn: Connection, artifact: _Artifact, number: int
    ) -> Row[Any]:
        row = conn.execute(
            select(versions).where(
                versions.c.artifact_id == artifact.id, versions.c.version == number
            )
        ).first()
        if row is None:
            raise NotFoundError(_missing_version(conn, artifact, f"v{number}"))
        return row

    def _check_latest(
        self, conn: Connection, artifact: _Artifact, row: Row[Any]
    ) -> None:
        latest = _alias_target(conn, artifact.id, LATEST)
        if latest is not None and latest.id != row.id:
            raise ConflictError(
                f"{LATEST!r} always names the newest version of {artifact.path} "
                f"(v{latest.version}) and cannot be moved to v{row.version}; "
                "use another alias"
            )

    def _record(
        self, conn: Connection, artifact: _Artifact, row: Row[Any]
    ) -> VersionRecord:
        names = conn.execute(
            select(aliases.c.alias).where(aliases.c.version_id == row.id)
        ).scalars()
        return _version_record(artifact, row, names)


# Module functions: schema management and the pieces of queries.


def upgrade(url: str) -> str:
    """Bring the catalog at ``url`` to the newest schema; return its revision."""
    engine, lock_path = open_engine(url)
    try:
        with translating(url):
            return migrations.upgrade(engine, lock_path)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The schema revision of the catalog at ``url``; None if it has no schema."""
    engine, _ = open_engine(url)
    try:
        with translating(url), engine.connect() as conn:
            return migrations.current_revision(conn)
    finally:
        engine.dispose()


def _is_transient(exc: DBAPIError) -> bool:
    if getattr(exc.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return getattr(exc.orig, "sqlite_errorname", None) == "SQLITE_CONSTRAINT_UNIQUE"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _split_project(project: str) -> tuple[str, str]:
    if project.strip("/").count("/") != 1:
        raise InvalidReferenceError(
            f"{project!r} is not a project: the catalog needs entity/project, "
            "e.g. acme/vision"
        )
    return parse_project(project)


def _check_new_version(new: NewVersion) -> None:
    _split_project(new.project)
    validate_name(new.name, "artifact name")
    validate_name(new.type, "artifact type")
    try:
        json.dumps(dict(new.metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CatalogError(
            f"the metadata of {new.project}/{new.name} cannot be stored: {exc}; "
            "use strings, finite numbers, booleans, None, lists and dicts"
        ) from exc


def _user_aliases(names: Iterable[str]) -> list[str]:
    """The aliases to move besides ``latest``, validated, each once."""
    return sorted({validate_alias(name) for name in names} - {LATEST})


def _insert_missing(
    conn: Connection, table: Table, keys: list[str], values: Mapping[str, Any]
) -> Executable:
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


def _insert_version(conn: Connection, artifact_id: int, new: NewVersion) -> Row[Any]:
    number = conn.execute(
        select(func.coalesce(func.max(versions.c.version) + 1, 0)).where(
            versions.c.artifact_id == artifact_id
        )
    ).scalar_one()
    values = {
        "artifact_id": artifact_id,
        "version": number,
        "digest": new.digest,
        "manifest_blob": new.manifest_blob,
        "entry_count": new.entry_count,
        "total_size": new.total_size,
        "description": new.description,
        "metadata": dict(new.metadata),
        "created_at": _now(),
    }
    conn.execute(insert(versions).values(values))
    return conn.execute(
        select(versions).where(
            versions.c.artifact_id == artifact_id, versions.c.version == number
        )
    ).one()


def _point_aliases(
    conn: Connection, artifact_id: int, version_id: int, names: Iterable[str]
) -> None:
    """Point each alias at ``version_id``, moving it from wherever it was."""
    now = _now()
    for name in names:
        moved = conn.execute(
            update(aliases)
            .where(aliases.c.artifact_id == artifact_id, aliases.c.alias == name)
            .values(version_id=version_id, updated_at=now)
        ).rowcount
        if not moved:
            conn.execute(
                insert(aliases).values(
                    artifact_id=artifact_id,
                    alias=name,
                    version_id=version_id,
                    updated_at=now,
                )
            )


def _alias_target(conn: Connection, artifact_id: int, alias: str) -> Row[Any] | None:
    return conn.execute(
        select(versions)
        .join(aliases, aliases.c.version_id == versions.c.id)
        .where(aliases.c.artifact_id == artifact_id, aliases.c.alias == alias)
    ).first()


def _aliases_by_version(conn: Connection, artifact_id: int) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    query = select(aliases.c.version_id, aliases.c.alias).where(
        aliases.c.artifact_id == artifact_id
    )
    for version_id, alias in conn.execute(query):
        found.setdefault(version_id, []).append(alias)
    return found


def _artifact_summaries(project_id: int) -> Executable:
    return (
        select(
            artifacts.c.name,
            artifacts.c.type,
            artifacts.c.description,
            artifacts.c.created_at,
            func.count(versions.c.id).label("version_count"),
            func.max(versions.c.version).label("latest_version"),
        )
        .outerjoin(versions, versions.c.artifact_id == artifacts.c.id)
        .where(artifacts.c.project_id == project_id)
        .group_by(artifacts.c.id)
        .order_by(artifacts.c.name)
    )


def _version_record(
    artifact: _Artifact, row: Row[Any], alias_names: Iterable[str]
) -> VersionRecord:
    return VersionRecord(
        project=artifact.project,
        name=artifact.name,
        type=artifact.type,
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
    )


def _missing_version(conn: Connection, artifact: _Artifact, selector: str) -> str:
    low, high, count = conn.execute(
        select(
            func.min(versions.c.version),
            func.max(versions.c.version),
            func.count(),
        ).where(versions.c.artifact_id == artifact.id)
    ).one()
    if not count:
        return f"{artifact.path} has no version {selector}; it has no versions yet"
    span = f"v{low}" if low == high else f"v{low}..v{high}"
    gaps = "" if high - low + 1 == count else f" ({count} of them)"
    return f"{artifact.path} has no version {selector}; its versions are {span}{gaps}"


def _missing_alias(conn: Connection, artifact: _Artifact, alias: str) -> str:
    names = conn.execute(
        select(aliases.c.alias)
        .where(aliases.c.artifact_id == artifact.id)
        .order_by(aliases.c.alias)
        .limit(_LISTED + 1)
    ).scalars()
    return f"{artifact.path} has no alias {alias!r}; " + _listing(
        "its aliases are", list(names), "it has no aliases"
    )


def _listing(lead: str, names: Sequence[str], empty: str) -> str:
    if not names:
        return empty
    shown = ", ".join(names[:_LISTED])
    return f"{lead} {shown}" + (", ..." if len(names) > _LISTED else "")
