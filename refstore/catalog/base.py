"""The catalog contract: projects, artifacts, versions and aliases.

One interface, two implementations: :mod:`refstore.catalog.sql` (SQLite or
PostgreSQL through SQLAlchemy) and, later, an HTTP client of the refstore
service. Records are frozen value objects; catalogs never hand out live ORM
rows. Every method that changes the catalog does so in one transaction:
version numbers and alias moves are taken there, so concurrent writers never
produce two ``v3``s or lose an alias move.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, Protocol

from refstore.blobs import BlobStore

__all__ = ["ArtifactRecord", "Catalog", "NewVersion", "ProjectRecord", "VersionRecord"]


@dataclasses.dataclass(frozen=True)
class ProjectRecord:
    entity: str
    name: str
    created_at: datetime.datetime

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.name}"


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

    @property
    def version_name(self) -> str:
        return f"v{self.version}"

    @property
    def path(self) -> str:
        return f"{self.project}/{self.name}:v{self.version}"


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


class Catalog(Protocol):
    """Where projects, artifacts, versions and aliases are recorded."""

    blobs: BlobStore

    def log_version(self, new: NewVersion) -> tuple[VersionRecord, bool]:
        """Record a version; return it and whether it was created.

        Creates the project and artifact when missing. When ``new.digest``
        equals the digest of the artifact's ``latest`` version, nothing is
        created: the existing version is returned (with ``new.aliases``
        added to it) and the flag is False. Otherwise the next version number
        is taken, ``latest`` moves to it, and so does every alias in
        ``new.aliases``. An artifact keeps one type: logging another raises
        ConflictError.
        """
        ...

    def get_version(self, project: str, name: str, selector: str) -> VersionRecord:
        """The version named by ``selector`` (``vN`` or an alias), or NotFoundError."""
        ...

    def list_projects(self) -> list[ProjectRecord]: ...

    def list_artifacts(self, project: str) -> list[ArtifactRecord]:
        """The artifact collections of a project, by name; NotFoundError if none."""
        ...

    def list_versions(self, project: str, name: str) -> list[VersionRecord]:
        """Every version of one artifact, oldest first."""
        ...

    def set_alias(
        self, project: str, name: str, alias: str, version: int
    ) -> VersionRecord:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
        ...

    def remove_alias(self, project: str, name: str, alias: str) -> None:
        """Remove ``alias``; ``latest`` cannot be removed (ConflictError)."""
        ...

    def close(self) -> None: ...
