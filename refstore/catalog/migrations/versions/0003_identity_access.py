"""Identity and access for the service: entities, memberships, tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

Users and teams share one namespace, ``entities``, because a project's
entity names either: ``alice/scratch`` belongs to the user alice,
``acme/vision`` to the team acme. Tokens are stored as the sha256 of the
token, never the token itself. ``project_blobs`` records which project each
stored blob was uploaded to or logged in: a blob is readable only through a
project that holds it, so the content-addressed store never hands one
project's files to another's readers. ``request_keys`` remembers what each
idempotency key of a logged version produced, so that a retried log answers
with the first attempt's version instead of logging another.

Only new tables: nothing existing changes, so SQLite needs no table copies.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _entity(column: str, child: str) -> sa.Column[int]:
    return sa.Column(
        column,
        sa.Integer,
        sa.ForeignKey("entities.id", name=f"fk_{child}_{column}", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    _create_entities()
    _create_memberships()
    _create_tokens()
    _create_project_blobs()
    _create_request_keys()


def _create_entities() -> None:
    op.create_table(
        "entities",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False, server_default=sa.false()),
        _timestamp("created_at"),
        sa.UniqueConstraint("name", name="uq_entities_name"),
        sa.CheckConstraint("kind IN ('user', 'team')", name="ck_entities_kind"),
    )


def _create_memberships() -> None:
    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer, primary_key=True),
        _entity("team_id", "memberships"),
        _entity("user_id", "memberships"),
        sa.Column("role", sa.String(8), nullable=False),
        _timestamp("created_at"),
        sa.UniqueConstraint(
            "team_id", "user_id", name="uq_memberships_team_id_user_id"
        ),
        sa.CheckConstraint("role IN ('member', 'admin')", name="ck_memberships_role"),
    )
    # Every request of a signed-in user lists the teams they belong to.
    op.create_index("ix_memberships_user_id", "memberships", ["user_id"])


def _create_tokens() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        _entity("user_id", "tokens"),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_used_at", nullable=True),
        sa.UniqueConstraint("digest", name="uq_tokens_digest"),
    )
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])


def _create_project_blobs() -> None:
    op.create_table(
        "project_blobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey(
                "projects.id", name="fk_project_blobs_project_id", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        _timestamp("created_at"),
        sa.UniqueConstraint(
            "project_id", "digest", name="uq_project_blobs_project_id_digest"
        ),
    )
    # A download names only the digest; readers are found from it.
    op.create_index("ix_project_blobs_digest", "project_blobs", ["digest"])


def _create_request_keys() -> None:
    op.create_table(
        "request_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        # Who sent it and what: a key replayed by another caller, or with
        # another body, is refused rather than answered.
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("project", sa.String(257), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("created", sa.Boolean, nullable=False, server_default=sa.false()),
        _timestamp("created_at"),
        sa.UniqueConstraint("key", name="uq_request_keys_key"),
    )
    # Old keys are purged by age.
    op.create_index("ix_request_keys_created_at", "request_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_request_keys_created_at", table_name="request_keys")
    op.drop_table("request_keys")
    op.drop_index("ix_project_blobs_digest", table_name="project_blobs")
    op.drop_table("project_blobs")
    op.drop_index("ix_tokens_user_id", table_name="tokens")
    op.drop_table("tokens")
    op.drop_index("ix_memberships_user_id", table_name="memberships")
    op.drop_table("memberships")
    op.drop_table("entities")
