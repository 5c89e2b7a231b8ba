"""Runs, sweeps, lineage edges, version tags and TTLs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Columns are added with plain ALTER TABLE ... ADD COLUMN, never through
Alembic's batch mode: on SQLite batch mode copies a table and drops the
original, and with foreign keys on, dropping ``versions`` would cascade into
``aliases`` and delete every alias. That is also why the new columns carry
no CHECK constraints (SQLite cannot add one to an existing table); the
catalog validates those values itself.

Versions logged before this revision keep their data and are kept forever
(``ttl_inherits`` false): a project default TTL set later must not expire
data that predates TTLs. Each artifact's version counter starts after its
highest version, so numbers are never reused.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
        nullable=False,
    )


def _parent(table: str, child: str, *, ondelete: str = "CASCADE") -> sa.Column[int]:
    column = f"{table}_id"
    return sa.Column(
        column,
        sa.Integer,
        sa.ForeignKey(f"{table}s.id", name=f"fk_{child}_{column}", ondelete=ondelete),
        nullable=ondelete == "SET NULL",
    )


def upgrade() -> None:
    _add_columns()
    _backfill_version_counters()
    _create_tags()
    _create_sweeps()
    _create_runs()
    _create_lineage_edges()


def _add_columns() -> None:
    op.add_column(
        "projects", sa.Column("default_ttl_seconds", sa.BigInteger, nullable=True)
    )
    op.add_column(
        "artifacts",
        sa.Column("next_version", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column("versions", sa.Column("ttl_seconds", sa.BigInteger, nullable=True))
    op.add_column(
        "versions",
        sa.Column(
            "ttl_inherits", sa.Boolean, nullable=False, server_default=sa.false()
        ),
    )
    op.add_column("versions", _timestamp("expires_at", nullable=True))
    # Queries keep versions whose expires_at is in the future; gc scans for
    # the ones in the past.
    op.create_index("ix_versions_expires_at", "versions", ["expires_at"])


def _backfill_version_counters() -> None:
    versions = sa.table(
        "versions", sa.column("artifact_id", sa.Integer), sa.column("version")
    )
    artifacts = sa.table("artifacts", sa.column("id"), sa.column("next_version"))
    highest = (
        sa.select(sa.func.coalesce(sa.func.max(versions.c.version) + 1, 0))
        .where(versions.c.artifact_id == artifacts.c.id)
        .scalar_subquery()
    )
    op.execute(sa.update(artifacts).values(next_version=highest))


def _create_tags() -> None:
    op.create_table(
        "version_tags",
        sa.Column("id", sa.Integer, primary_key=True),
        _parent("version", "version_tags"),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.UniqueConstraint("version_id", "tag", name="uq_version_tags_version_id_tag"),
    )


def _create_sweeps() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer, primary_key=True),
        _parent("project", "sweeps"),
        sa.Column("key", sa.String(128), nullable=False),
        _json("config"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("trial_count", sa.Integer, nullable=False, server_default="0"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.UniqueConstraint("project_id", "key", name="uq_sweeps_project_id_key"),
        sa.CheckConstraint(
            "state IN ('pending', 'running', 'finished')", name="ck_sweeps_state"
        ),
    )


def _create_runs() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        _parent("project", "runs"),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("job_type", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        _json("config"),
        _json("summary"),
        _parent("sweep", "runs", ondelete="SET NULL"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("heartbeat_at"),
        sa.UniqueConstraint("project_id", "key", name="uq_runs_project_id_key"),
        sa.CheckConstraint(
            "state IN ('running', 'finished', 'failed')", name="ck_runs_state"
        ),
    )
    # A sweep lists its runs.
    op.create_index("ix_runs_sweep_id", "runs", ["sweep_id"])


def _create_lineage_edges() -> None:
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer, primary_key=True),
        _parent("run", "lineage_edges"),
        _parent("version", "lineage_edges"),
        sa.Column("kind", sa.String(8), nullable=False),
        _timestamp("created_at"),
        sa.UniqueConstraint(
            "run_id",
            "version_id",
            "kind",
            name="uq_lineage_edges_run_id_version_id_kind",
        ),
        sa.CheckConstraint("kind IN ('logged', 'used')", name="ck_lineage_edges_kind"),
    )
    # logged_by and used_by start from the version; the unique constraint
    # above already serves the queries that start from the run.
    op.create_index(
        "ix_lineage_edges_version_id_kind", "lineage_edges", ["version_id", "kind"]
    )


def downgrade() -> None:
    op.drop_index("ix_lineage_edges_version_id_kind", table_name="lineage_edges")
    op.drop_table("lineage_edges")
    op.drop_index("ix_runs_sweep_id", table_name="runs")
    op.drop_table("runs")
    op.drop_table("sweeps")
    op.drop_table("version_tags")
    op.drop_index("ix_versions_expires_at", table_name="versions")
    # SQLite drops columns in place since 3.35; no table copy, no cascade.
    for table, column in [
        ("versions", "expires_at"),
        ("versions", "ttl_inherits"),
        ("versions", "ttl_seconds"),
        ("artifacts", "next_version"),
        ("projects", "default_ttl_seconds"),
    ]:
        op.drop_column(table, column)
