"""loyalty achievements: the achievements (badge, points, condition) and each customer's progress towards them

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-18 11:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loyalty_achievements",
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("badge", sa.String(length=16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("condition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=True),
        sa.Column("valid_until", sa.DateTime(), nullable=True),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_loyalty_achievements")),
    )
    op.create_table(
        "loyalty_achievement_progress",
        sa.Column("achievement_key", sa.String(length=60), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("earned_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("achievement_key", "customer_id", name=op.f("pk_loyalty_achievement_progress")),
    )
    op.create_index(
        op.f("ix_loyalty_achievement_progress_customer_id"),
        "loyalty_achievement_progress",
        ["customer_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_loyalty_achievement_progress_customer_id"), table_name="loyalty_achievement_progress")
    op.drop_table("loyalty_achievement_progress")
    op.drop_table("loyalty_achievements")
