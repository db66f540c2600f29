"""loyalty tiers: each customer's tier with what qualified them, and the expiry notices sent per lot

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-17 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Money = sa.Numeric(precision=18, scale=4, asdecimal=False)


def upgrade() -> None:
    op.create_table(
        "loyalty_tiers",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("tier", sa.String(length=40), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("below_since", sa.DateTime(), nullable=True),
        sa.Column("qualified_spend", Money, nullable=False),
        sa.Column("qualified_orders", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_loyalty_tiers")),
    )
    op.create_index(op.f("ix_loyalty_tiers_tier"), "loyalty_tiers", ["tier"], unique=False)
    op.create_index(op.f("ix_loyalty_tiers_updated_at"), "loyalty_tiers", ["updated_at"], unique=False)
    op.create_table(
        "loyalty_expiry_notices",
        sa.Column("lot_id", BigInt, autoincrement=False, nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lot_id", name=op.f("pk_loyalty_expiry_notices")),
    )


def downgrade() -> None:
    op.drop_table("loyalty_expiry_notices")
    op.drop_index(op.f("ix_loyalty_tiers_updated_at"), table_name="loyalty_tiers")
    op.drop_index(op.f("ix_loyalty_tiers_tier"), table_name="loyalty_tiers")
    op.drop_table("loyalty_tiers")
