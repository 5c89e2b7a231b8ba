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
    Boolean,
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
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UtcDateTime",
    "aliases",
    "artifacts",
    "entities",
    "lineage_edges",
    "memberships",
    "metadata",
    "project_blobs",
    "projects",
    "request_keys",
    "runs",
    "sweeps",
    "tokens",
    "version_blobs",
    "version_tags",
    "versions",
]


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


def _timestamp(name: str, *, nullable: bool = False) -> Column[datetime.datetime]:
    return Column(name, UtcDateTime(timezone=True), nullable=nullable)


def _json(name: str) -> Column[object]:
    return Column(
        name, JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
    )


def _parent(table: str, child: str, *, ondelete: str = "CASCADE") -> Column[int]:
    """``<table>_id``, a foreign key to ``<table>s.id``, named like 0001's."""
    column = f"{table}_id"
    nullable = ondelete == "SET NULL"
    return Column(
        column,
        Integer,
        ForeignKey(f"{table}s.id", name=f"fk_{child}_{column}", ondelete=ondelete),
        nullable=nullable,
    )


metadata = MetaData()

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("visibility", String(16), nullable=False, server_default="private"),
    _timestamp("created_at"),
    Column("default_ttl_seconds", BigInteger, nullable=True),
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
    Column("next_version", Integer, nullable=False, server_default="0"),
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
    Column("ttl_seconds", BigInteger, nullable=True),
    Column("ttl_inherits", Boolean, nullable=False, server_default=false()),
    _timestamp("expires_at", nullable=True),
    # Revision 0005: true once version_blobs holds every blob it needs.
    Column("blobs_indexed", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("artifact_id", "version", name="uq_versions_artifact_id_version"),
    Index("ix_versions_artifact_id_digest", "artifact_id", "digest"),
    Index("ix_versions_expires_at", "expires_at"),
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

version_tags = Table(
    "version_tags",
    metadata,
    Column("id", Integer, primary_key=True),
    _parent("version", "version_tags"),
    Column("tag", String(128), nullable=False),
    UniqueConstraint("version_id", "tag", name="uq_version_tags_version_id_tag"),
)

# Revision 0005: the blobs each version needs (its stored manifest and the
# copied files it names), so that gc need not read every live manifest.
version_blobs = Table(
    "version_blobs",
    metadata,
    Column("id", Integer, primary_key=True),
    _parent("version", "version_blobs"),
    Column("digest", String(64), nullable=False),
    UniqueConstraint("version_id", "digest", name="uq_version_blobs_version_id_digest"),
    Index("ix_version_blobs_digest", "digest"),
)

sweeps = Table(
    "sweeps",
    metadata,
    Column("id", Integer, primary_key=True),
    _parent("project", "sweeps"),
    # The id users see and type; "id" is the row's own key, as elsewhere.
    Column("key", String(128), nullable=False),
    _json("config"),
    Column("state", String(16), nullable=False),
    Column("trial_count", Integer, nullable=False, server_default="0"),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    UniqueConstraint("project_id", "key", name="uq_sweeps_project_id_key"),
    CheckConstraint(
        "state IN ('pending', 'running', 'finished')", name="ck_sweeps_state"
    ),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    _parent("project", "runs"),
    Column("key", String(128), nullable=False),
    Column("name", String(128), nullable=True),
    Column("job_type", String(128), nullable=True),
    Column("state", String(16), nullable=False),
    _json("config"),
    _json("summary"),
    _parent("sweep", "runs", ondelete="SET NULL"),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    _timestamp("heartbeat_at"),
    UniqueConstraint("project_id", "key", name="uq_runs_project_id_key"),
    CheckConstraint("state IN ('running', 'finished', 'failed')", name="ck_runs_state"),
    Index("ix_runs_sweep_id", "sweep_id"),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", Integer, primary_key=True),
    _parent("run", "lineage_edges"),
    _parent("version", "lineage_edges"),
    # "logged": the run produced the version; "used": the run consumed it.
    Column("kind", String(8), nullable=False),
    _timestamp("created_at"),
    UniqueConstraint(
        "run_id", "version_id", "kind", name="uq_lineage_edges_run_id_version_id_kind"
    ),
    CheckConstraint("kind IN ('logged', 'used')", name="ck_lineage_edges_kind"),
    Index("ix_lineage_edges_version_id_kind", "version_id", "kind"),
)


# Identity and access (revision 0003): users and teams share the entity
# namespace that projects are named under.


def _entity(column: str, child: str) -> Column[int]:
    return Column(
        column,
        Integer,
        ForeignKey("entities.id", name=f"fk_{child}_{column}", ondelete="CASCADE"),
        nullable=False,
    )


entities = Table(
    "entities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    _timestamp("created_at"),
    # Revision 0004: when a site admin disabled the user (null: enabled).
    _timestamp("disabled_at", nullable=True),
    UniqueConstraint("name", name="uq_entities_name"),
    CheckConstraint("kind IN ('user', 'team')", name="ck_entities_kind"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("id", Integer, primary_key=True),
    _entity("team_id", "memberships"),
    _entity("user_id", "memberships"),
    Column("role", String(8), nullable=False),
    _timestamp("created_at"),
    UniqueConstraint("team_id", "user_id", name="uq_memberships_team_id_user_id"),
    CheckConstraint("role IN ('member', 'admin')", name="ck_memberships_role"),
    Index("ix_memberships_user_id", "user_id"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    _entity("user_id", "tokens"),
    Column("label", String(128), nullable=False),
    # sha256 of the token; the token itself is shown once and never stored.
    Column("digest", String(64), nullable=False),
    _timestamp("created_at"),
    _timestamp("last_used_at", nullable=True),
    UniqueConstraint("digest", name="uq_tokens_digest"),
    Index("ix_tokens_user_id", "user_id"),
)

project_blobs = Table(
    "project_blobs",
    metadata,
    Column("id", Integer, primary_key=True),
    _parent("project", "project_blobs"),
    Column("digest", String(64), nullable=False),
    _timestamp("created_at"),
    UniqueConstraint("project_id", "digest", name="uq_project_blobs_project_id_digest"),
    Index("ix_project_blobs_digest", "digest"),
)

request_keys = Table(
    "request_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False),
    Column("principal", String(128), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("project", String(257), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("created", Boolean, nullable=False, server_default=false()),
    _timestamp("created_at"),
    UniqueConstraint("key", name="uq_request_keys_key"),
    Index("ix_request_keys_created_at", "created_at"),
)
