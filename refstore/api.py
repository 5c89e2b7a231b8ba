"""The public query API: find logged artifacts and what the catalog holds."""

from __future__ import annotations

from refstore.artifact import Artifact
from refstore.catalog.base import ArtifactRecord, ProjectRecord
from refstore.config import Settings
from refstore.context import Context
from refstore.errors import NotFoundError
from refstore.names import parse_artifact_path, parse_project

__all__ = ["Api"]


class Api:
    """Read access to the catalog, shaped like experiment trackers' public APIs.

    ``Api()`` uses the catalog the environment names (``REFSTORE_URL``, else
    SQLite under ``REFSTORE_HOME``); pass ``settings`` to use another.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._context = Context(settings) if settings is not None else None

    @property
    def context(self) -> Context:
        return self._context or Context.current()

    def artifact(self, path: str, type: str | None = None) -> Artifact:
        """Load ``entity/project/name:alias`` (or ``:vN``)."""
        context = self.context
        parsed = parse_artifact_path(path, context.settings.project)
        record = context.catalog.get_version(
            parsed.project_path, parsed.name, parsed.selector
        )
        if type is not None and record.type != type:
            raise NotFoundError(
                f"{record.path} is of type {record.type!r}, not {type!r}"
            )
        return Artifact._from_record(record, context)

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
