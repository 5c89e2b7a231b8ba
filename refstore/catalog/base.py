"""The catalog contract: projects, artifacts, versions, aliases, runs and lineage.

One interface, two implementations: :mod:`refstore.catalog.sql` (SQLite or
PostgreSQL through SQLAlchemy) and, later, an HTTP client of the refstore
service. Records are frozen value objects; catalogs never hand out live ORM
rows. Every method that changes the catalog does so in one transaction:
version numbers and alias moves are taken there, so concurrent writers never
produce two ``v3``s or lose an alias move.

Expired versions (their ``expires_at`` has passed by the catalog's clock)
are invisible to every query at once; :meth:`Catalog.delete_expired` removes
them for good. ``latest`` always names the newest version that has not
expired.

A run is ``running``, ``finished`` or ``failed`` as its owner set it, or
``crashed``: running, but silent (no update, see :meth:`Catalog.update_run`)
for longer than the catalog's run timeout by the catalog's clock. Crashed is
derived when the run is read, never stored, so a run that speaks again, or
is resumed, finished or failed by its owner, leaves it at once.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from refstore.blobs import BlobStore
from refstore.ttl import INHERIT, TtlPolicy

__all__ = [
    "RESUME_MODES",
    "RUN_STATES",
    "STORED_RUN_STATES",
    "ArtifactRecord",
    "Catalog",
    "Clock",
    "GcReport",
    "LoadedFields",
    "NewRun",
    "NewVersion",
    "ProjectDeletion",
    "ProjectRecord",
    "Resume",
    "RunRecord",
    "RunState",
    "StoredRunState",
    "SweepRecord",
    "SweepState",
    "ValueFilter",
    "VersionEdit",
    "VersionRecord",
]

Clock = Callable[[], datetime.datetime]
# What an owner sets; the catalog reports "crashed" besides (see above).
StoredRunState = Literal["running", "finished", "failed"]
STORED_RUN_STATES: tuple[StoredRunState, ...] = ("running", "finished", "failed")
RunState = Literal["running", "finished", "failed", "crashed"]
RUN_STATES: tuple[RunState, ...] = (*STORED_RUN_STATES, "crashed")
SweepState = Literal["pending", "running", "finished"]
Resume = Literal["allow", "must", "never"]
RESUME_MODES: tuple[Resume, ...] = ("allow", "must", "never")


@dataclasses.dataclass(frozen=True)
class ProjectRecord:
    entity: str
    name: str
    created_at: datetime.datetime
    default_ttl: datetime.timedelta | None = None

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.name}"


@dataclasses.dataclass(frozen=True)
class ProjectDeletion:
    """What deleting a project removes (or, with ``dry_run``, would remove).

    ``cross_project_uses`` counts the lineage edges from other projects'
    runs to this project's versions: those runs stay, but lose the record
    of having used them.
    """

    project: str  # entity/project
    artifacts: int
    versions: int
    runs: int
    sweeps: int
    lineage_edges: int
    cross_project_uses: int
    dry_run: bool


@dataclasses.dataclass(frozen=True)
class ArtifactRecord:
    """An artifact collection: one name, one type, many versions."""

    project: str  # entity/project
    name: str
    type: str
    description: str | None
    created_at: datetime.datetime
    version_count: int
    latest_version: int | None


@dataclasses.dataclass(frozen=True)
class VersionRecord:
    """One logged version of an artifact."""

    project: str  # entity/project
    name: str
    type: str
    version: int
    aliases: tuple[str, ...]
    description: str | None
    metadata: Mapping[str, Any]
    digest: str  # the manifest digest
    manifest_blob: str  # sha256 of the stored manifest in the blob store
    entry_count: int
    total_size: int
    created_at: datetime.datetime
    tags: tuple[str, ...] = ()
    ttl: TtlPolicy = None
    expires_at: datetime.datetime | None = None

    @property
    def version_name(self) -> str:
        return f"v{self.version}"

    @property
    def collection(self) -> str:
        """``entity/project/name``."""
        return f"{self.project}/{self.name}"

    @property
    def path(self) -> str:
        return f"{self.project}/{self.name}:v{self.version}"


@dataclasses.dataclass(frozen=True)
class GcReport:
    """What a collection deleted (or, dry, would delete).

    ``indexed_versions``: versions logged before the blob index whose
    manifests this collection read to index them; ``manifests_read``: every
    manifest it read (none once all versions are indexed).
    """

    versions: list[VersionRecord]
    blobs: list[str]
    freed_bytes: int
    dry_run: bool
    indexed_versions: int = 0
    manifests_read: int = 0


@dataclasses.dataclass(frozen=True)
class NewVersion:
    """What ``log_version`` needs: the manifest is already in the blob store."""

    project: str  # entity/project
    name: str
    type: str
    digest: str
    manifest_blob: str
    entry_count: int
    total_size: int
    description: str | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    ttl: TtlPolicy = INHERIT
    run: str | None = None  # the id of the run in ``project`` that logs it
    # The sha256 of every copied file (entry without a ref) the manifest
    # names, noted while it was stored. None: not known, and gc reads the
    # manifest once to find them. A service finds them itself (never trusted
    # from a client: a wrong list would let gc delete a needed file).
    files: frozenset[str] | None = None


@dataclasses.dataclass(frozen=True)
class LoadedFields:
    """A version's editable fields as an editor loaded them, before editing."""

    description: str | None
    metadata: Mapping[str, Any]
    tags: tuple[str, ...]
    ttl: TtlPolicy


