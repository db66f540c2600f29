"""loyalty referrals: customers' referral codes, referrals (one per friend), every decision with its reason, and the
devices and addresses the self-referral guard compares

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-18 11:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _indexes(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "loyalty_referral_codes",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_loyalty_referral_codes")),
    )
    _indexes("loyalty_referral_codes", "customer_id")
    op.create_table(
        "loyalty_referrals",
        sa.Column("friend_id", sa.String(length=40), nullable=False),
        sa.Column("referrer_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("network", sa.String(length=64), nullable=True),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("landed_at", sa.DateTime(), nullable=False),
        sa.Column("attributed_at", sa.DateTime(), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("rewarded_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("friend_id", name=op.f("pk_loyalty_referrals")),
    )
    _indexes(
        "loyalty_referrals", "attributed_at", "device", "network", "order_id", "referrer_id", "rewarded_at", "status"
    )
    op.create_table(
        "loyalty_referral_decisions",
        sa.Column("id", BigInt, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("friend_id", sa.String(length=40), nullable=True),
        sa.Column("referrer_id", sa.String(length=40), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_referral_decisions")),
        sa.UniqueConstraint("key", name=op.f("uq_loyalty_referral_decisions_key")),
    )
    _indexes("loyalty_referral_decisions", "at", "friend_id", "referrer_id")
    op.create_table(
        "loyalty_referral_marks",
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", "customer_id", name=op.f("pk_loyalty_referral_marks")),
    )
    _indexes("loyalty_referral_marks", "customer_id")


def downgrade() -> None:
    for table in (
        "loyalty_referral_marks",
        "loyalty_referral_decisions",
        "loyalty_referrals",
        "loyalty_referral_codes",
    ):
        op.drop_table(table)
