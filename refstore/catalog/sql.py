"""The SQL catalog: SQLite by default, PostgreSQL for teams.

:class:`SqlCatalog` owns the engine and the transactions; the work inside
each transaction lives in the ``sql_*`` modules beside it (versions and
aliases, runs and sweeps, lineage, retention). Every method is one
transaction. Writers serialise on what they change: on PostgreSQL the rows
involved are locked (``SELECT ... FOR UPDATE``) before they are read for a
decision; on SQLite every write transaction starts with ``BEGIN IMMEDIATE``,
which takes the database's single write lock up front, and other writers
wait for it (the busy timeout). Either way the read of the version counter
and the insert of the next version cannot interleave with another writer's,
so there is never a second ``v3``.

The clock (``clock``, UTC-aware) decides what has expired and stamps every
record; tests pass one they control. By the same clock, a running run whose
last heartbeat is older than ``run_timeout`` reads as crashed.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from refstore.blobs import BlobStore
from refstore.catalog import (
    migrations,
    sql_blob_index,
    sql_lineage,
    sql_projects,
    sql_retention,
    sql_runs,
    sql_versions,
)
from refstore.catalog.base import (
    RESUME_MODES,
    RUN_STATES,
    STORED_RUN_STATES,
    ArtifactRecord,
    Clock,
    NewRun,
    NewVersion,
    ProjectDeletion,
    ProjectRecord,
    Resume,
    RunRecord,
    RunState,
    StoredRunState,
    SweepRecord,
    ValueFilter,
    VersionEdit,
    VersionRecord,
)
from refstore.catalog.engine import catalog_error, open_engine, redacted, translating
from refstore.catalog.run_filters import lookups
from refstore.catalog.sql_rows import Tx, check_json, split_project
from refstore.config import DEFAULT_RUN_TIMEOUT
from refstore.errors import CatalogError, ConflictError
from refstore.names import LATEST, validate_alias, validate_name
from refstore.ttl import INHERIT, check_ttl

__all__ = ["SqlCatalog", "current_revision", "upgrade"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Bounded retries for the conflicts a database may still report under
# concurrency (serialisation failure, deadlock, a lost insert race).
_ATTEMPTS = 5
# 23503: a writer inserted into a project that a concurrent delete removed;
# tried again, the write creates the project anew, as any first write does.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "23505", "23503"})


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class SqlCatalog:
    """A catalog in SQLite or PostgreSQL; the schema is upgraded on opening.

    ``url`` is a path to a SQLite file, ``sqlite:///...`` or
    ``postgresql://...`` (spoken with psycopg 3).
    """

    def __init__(
        self,
        url: str,
        blobs: BlobStore,
        clock: Clock | None = None,
        *,
        run_timeout: datetime.timedelta = DEFAULT_RUN_TIMEOUT,
    ) -> None:
        self.url = url
        self.blobs = blobs
        self._clock = clock or utc_now
        self._run_timeout = run_timeout
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

    # -- versions -------------------------------------------------------

    def log_version(self, new: NewVersion) -> tuple[VersionRecord, bool]:
        _check_new_version(new)
        extra = _user_aliases(new.aliases)
        record, created = self._write(lambda tx: sql_versions.log(tx, new, extra))
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
        return self._read(
            lambda tx: sql_versions.get_version(tx, project, name, selector)
        )

    def list_versions(self, project: str, name: str) -> list[VersionRecord]:
        return self._read(lambda tx: sql_versions.list_versions(tx, project, name))

    def update_version(
        self, project: str, name: str, version: int, edit: VersionEdit
    ) -> VersionRecord:
        edit = _checked_edit(edit, f"{project}/{name}:v{version}")
        record = self._write(
            lambda tx: sql_versions.update_version(tx, project, name, version, edit)
        )
        log.info("updated %s", record.path)
        return record

    def delete_version(
        self, project: str, name: str, version: int, *, delete_aliases: bool = False
    ) -> VersionRecord:
        record = self._write(
            lambda tx: sql_versions.delete_version(
                tx, project, name, version, delete_aliases=delete_aliases
            )
        )
        log.info("deleted %s", record.path)
        return record

    # -- projects and artifacts -----------------------------------------

    def list_projects(self) -> list[ProjectRecord]:
        return self._read(sql_versions.list_projects)

    def get_project(self, project: str) -> ProjectRecord:
        return self._read(lambda tx: sql_versions.get_project(tx, project))

    def list_artifacts(self, project: str) -> list[ArtifactRecord]:
        return self._read(lambda tx: sql_versions.list_artifacts(tx, project))

    def list_artifact_types(self, project: str) -> list[str]:
        return self._read(lambda tx: sql_versions.list_artifact_types(tx, project))

    def delete_project(self, project: str, *, dry_run: bool = False) -> ProjectDeletion:
        report = self._write(
            lambda tx: sql_projects.delete_project(tx, project, dry_run=dry_run)
        )
        log.info(
            "%s project %s: %d artifacts, %d versions, %d runs, %d sweeps, "
            "%d lineage edges (%d uses by other projects' runs)",
            "would delete" if dry_run else "deleted",
            project,
            report.artifacts,
            report.versions,
            report.runs,
            report.sweeps,
            report.lineage_edges,
            report.cross_project_uses,
        )
        return report

    def rename_project(self, project: str, new: str) -> ProjectRecord:
        record = self._write(lambda tx: sql_projects.rename_project(tx, project, new))
        log.info("renamed project %s to %s", project, record.path)
        return record

    # -- aliases --------------------------------------------------------

    def set_alias(
        self, project: str, name: str, alias: str, version: int, *, move: bool = True
    ) -> VersionRecord:
        validate_alias(alias)
        record = self._write(
            lambda tx: sql_versions.set_alias(
                tx, project, name, alias, version, move=move
            )
        )
        log.info("alias %s of %s/%s now names %s", alias, project, name, record.path)
        return record

    def remove_alias(
        self, project: str, name: str, alias: str, version: int | None = None
    ) -> None:
        if alias == LATEST:
            raise ConflictError(
                f"the alias {LATEST!r} of {project}/{name} cannot be removed: it "
                "always names the newest version. Remove or move other aliases"
            )
        self._write(
            lambda tx: sql_versions.remove_alias(tx, project, name, alias, version)
        )
        log.info("removed alias %s of %s/%s", alias, project, name)

    # -- runs -----------------------------------------------------------

    def start_run(self, new: NewRun, resume: Resume) -> tuple[RunRecord, bool]:
        _check_new_run(new, resume)
        record, resumed = self._write(lambda tx: sql_runs.start_run(tx, new, resume))
        log.info("%s run %s", "resumed" if resumed else "started", record.path)
        return record, resumed

    def get_run(self, project: str, run_id: str) -> RunRecord:
        return self._read(lambda tx: sql_runs.get_run(tx, project, run_id))

    def update_run(
        self,
        project: str,
        run_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        state: StoredRunState | None = None,
    ) -> RunRecord:
        if state is not None:
            _check_new_state(state)
        return self._write(
            lambda tx: sql_runs.update_run(
                tx, project, run_id, config=config, summary=summary, state=state
            )
        )

    def list_runs(
        self,
        project: str,
        *,
        state: RunState | None = None,
        job_type: str | None = None,
        sweep: str | None = None,
        where: Sequence[ValueFilter] = (),
    ) -> list[RunRecord]:
        if state is not None:
            _check_state(state)
        checked = lookups(where)
        return self._read(
            lambda tx: sql_runs.list_runs(
                tx, project, state=state, job_type=job_type, sweep=sweep, where=checked
            )
        )

    # -- lineage --------------------------------------------------------

    def use_version(
        self, project: str, run_id: str, artifact_project: str, name: str, selector: str
    ) -> VersionRecord:
        return self._write(
            lambda tx: sql_lineage.use_version(
                tx, project, run_id, artifact_project, name, selector
            )
        )

    def logged_by(self, project: str, name: str, version: int) -> RunRecord | None:
        return self._read(lambda tx: sql_lineage.logged_by(tx, project, name, version))

    def used_by(self, project: str, name: str, version: int) -> list[RunRecord]:
        return self._read(lambda tx: sql_lineage.used_by(tx, project, name, version))

    def logged_versions(self, project: str, run_id: str) -> list[VersionRecord]:
        return self._read(lambda tx: sql_lineage.logged_versions(tx, project, run_id))

    def used_versions(self, project: str, run_id: str) -> list[VersionRecord]:
        return self._read(lambda tx: sql_lineage.used_versions(tx, project, run_id))

    # -- sweeps ---------------------------------------------------------

    def create_sweep(
        self, project: str, sweep_id: str, config: Mapping[str, Any]
    ) -> SweepRecord:
        split_project(project)
        validate_name(sweep_id, "sweep id")
        record = self._write(
            lambda tx: sql_runs.create_sweep(tx, project, sweep_id, config)
        )
        log.info("created sweep %s", record.path)
        return record

    def get_sweep(self, project: str, sweep_id: str) -> SweepRecord:
        return self._read(lambda tx: sql_runs.get_sweep(tx, project, sweep_id))

    def next_trial(
        self, project: str, sweep_id: str, limit: int | None = None
    ) -> tuple[SweepRecord, int | None]:
        return self._write(lambda tx: sql_runs.next_trial(tx, project, sweep_id, limit))

    def finish_sweep(self, project: str, sweep_id: str) -> SweepRecord:
        return self._write(lambda tx: sql_runs.finish_sweep(tx, project, sweep_id))

    # -- retention ------------------------------------------------------

    def set_project_ttl(
        self, project: str, ttl: datetime.timedelta | None
    ) -> ProjectRecord:
        default = _project_default(ttl)
        record = self._write(
            lambda tx: sql_retention.set_project_ttl(tx, project, default)
        )
        log.info("default TTL of %s is now %s", record.path, record.default_ttl)
        return record

    def expired_versions(self) -> list[VersionRecord]:
        return self._read(sql_retention.expired_versions)

    def delete_expired(self) -> list[VersionRecord]:
        deleted = self._write(sql_retention.delete_expired)
        log.info("deleted %d expired versions", len(deleted))
        return deleted

    def live_manifest_blobs(self) -> set[str]:
        return self._read(sql_retention.live_manifest_blobs)

    # -- the blobs each version needs (see sql_blob_index) --------------

    def unindexed_manifests(self) -> dict[int, str]:
        """Live versions whose needed blobs are not all recorded: id -> manifest."""
        return self._read(sql_blob_index.unindexed_manifests)

    def index_blobs(self, version_id: int, digests: Iterable[str]) -> bool:
        """Record every blob the version needs; False if it went meanwhile."""
        wanted = set(digests)
        return self._write(lambda tx: sql_blob_index.index(tx, version_id, wanted))

    def needed_blobs(self) -> set[str]:
        """Every blob a live version needs, as recorded."""
        return self._read(sql_blob_index.needed_blobs)

    # -- transactions ---------------------------------------------------

    def _read(self, work: Callable[[Tx], T]) -> T:
        return self._transaction(work, write=False)

    def _write(self, work: Callable[[Tx], T]) -> T:
        return self._transaction(work, write=True)

    def _transaction(self, work: Callable[[Tx], T], *, write: bool) -> T:
        where = redacted(self.url)
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._engine.connect() as conn:
                    conn.execution_options(refstore_write=write)
                    with conn.begin():
                        tx = Tx(conn, self._now(), where, self._run_timeout)
                        return work(tx)
            except DBAPIError as exc:
                if not (write and attempt < _ATTEMPTS and _is_transient(exc)):
                    raise catalog_error(self.url, exc) from exc
                log.debug("retrying a catalog write after %s", exc.orig)
                # Jitter keeps the writers that collided from colliding again.
                time.sleep(random.uniform(0.005, 0.05) * attempt)  # noqa: S311
        raise AssertionError("the loop above returns or raises")

    def _now(self) -> datetime.datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise CatalogError(
                f"the catalog clock returned {now}, a naive time; it must return "
                "timezone-aware UTC times"
            )
        return now


# Module functions: schema management and input checks.


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


def _check_new_version(new: NewVersion) -> None:
    split_project(new.project)
    validate_name(new.name, "artifact name")
    validate_name(new.type, "artifact type")
    for tag in new.tags:
        validate_name(tag, "tag")
    if new.run is not None:
        validate_name(new.run, "run id")
    check_ttl(new.ttl)
    check_json(new.metadata, f"metadata of {new.project}/{new.name}")


def _project_default(ttl: object) -> datetime.timedelta | None:
    checked = check_ttl(ttl)
    if checked is INHERIT:
        raise CatalogError(
            "a project's default TTL cannot be INHERIT: give a timedelta, or "
            "None to keep versions forever"
        )
    return checked


def _checked_edit(edit: VersionEdit, path: str) -> VersionEdit:
    for tag in edit.tags:
        validate_name(tag, "tag")
    for alias in (*edit.add_aliases, *edit.remove_aliases):
        validate_alias(alias)
    check_ttl(edit.ttl)
    check_json(edit.metadata, f"metadata of {path}")
    return edit


def _check_new_run(new: NewRun, resume: str) -> None:
    split_project(new.project)
    validate_name(new.id, "run id")
    if new.job_type is not None:
        validate_name(new.job_type, "job type")
    if new.sweep is not None:
        validate_name(new.sweep, "sweep id")
    if resume not in RESUME_MODES:
        raise CatalogError(
            f"resume={resume!r} is not a resume mode: use one of "
            + ", ".join(repr(mode) for mode in RESUME_MODES)
        )
    check_json(new.config, f"config of run {new.id}")


def _check_state(state: str) -> None:
    if state not in RUN_STATES:
        raise CatalogError(
            f"{state!r} is not a run state: use one of {', '.join(RUN_STATES)}"
        )


def _check_new_state(state: str) -> None:
    if state == "crashed":
        raise CatalogError(
            "'crashed' is not a run state a run can be set to: the catalog "
            "derives it from a run's silence; set one of "
            + ", ".join(STORED_RUN_STATES)
        )
    if state not in STORED_RUN_STATES:
        raise CatalogError(
            f"{state!r} is not a run state: set one of {', '.join(STORED_RUN_STATES)}"
        )


def _user_aliases(names: Iterable[str]) -> list[str]:
    """The aliases to move besides ``latest``, validated, each once."""
    return sorted({validate_alias(name) for name in names} - {LATEST})