@dataclasses.dataclass(frozen=True)
class VersionEdit:
    """An edit of a logged version.

    Without ``loaded`` the description, metadata, tags and TTL replace the
    stored ones: the last writer wins. With ``loaded`` (what the editor
    started from) only the fields the editor changed are written, each only
    if nobody else changed it since (compare-and-set, ConflictError naming
    the fields otherwise); tags are added and removed as a set, so
    concurrent tag edits merge. Aliases change by difference, so that an
    edit never undoes another writer's alias move: ``add_aliases`` move here
    from wherever they are, and ``remove_aliases`` go only if they still
    name this version.
    """

    description: str | None
    metadata: Mapping[str, Any]
    tags: tuple[str, ...]
    ttl: TtlPolicy
    add_aliases: tuple[str, ...] = ()
    remove_aliases: tuple[str, ...] = ()
    loaded: LoadedFields | None = None


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One run: an execution that logs and uses artifact versions."""

    project: str  # entity/project
    id: str
    name: str | None
    job_type: str | None
    state: RunState
    config: Mapping[str, Any]
    summary: Mapping[str, Any]
    sweep: str | None  # the sweep's id in the same project
    created_at: datetime.datetime
    updated_at: datetime.datetime
    heartbeat_at: datetime.datetime

    @property
    def path(self) -> str:
        return f"{self.project}/{self.id}"


@dataclasses.dataclass(frozen=True)
class ValueFilter:
    """A value a run's config or summary must hold: ``key`` equals ``value``.

    ``key`` is ``config.KEY`` or ``summary.KEY``, dots reaching into nested
    dicts (``config.optimizer.lr``). Equality is Python's: ``1``, ``1.0`` and
    ``True`` are equal, ``"1"`` is not, ``None`` matches a key holding null
    but not a missing key.
    """

    key: str
    value: Any


@dataclasses.dataclass(frozen=True)
class NewRun:
    project: str  # entity/project
    id: str
    name: str | None = None
    job_type: str | None = None
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sweep: str | None = None


@dataclasses.dataclass(frozen=True)
class SweepRecord:
    """A search over a parameter space; its runs are its trials."""

    project: str  # entity/project
    id: str
    config: Mapping[str, Any]
    state: SweepState
    trial_count: int  # trials handed out so far
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @property
    def path(self) -> str:
        return f"{self.project}/{self.id}"


class Catalog(Protocol):
    """Where projects, artifacts, versions, aliases, runs and lineage live."""

    blobs: BlobStore

    # -- versions -------------------------------------------------------

    def log_version(self, new: NewVersion) -> tuple[VersionRecord, bool]:
        """Record a version; return it and whether it was created.

        Creates the project and artifact when missing. When ``new.digest``
        equals the digest of the artifact's ``latest`` version, nothing is
        created: the existing version is returned (with ``new.aliases``
        added to it) and the flag is False. Otherwise the next version number
        is taken (numbers are never reused, even after a delete), ``latest``
        moves to it, and so does every alias in ``new.aliases``. An artifact
        keeps one type: logging another raises ConflictError. ``new.run``
        records that run as having logged the version, in the same
        transaction.
        """
        ...

    def get_version(self, project: str, name: str, selector: str) -> VersionRecord:
        """The version named by ``selector`` (``vN`` or an alias), or NotFoundError."""
        ...

    def list_versions(self, project: str, name: str) -> list[VersionRecord]:
        """Every version of one artifact, oldest first."""
        ...

    def update_version(
        self, project: str, name: str, version: int, edit: VersionEdit
    ) -> VersionRecord:
        """Apply ``edit`` to a version (see :class:`VersionEdit`).

        The version is locked while the fields the edit changed are compared
        with the stored ones; ConflictError when another edit changed one of
        them since ``edit.loaded``.
        """
        ...

    def delete_version(
        self, project: str, name: str, version: int, *, delete_aliases: bool = False
    ) -> VersionRecord:
        """Delete a version; ConflictError while aliases besides ``latest`` remain.

        With ``delete_aliases`` those aliases go with it. ``latest`` moves to
        the newest remaining version. Blobs stay until :func:`refstore.gc`.
        """
        ...

    # -- projects and artifacts -----------------------------------------

    def list_projects(self) -> list[ProjectRecord]: ...

    def get_project(self, project: str) -> ProjectRecord: ...

    def list_artifacts(self, project: str) -> list[ArtifactRecord]:
        """The artifact collections of a project, by name; NotFoundError if none."""
        ...

    def delete_project(self, project: str, *, dry_run: bool = False) -> ProjectDeletion:
        """Delete a project and everything in it; return what went.

        Its artifacts, versions, aliases, tags, runs, sweeps and every lineage
        edge of its runs and to its versions, other projects' runs' included.
        ``dry_run`` counts the same and deletes nothing. Blobs stay until
        :func:`refstore.gc`. NotFoundError when there is no such project.
        """
        ...

    def rename_project(self, project: str, new: str) -> ProjectRecord:
        """Give a project another ``entity/name``; it keeps all it holds.

        Runs, aliases and lineage refer to the project itself, not to its
        path, so they follow. ConflictError when ``new`` exists.
        """
        ...

    def list_artifact_types(self, project: str) -> list[str]:
        """The types of a project's artifacts, sorted."""
        ...

    # -- aliases --------------------------------------------------------

    def set_alias(
        self, project: str, name: str, alias: str, version: int, *, move: bool = True
    ) -> VersionRecord:
        """Point ``alias`` at ``version``.

        An alias that names another version moves; with ``move=False`` that
        is a ConflictError instead.
        """
        ...

    def remove_alias(
        self, project: str, name: str, alias: str, version: int | None = None
    ) -> None:
        """Remove ``alias`` (from ``version`` only, when given).

        ``latest`` cannot be removed (ConflictError).
        """
        ...

    # -- runs -----------------------------------------------------------

    def start_run(self, new: NewRun, resume: Resume) -> tuple[RunRecord, bool]:
        """Create or resume a run; return it and whether it was resumed.

        ``allow`` resumes the run when it exists and creates it otherwise;
        ``must`` resumes it or raises NotFoundError; ``never`` creates it or
        raises ConflictError. A resumed run is running again; ``new.config``
        is merged into its config.
        """
        ...

    def get_run(self, project: str, run_id: str) -> RunRecord: ...

    def update_run(
        self,
        project: str,
        run_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        state: StoredRunState | None = None,
    ) -> RunRecord:
        """Replace what is given; an update is also a heartbeat.

        An update with nothing but the run is the heartbeat a live run sends.
        A crashed run is revived by a heartbeat or a new state, but not by an
        edit of its config or summary alone: that may come from anyone
        (``Api().run(path).summary``), not only from a process still running it.
        """
        ...

    def list_runs(
        self,
        project: str,
        *,
        state: RunState | None = None,
        job_type: str | None = None,
        sweep: str | None = None,
        where: Sequence[ValueFilter] = (),
    ) -> list[RunRecord]:
        """The runs of a project that match every filter given, oldest first.

        ``state="running"`` leaves out the crashed runs; ``"crashed"`` finds them.
        Every :class:`ValueFilter` in ``where`` must hold too; a key that
        cannot be looked up raises CatalogError.
        """
        ...

    # -- lineage --------------------------------------------------------

    def use_version(
        self, project: str, run_id: str, artifact_project: str, name: str, selector: str
    ) -> VersionRecord:
        """Resolve ``selector`` and record that the run used that version."""
        ...

    def logged_by(self, project: str, name: str, version: int) -> RunRecord | None:
        """The run that logged the version first, if a run did."""
        ...

    def used_by(self, project: str, name: str, version: int) -> list[RunRecord]: ...

    def logged_versions(self, project: str, run_id: str) -> list[VersionRecord]: ...

    def used_versions(self, project: str, run_id: str) -> list[VersionRecord]: ...

    # -- sweeps ---------------------------------------------------------

    def create_sweep(
        self, project: str, sweep_id: str, config: Mapping[str, Any]
    ) -> SweepRecord: ...

    def get_sweep(self, project: str, sweep_id: str) -> SweepRecord: ...

    def next_trial(
        self, project: str, sweep_id: str, limit: int | None = None
    ) -> tuple[SweepRecord, int | None]:
        """Take the sweep's next trial number (0, 1, ...), once per caller.

        With a ``limit`` (a grid's size), None once ``limit`` trials were
        handed out, and the sweep's ``trial_count`` is left as it was.
        """
        ...

    def finish_sweep(self, project: str, sweep_id: str) -> SweepRecord: ...

    # -- retention ------------------------------------------------------

    def set_project_ttl(
        self, project: str, ttl: datetime.timedelta | None
    ) -> ProjectRecord:
        """Set the default TTL of versions that inherit it; re-times those."""
        ...

    def expired_versions(self) -> list[VersionRecord]:
        """Every version whose TTL has run out, oldest first."""
        ...

    def delete_expired(self) -> list[VersionRecord]:
        """Delete every expired version; return what was deleted."""
        ...

    def live_manifest_blobs(self) -> set[str]:
        """The manifest blobs of every version that has not expired."""
        ...

    def close(self) -> None: ...
