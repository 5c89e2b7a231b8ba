"""The SQL catalog's tables, as SQLAlchemy Core builds queries against them.

The schema itself belongs to the Alembic revisions in
:mod:`refstore.catalog.migrations`; these definitions mirror the newest
revision (a test compares the two after migrating a fresh database). Change
both together: a new revision, then the tables here.
"""

from __future__ import annotations

import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

__all__ = ["UtcDateTime", "aliases", "artifacts", "metadata", "projects", "versions"]


class UtcDateTime(TypeDecorator[datetime.datetime]):
    """Timestamps stored in UTC and always read back timezone-aware.

    SQLite has no timezone-aware type and returns naive values; they are UTC
    because this type converts everything to UTC on the way in.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        return None if value is None else value.astimezone(datetime.UTC)

    def process_result_value(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC)


def _timestamp(name: str) -> Column[datetime.datetime]:
    return Column(name, UtcDateTime(timezone=True), nullable=False)


metadata = MetaData()

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("visibility", String(16), nullable=False, server_default="private"),
    _timestamp("created_at"),
    UniqueConstraint("entity", "name", name="uq_projects_entity_name"),
    CheckConstraint(
        "visibility IN ('private', 'public', 'open')", name="ck_projects_visibility"
    ),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "project_id",
        Integer,
        ForeignKey("projects.id", name="fk_artifacts_project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(128), nullable=False),
    Column("type", String(128), nullable=False),
    Column("description", Text, nullable=True),
    _timestamp("created_at"),
    UniqueConstraint("project_id", "name", name="uq_artifacts_project_id_name"),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "artifact_id",
        Integer,
        ForeignKey("artifacts.id", name="fk_versions_artifact_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("manifest_blob", String(64), nullable=False),
    Column("entry_count", BigInteger, nullable=False),
    Column("total_size", BigInteger, nullable=False),
    Column("description", Text, nullable=True),
    Column(
        "metadata",
        JSON().with_variant(postgresql.JSONB(), "postgresql"),
        nullable=False,
    ),
    _timestamp("created_at"),
    UniqueConstraint("artifact_id", "version", name="uq_versions_artifact_id_version"),
    Index("ix_versions_artifact_id_digest", "artifact_id", "digest"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "artifact_id",
        Integer,
        ForeignKey("artifacts.id", name="fk_aliases_artifact_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("alias", String(128), nullable=False),
    Column(
        "version_id",
        Integer,
        ForeignKey("versions.id", name="fk_aliases_version_id", ondelete="CASCADE"),
        nullable=False,
    ),
    _timestamp("updated_at"),
    UniqueConstraint("artifact_id", "alias", name="uq_aliases_artifact_id_alias"),
    Index("ix_aliases_version_id", "version_id"),
)
