"""loyalty earn rules: versions of the programme's earn rules (the newest in force), points earned per customer and day

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-18 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "loyalty_rule_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_loyalty_rule_versions")),
    )
    op.create_table(
        "loyalty_daily_earn",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("points", BigInt, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "day", name=op.f("pk_loyalty_daily_earn")),
    )


def downgrade() -> None:
    op.drop_table("loyalty_daily_earn")
    op.drop_table("loyalty_rule_versions")
