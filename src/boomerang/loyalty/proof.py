"""The ledger's proof: replay every entry in order and check that each transaction sums to zero, that no customer's
wallet, pending or held points ever went below zero, that the cached balances equal the replay, that each lot's
remaining points equal its entries, and that the held points equal the open holds. Reads only."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.loyalty.ledger import BALANCES, ENTRIES, LOTS, OWNED, TRANSACTIONS
from boomerang.loyalty.models import ACCOUNTS, LoyaltyHold


def check(session: Session) -> dict[str, Any]:
    """Replay every entry in order and prove the ledger right: each transaction sums to zero, no customer's wallet,
    pending or held points ever went below zero, the cached balances equal the replay, each lot's remaining points
    equal its entries and its state's account, and the held points equal the open holds. Reads only."""
    problems: list[dict[str, Any]] = []
    replayed: dict[tuple[str, str], int] = defaultdict(int)
    per_lot: dict[int, int] = defaultdict(int)
    transactions = entries = 0
    current, tx_sum, touched = None, 0, []

    def close() -> None:
        if current is None:
            return
        if tx_sum:
            problems.append({"problem": "unbalanced", "transaction_id": current, "sum": tx_sum})
        for key in touched:
            if key[1] in OWNED and replayed[key] < 0:
                problems.append(
                    {"problem": "negative", "transaction_id": current, "customer_id": key[0], "account": key[1]}
                )

    query = sa.select(
        ENTRIES.c.transaction_id, ENTRIES.c.customer_id, ENTRIES.c.account, ENTRIES.c.lot_id, ENTRIES.c.amount
    )
    for row in session.execute(
        query.order_by(ENTRIES.c.transaction_id, ENTRIES.c.id), execution_options={"yield_per": 10_000}
    ):
        if row.transaction_id != current:
            close()
            current, tx_sum, touched = row.transaction_id, 0, []
            transactions += 1
        entries += 1
        key = (row.customer_id, row.account)
        replayed[key] += row.amount
        touched.append(key)
        tx_sum += row.amount
        if row.lot_id is not None and row.account in ("wallet", "pending"):
            per_lot[row.lot_id] += row.amount
    close()
    transactions += session.scalar(
        sa.select(sa.func.count())
        .select_from(TRANSACTIONS)
        .where(~sa.exists().where(ENTRIES.c.transaction_id == TRANSACTIONS.c.id))
    )

    cached = {row.customer_id: row for row in session.execute(sa.select(BALANCES))}
    for customer_id, row in cached.items():
        for account in ACCOUNTS:
            if getattr(row, account) != replayed.get((customer_id, account), 0):
                problems.append(
                    {
                        "problem": "cache",
                        "customer_id": customer_id,
                        "account": account,
                        "cached": getattr(row, account),
                        "replayed": replayed.get((customer_id, account), 0),
                    }
                )
    for (customer_id, account), amount in replayed.items():
        if customer_id not in cached and amount:
            problems.append(
                {"problem": "cache", "customer_id": customer_id, "account": account, "cached": None, "replayed": amount}
            )

    by_state: dict[tuple[str, str], int] = defaultdict(int)
    lots = 0
    for lot in session.execute(
        sa.select(LOTS.c.id, LOTS.c.customer_id, LOTS.c.remaining, LOTS.c.state, LOTS.c.amount, LOTS.c.reversed)
    ):
        lots += 1
        if lot.remaining != per_lot.get(lot.id, 0) or not 0 <= lot.remaining <= lot.amount or lot.reversed > lot.amount:
            problems.append(
                {"problem": "lot", "lot_id": lot.id, "remaining": lot.remaining, "replayed": per_lot.get(lot.id, 0)}
            )
        by_state[(lot.customer_id, "pending" if lot.state == "pending" else "wallet")] += lot.remaining
    held = dict(
        session.execute(
            sa.select(LoyaltyHold.customer_id, sa.func.sum(LoyaltyHold.points))
            .where(LoyaltyHold.state == "held")
            .group_by(LoyaltyHold.customer_id)
        ).all()
    )
    for customer_id, row in cached.items():
        for account, expected in (
            ("wallet", by_state.get((customer_id, "wallet"), 0)),
            ("pending", by_state.get((customer_id, "pending"), 0)),
            ("held", int(held.get(customer_id) or 0)),
        ):
            if getattr(row, account) != expected:
                problems.append(
                    {
                        "problem": f"{account} vs lots and holds",
                        "customer_id": customer_id,
                        "cached": getattr(row, account),
                        "expected": expected,
                    }
                )
    return {
        "ok": not problems,
        "transactions": transactions,
        "entries": entries,
        "customers": len(cached),
        "lots": lots,
        "problems": problems[:100],
        "problem_count": len(problems),
    }
