"""Users that site admins disable: ``entities.disabled_at``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

A timestamp rather than a flag: null means the user may sign in, and a time
says when their access was cut, which is what an operator asks first. The
column is nullable without a default, so adding it is a plain ALTER TABLE
on both SQLite and PostgreSQL (no table copy, see 0002) and existing users
stay enabled.

Downgrading drops the column, and 0003 has no way to say that a user is
disabled. So that a downgrade never lets a disabled user back in, it first
deletes their tokens; their projects, versions and memberships stay, and a
site admin gives them a new token after upgrading again and enabling them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "entities",
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    entities = sa.table(
        "entities", sa.column("id", sa.Integer), sa.column("disabled_at")
    )
    tokens = sa.table("tokens", sa.column("user_id", sa.Integer))
    disabled = sa.select(entities.c.id).where(entities.c.disabled_at.is_not(None))
    op.execute(sa.delete(tokens).where(tokens.c.user_id.in_(disabled)))
    # SQLite drops columns in place since 3.35; no table copy, no cascade.
    op.drop_column("entities", "disabled_at")
