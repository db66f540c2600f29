"""promo codes: pools, codes and their redemptions; the stand-in's journey codes moved into the pool "journeys"

Every promo_code row of loyalty_entries becomes a personal code of the pool "journeys" (kind generated, percent),
single use, under its own key (so a journey that runs again still finds its code issued), its discount as the
code's own value. Downgrading puts the codes with a key (the journeys') back into loyalty_entries.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-16 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Money = sa.Numeric(precision=18, scale=4, asdecimal=False)


def upgrade() -> None:
    op.create_table(
        "promo_pools",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("discount_kind", sa.String(length=20), nullable=False),
        sa.Column("value", Money, nullable=False),
        sa.Column("min_order", Money, nullable=False),
        sa.Column("uses_per_code", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=True),
        sa.Column("valid_until", sa.DateTime(), nullable=True),
        sa.Column("low_stock_alert", sa.Integer(), nullable=True),
        sa.Column("warned_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_pools")),
        sa.UniqueConstraint("name", name=op.f("uq_promo_pools_name")),
    )
    op.create_table(
        "promo_codes",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("value", Money, nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["pool_id"], ["promo_pools.id"], name=op.f("fk_promo_codes_pool_id_promo_pools")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_promo_codes")),
        sa.UniqueConstraint("key", name=op.f("uq_promo_codes_key")),
    )
    op.create_index(op.f("ix_promo_codes_customer_id"), "promo_codes", ["customer_id"], unique=False)
    op.create_index(op.f("ix_promo_codes_pool_id"), "promo_codes", ["pool_id"], unique=False)
    op.create_table(
        "promo_redemptions",
        sa.Column("id", BigInt, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("total", Money, nullable=False),
        sa.Column("amount", Money, nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["code"], ["promo_codes.code"], name=op.f("fk_promo_redemptions_code_promo_codes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promo_redemptions")),
        sa.UniqueConstraint("code", "order_id", name=op.f("uq_promo_redemptions_code")),
    )
    op.create_index(op.f("ix_promo_redemptions_customer_id"), "promo_redemptions", ["customer_id"], unique=False)
    op.create_index(op.f("ix_promo_redemptions_expires_at"), "promo_redemptions", ["expires_at"], unique=False)
    op.create_index(op.f("ix_promo_redemptions_order_id"), "promo_redemptions", ["order_id"], unique=False)
    _move_codes()


ENTRIES = sa.table(
    "loyalty_entries",
    *(sa.column(c) for c in ("key", "customer_id", "kind", "points", "code", "discount_percent", "source")),
    sa.column("expires_at", sa.DateTime),
    sa.column("at", sa.DateTime),
)
POOLS = sa.table(
    "promo_pools",
    *(sa.column(c) for c in ("id", "name", "kind", "discount_kind", "value", "min_order", "uses_per_code")),
    sa.column("prefix"),
    sa.column("created_at", sa.DateTime),
)
CODES = sa.table(
    "promo_codes",
    *(sa.column(c) for c in ("code", "pool_id", "customer_id", "key", "value", "uses", "max_uses", "source")),
    sa.column("expires_at", sa.DateTime),
    sa.column("created_at", sa.DateTime),
)


def _move_codes() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(ENTRIES).where(ENTRIES.c.kind == "promo_code", ENTRIES.c.code.is_not(None)).order_by(ENTRIES.c.at)
    ).all()
    if not rows:
        return
    conn.execute(
        sa.insert(POOLS),
        [
            {
                "name": "journeys",
                "kind": "generated",
                "discount_kind": "percent",
                "value": 0,
                "min_order": 0,
                "uses_per_code": 1,
                "prefix": "BMR-",
                "created_at": rows[0].at,
            }
        ],
    )
    pool_id = conn.scalar(sa.select(POOLS.c.id).where(POOLS.c.name == "journeys"))
    conn.execute(
        sa.insert(CODES),
        [
            {
                "code": row.code,
                "pool_id": pool_id,
                "customer_id": row.customer_id,
                "key": row.key,
                "value": row.discount_percent,
                "uses": 0,
                "max_uses": 1,
                "source": row.source,
                "expires_at": row.expires_at,
                "created_at": row.at,
            }
            for row in rows
        ],
    )
    conn.execute(sa.delete(ENTRIES).where(ENTRIES.c.kind == "promo_code"))


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(CODES).where(CODES.c.key.is_not(None), CODES.c.customer_id.is_not(None))).all()
    if rows:
        conn.execute(
            sa.insert(ENTRIES),
            [
                {
                    "key": row.key,
                    "customer_id": row.customer_id,
                    "kind": "promo_code",
                    "points": None,
                    "code": row.code[:32],
                    "discount_percent": row.value,
                    "source": row.source or "promo_codes",
                    "expires_at": row.expires_at,
                    "at": row.created_at,
                }
                for row in rows
            ],
        )
    for table in ("promo_redemptions", "promo_codes", "promo_pools"):
        op.drop_table(table)  # with its indexes
