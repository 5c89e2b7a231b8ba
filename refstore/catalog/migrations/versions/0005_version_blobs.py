"""The blobs each version needs: ``version_blobs`` and ``versions.blobs_indexed``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

gc keeps every blob a live version needs: its stored manifest and the
copied files its entries name. Finding the copied files used to mean reading
every live manifest at each gc; ``version_blobs`` records them once, when a
version is logged, so gc asks one query instead.

A migration sees the database but not the blob store, so the versions
logged before this revision cannot be indexed here. They get
``blobs_indexed`` false (the column's server default) and the next gc reads
their manifests once and indexes them; until then gc treats them as it always
did. New table, and a column with a constant default: plain ALTER TABLE on
both SQLite and PostgreSQL, no table copy (see 0002).

Downgrading drops both. Nothing is lost: the manifests still name every
copied file, and gc before this revision reads them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "versions",
        sa.Column(
            "blobs_indexed", sa.Boolean, nullable=False, server_default=sa.false()
        ),
    )
    op.create_table(
        "version_blobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey(
                "versions.id", name="fk_version_blobs_version_id", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        # Also the index that deleting a version cascades through.
        sa.UniqueConstraint(
            "version_id", "digest", name="uq_version_blobs_version_id_digest"
        ),
    )
    # "Which versions need this blob" names only the digest.
    op.create_index("ix_version_blobs_digest", "version_blobs", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_version_blobs_digest", table_name="version_blobs")
    op.drop_table("version_blobs")
    # SQLite drops columns in place since 3.35; no table copy, no cascade.
    op.drop_column("versions", "blobs_indexed")
