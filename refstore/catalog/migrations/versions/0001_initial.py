"""Projects, artifacts, versions and aliases.

Revision ID: 0001
Revises:
Create Date: 2026-12-03

Runs, lineage edges and TTLs arrive in later revisions: they add tables that
reference ``versions.id`` and columns to ``versions``, so nothing here needs
to change for them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entity", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column(
            "visibility", sa.String(16), nullable=False, server_default="private"
        ),
        _timestamp("created_at"),
        sa.UniqueConstraint("entity", "name", name="uq_projects_entity_name"),
        sa.CheckConstraint(
            "visibility IN ('private', 'public', 'open')",
            name="ck_projects_visibility",
        ),
    )
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey(
                "projects.id", name="fk_artifacts_project_id", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        _timestamp("created_at"),
        sa.UniqueConstraint("project_id", "name", name="uq_artifacts_project_id_name"),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "artifact_id",
            sa.Integer,
            sa.ForeignKey(
                "artifacts.id", name="fk_versions_artifact_id", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("manifest_blob", sa.String(64), nullable=False),
        sa.Column("entry_count", sa.BigInteger, nullable=False),
        sa.Column("total_size", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        _timestamp("created_at"),
        sa.UniqueConstraint(
            "artifact_id", "version", name="uq_versions_artifact_id_version"
        ),
    )
    # Dedup and "which versions hold this manifest" look versions up by digest.
    op.create_index(
        "ix_versions_artifact_id_digest", "versions", ["artifact_id", "digest"]
    )
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "artifact_id",
            sa.Integer,
            sa.ForeignKey(
                "artifacts.id", name="fk_aliases_artifact_id", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey(
                "versions.id", name="fk_aliases_version_id", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        _timestamp("updated_at"),
        sa.UniqueConstraint(
            "artifact_id", "alias", name="uq_aliases_artifact_id_alias"
        ),
    )
    # A version record lists its aliases; without this that is a table scan.
    op.create_index("ix_aliases_version_id", "aliases", ["version_id"])


def downgrade() -> None:
    op.drop_index("ix_aliases_version_id", table_name="aliases")
    op.drop_table("aliases")
    op.drop_index("ix_versions_artifact_id_digest", table_name="versions")
    op.drop_table("versions")
    op.drop_table("artifacts")
    op.drop_table("projects")
