"""loyalty ledger: transactions, entries, lots, balances and checkout holds; the stand-in's points moved into lots

Every points row of loyalty_entries becomes a transaction under its own key (so a journey that runs again still
finds its award done): an award makes a lot spendable from the row's time and never expiring (the stand-in promised
no expiry), a negative row (an erasure's) takes from the customer's lots, oldest first. The promo codes stay in
loyalty_entries. Downgrading gives each customer one points row with what they have (wallet, pending and held).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-09 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACCOUNTS = ("wallet", "pending", "held", "earned", "redeemed", "expired", "adjusted")


def upgrade() -> None:
    op.create_table(
        "loyalty_balances",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        *(sa.Column(account, BigInt, nullable=False) for account in ACCOUNTS),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_loyalty_balances")),
    )
    op.create_index(op.f("ix_loyalty_balances_due_at"), "loyalty_balances", ["due_at"], unique=False)
    op.create_table(
        "loyalty_holds",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("transaction_id", BigInt, nullable=False),
        sa.Column("points", BigInt, nullable=False),
        sa.Column("drawn", sa.JSON(), nullable=False),
        sa.Column("total", sa.Numeric(precision=18, scale=4, asdecimal=False), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("returned", BigInt, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_loyalty_holds")),
    )
    op.create_index(op.f("ix_loyalty_holds_customer_id"), "loyalty_holds", ["customer_id"], unique=False)
    op.create_index(op.f("ix_loyalty_holds_expires_at"), "loyalty_holds", ["expires_at"], unique=False)
    op.create_table(
        "loyalty_lots",
        sa.Column("id", BigInt, autoincrement=False, nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("amount", BigInt, nullable=False),
        sa.Column("remaining", BigInt, nullable=False),
        sa.Column("reversed", BigInt, nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("available_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_lots")),
    )
    op.create_index(op.f("ix_loyalty_lots_customer_id"), "loyalty_lots", ["customer_id"], unique=False)
    op.create_index(op.f("ix_loyalty_lots_expires_at"), "loyalty_lots", ["expires_at"], unique=False)
    op.create_index(op.f("ix_loyalty_lots_order_id"), "loyalty_lots", ["order_id"], unique=False)
    op.create_table(
        "loyalty_transactions",
        sa.Column("id", BigInt, autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_transactions")),
        sa.UniqueConstraint("reference", name=op.f("uq_loyalty_transactions_reference")),
    )
    op.create_index(op.f("ix_loyalty_transactions_customer_id"), "loyalty_transactions", ["customer_id"], unique=False)
    op.create_index(op.f("ix_loyalty_transactions_order_id"), "loyalty_transactions", ["order_id"], unique=False)
    op.create_table(
        "loyalty_ledger",
        sa.Column("id", BigInt, autoincrement=True, nullable=False),
        sa.Column("transaction_id", BigInt, nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("account", sa.String(length=16), nullable=False),
        sa.Column("lot_id", BigInt, nullable=True),
        sa.Column("amount", BigInt, nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["loyalty_transactions.id"],
            name=op.f("fk_loyalty_ledger_transaction_id_loyalty_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_ledger")),
    )
    op.create_index(op.f("ix_loyalty_ledger_customer_id"), "loyalty_ledger", ["customer_id"], unique=False)
    op.create_index(op.f("ix_loyalty_ledger_transaction_id"), "loyalty_ledger", ["transaction_id"], unique=False)
    _move_points()


# -- the stand-in's points into the ledger ------------------------------------------------------------------------

ENTRIES = sa.table(
    "loyalty_entries",
    sa.column("key", sa.String),
    sa.column("customer_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("points", sa.Integer),
    sa.column("source", sa.String),
    sa.column("at", sa.DateTime),
)
TRANSACTIONS = sa.table(
    "loyalty_transactions",
    *(sa.column(c) for c in ("id", "reference", "kind", "customer_id", "order_id", "source", "reason")),
    sa.column("detail", sa.JSON),
    sa.column("at", sa.DateTime),
)
LEDGER = sa.table(
    "loyalty_ledger", *(sa.column(c) for c in ("transaction_id", "customer_id", "account", "lot_id", "amount"))
)
LOTS = sa.table(
    "loyalty_lots",
    *(sa.column(c) for c in ("id", "customer_id", "order_id", "amount", "remaining", "reversed", "state")),
    *(sa.column(c, sa.DateTime) for c in ("available_at", "expires_at", "created_at")),
)
BALANCES = sa.table(
    "loyalty_balances",
    sa.column("customer_id"),
    sa.column("due_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime),
    *(sa.column(a, sa.BigInteger) for a in ACCOUNTS),
)


def _move_points() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(ENTRIES)
        .where(ENTRIES.c.kind == "points")
        .order_by(ENTRIES.c.customer_id, ENTRIES.c.at, ENTRIES.c.key)
    ).all()
    if not rows:
        return
    transactions, entries, lots, balances = [], [], {}, {}
    for tx_id, row in enumerate(rows, start=1):
        balance = balances.setdefault(row.customer_id, dict.fromkeys(ACCOUNTS, 0))
        mine = lots.setdefault(row.customer_id, [])
        points = int(row.points or 0)
        kind = "award" if points >= 0 else "adjust"
        transactions.append(
            {
                "id": tx_id,
                "reference": row.key,
                "kind": kind,
                "customer_id": row.customer_id,
                "order_id": None,
                "source": row.source,
                "reason": None if points >= 0 else "migrated from the stand-in",
                "at": row.at,
                "detail": {"migrated": True},
            }
        )
        moves = []
        if points > 0:
            mine.append(
                {
                    "id": tx_id,
                    "customer_id": row.customer_id,
                    "order_id": None,
                    "amount": points,
                    "remaining": points,
                    "reversed": 0,
                    "state": "available",
                    "available_at": row.at,
                    "expires_at": None,
                    "created_at": row.at,
                }
            )
            moves.append(("earned", "wallet", tx_id, points))
        else:
            left = -points
            for lot in mine:  # oldest first; never below zero
                take = min(left, lot["remaining"])
                if take:
                    lot["remaining"] -= take
                    left -= take
                    moves.append(("wallet", "adjusted", lot["id"], take))
        for source, target, lot_id, amount in moves:
            entries += [
                {
                    "transaction_id": tx_id,
                    "customer_id": row.customer_id,
                    "account": source,
                    "lot_id": lot_id,
                    "amount": -amount,
                },
                {
                    "transaction_id": tx_id,
                    "customer_id": row.customer_id,
                    "account": target,
                    "lot_id": lot_id,
                    "amount": amount,
                },
            ]
            balance[source] -= amount
            balance[target] += amount
    now = max(row.at for row in rows)
    conn.execute(sa.insert(TRANSACTIONS), transactions)
    if entries:
        conn.execute(sa.insert(LEDGER), entries)
    every_lot = [lot for mine in lots.values() for lot in mine]
    if every_lot:
        conn.execute(sa.insert(LOTS), every_lot)
    conn.execute(
        sa.insert(BALANCES),
        [{"customer_id": cid, "due_at": None, "updated_at": now, **b} for cid, b in balances.items()],
    )
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('loyalty_transactions', 'id'), :n)"), {"n": len(rows)}
        )
    conn.execute(sa.delete(ENTRIES).where(ENTRIES.c.kind == "points"))


def downgrade() -> None:
    conn = op.get_bind()
    kept = conn.execute(
        sa.select(
            BALANCES.c.customer_id, BALANCES.c.wallet + BALANCES.c.pending + BALANCES.c.held, BALANCES.c.updated_at
        )
    ).all()
    rows = [
        {
            "key": f"ledger:{cid}",
            "customer_id": cid,
            "kind": "points",
            "points": int(points),
            "source": "ledger",
            "at": at,
        }
        for cid, points, at in kept
        if points
    ]
    if rows:
        conn.execute(sa.insert(ENTRIES), rows)
    for table in ("loyalty_ledger", "loyalty_transactions", "loyalty_lots", "loyalty_holds", "loyalty_balances"):
        op.drop_table(table)  # with its indexes
