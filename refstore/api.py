"""The public query API: artifacts, runs, sweeps, lineage; aliases, TTLs, gc.

Objects handed out are cheap: an artifact's manifest, a run's lineage and a
sweep's runs are read from the catalog when asked for.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from refstore.artifact import Artifact
from refstore.catalog.base import (
    ArtifactRecord,
    ProjectDeletion,
    ProjectRecord,
    ValueFilter,
    VersionRecord,
)
from refstore.config import Settings
from refstore.context import Context
from refstore.errors import InvalidReferenceError, NotFoundError, RefstoreError
from refstore.gc import DEFAULT_GRACE, GcReport, collect
from refstore.lineage import LineageGraph, walk
from refstore.names import parse_artifact_path, parse_project
from refstore.run import Run
from refstore.runs import project_path, split_path
from refstore.sweeps import Sweep

__all__ = ["Api"]


class Api:
    """Read access to the catalog, shaped like experiment trackers' public APIs.

    ``Api()`` uses the catalog the environment names (``REFSTORE_URL``, else
    SQLite under ``REFSTORE_HOME``); pass ``settings`` (or a ``context``) to
    use another.
    """

    def __init__(
        self, settings: Settings | None = None, *, context: Context | None = None
    ) -> None:
        self._context = Context(settings) if settings is not None else context

    @property
    def context(self) -> Context:
        return self._context or Context.current()

    def artifact(self, path: str, type: str | None = None) -> Artifact:
        """Load ``entity/project/name:alias`` (or ``:vN``)."""
        record = self._version(path)
        if type is not None and record.type != type:
            raise NotFoundError(
                f"{record.path} is of type {record.type!r}, not {type!r}"
            )
        return Artifact._from_record(record, self.context)

    def artifact_versions(self, path: str) -> list[Artifact]:
        """Every version of ``entity/project/name``, oldest first."""
        context = self.context
        parsed = parse_artifact_path(path, context.settings.project)
        records = context.catalog.list_versions(parsed.project_path, parsed.name)
        return [Artifact._from_record(record, context) for record in records]

    def artifact_collections(self, project: str) -> list[ArtifactRecord]:
        """The artifacts of ``entity/project``, by name."""
        entity, name = parse_project(project)
        return self.context.catalog.list_artifacts(f"{entity}/{name}")

    def projects(self) -> list[ProjectRecord]:
        return self.context.catalog.list_projects()

    def artifacts(self, type_name: str, name: str) -> list[Artifact]:
        """Every version of the collection ``entity/project/name``, oldest first."""
        versions = self.artifact_versions(name)
        if versions and versions[0].type != type_name:
            raise NotFoundError(
                f"{name} holds artifacts of type {versions[0].type!r}, not "
                f"{type_name!r}"
            )
        return versions

    def artifact_types(self, project: str) -> list[str]:
        """The artifact types used in ``entity/project``, sorted."""
        return self.context.catalog.list_artifact_types(self._project(project))

    def delete_project(self, path: str, dry_run: bool = False) -> ProjectDeletion:
        """Delete ``entity/project`` and everything in it; return what went.

        Its artifacts, versions, aliases, runs, sweeps and lineage go, also
        the uses of its versions by other projects' runs (counted in
        ``cross_project_uses``). ``dry_run`` counts without deleting. The
        blob-store files stay until :meth:`gc`; buckets are never touched.
        """
        return self.context.catalog.delete_project(_exact(path), dry_run=dry_run)

    def rename_project(self, path: str, new: str) -> ProjectRecord:
        """Rename ``entity/project`` to ``new`` (another entity moves it).

        Everything in it follows: ``new/name:latest``, runs and lineage work
        at once, and the old path no longer exists.
        """
        return self.context.catalog.rename_project(_exact(path), _exact(new))

    # -- runs and sweeps ---------------------------------------------------

    def run(self, path: str) -> Run:
        """The run ``entity/project/run_id``."""
        context = self.context
        return Run(context.catalog.get_run(*split_path(path, context)), context)

    def runs(self, project: str, filters: Mapping[str, Any] | None = None) -> list[Run]:
        """The runs of ``entity/project`` matching every filter, oldest first.

        Filters: ``state`` (``running``, ``finished``, ``failed``, or
        ``crashed``: running but silent for longer than the catalog's run
        timeout), ``job_type``, ``sweep`` (a sweep id), and
        ``config.KEY`` or ``summary.KEY`` (dots reach into nested dicts),
        each compared for equality as Python compares (``1 == 1.0 == True``;
        ``None`` matches null, not a missing key). The catalog filters, in its
        database.
        """
        wanted = dict(filters or {})
        unknown = [k for k in wanted if not _is_filter(k)]
        if unknown:
            raise RefstoreError(
                f"unknown run filters {', '.join(unknown)}: use state, job_type, "
                "sweep, config.KEY or summary.KEY"
            )
        records = self.context.catalog.list_runs(
            self._project(project),
            state=wanted.pop("state", None),
            job_type=wanted.pop("job_type", None),
            sweep=wanted.pop("sweep", None),
            where=[ValueFilter(key, value) for key, value in wanted.items()],
        )
        return [Run(record, self.context) for record in records]

    def sweep(self, path: str) -> Sweep:
        """The sweep ``entity/project/sweep_id``, with its runs."""
        context = self.context
        return Sweep(context.catalog.get_sweep(*split_path(path, context)), context)

    def lineage(self, path: str, depth: int = 1) -> LineageGraph:
        """The runs and versions ``depth`` runs up and down from a version."""
        if depth < 1:
            raise RefstoreError(f"depth must be 1 or more, not {depth}")
        return walk(self.context.catalog, self._version(path), depth)

    # -- aliases, TTLs and gc --------------------------------------------------

    def add_alias(self, path: str, alias: str) -> Artifact:
        """Give the version at ``path`` a new alias; one in use elsewhere is refused."""
        return self._point_alias(path, alias, move=False)

    def move_alias(self, path: str, alias: str) -> Artifact:
        """Point ``alias`` at the version at ``path``, wherever it pointed before."""
        return self._point_alias(path, alias, move=True)

    def remove_alias(self, path: str, alias: str) -> Artifact:
        """Remove ``alias`` from the version at ``path``; return that version."""
        project, name, version = self.artifact(path)._version_key()
        self.context.catalog.remove_alias(project, name, alias, version)
        return self.artifact(f"{project}/{name}:v{version}")

    def project_ttl(self, project: str) -> datetime.timedelta | None:
        """The default TTL of the versions of ``project`` that inherit it."""
        return self.context.catalog.get_project(self._project(project)).default_ttl

    def set_project_ttl(self, project: str, ttl: datetime.timedelta | None) -> None:
        """Set the project's default TTL (None: keep forever).

        Versions that inherit it, logged before or after, expire that long
        after they were logged; some may expire at once.
        """
        self.context.catalog.set_project_ttl(self._project(project), ttl)

    def gc(
        self, dry_run: bool = False, grace: datetime.timedelta = DEFAULT_GRACE
    ) -> GcReport:
        """Delete expired versions and the blobs no live version needs.

        Objects in the users' buckets are never touched.
        """
        context = self.context
        return collect(context.catalog, now=context.now(), dry_run=dry_run, grace=grace)

    def _point_alias(self, path: str, alias: str, *, move: bool) -> Artifact:
        project, name, version = self.artifact(path)._version_key()
        record = self.context.catalog.set_alias(
            project, name, alias, version, move=move
        )
        return Artifact._from_record(record, self.context)

    def _project(self, project: str) -> str:
        return project_path(project, self.context)

    def _version(self, path: str) -> VersionRecord:
        context = self.context
        parsed = parse_artifact_path(path, context.settings.project)
        return context.catalog.get_version(
            parsed.project_path, parsed.name, parsed.selector
        )


def _exact(path: str) -> str:
    """``entity/project``, spelt out: a bare name is too easy to get wrong here."""
    if path.strip("/").count("/") != 1:
        raise InvalidReferenceError(
            f"{path!r} is not a project path: deleting or renaming a project "
            "needs it in full, entity/project (e.g. acme/vision)"
        )
    entity, name = parse_project(path)
    return f"{entity}/{name}"


_FIELDS = ("state", "job_type", "sweep")


def _is_filter(key: str) -> bool:
    head, dot, rest = key.partition(".")
    return key in _FIELDS or (head in ("config", "summary") and bool(dot and rest))
