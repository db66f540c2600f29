"""The double-entry points ledger: postings written through a `Book` that holds the customers' balance rows locked
(`proof.check` replays every entry and proves the cached balances and the lots right).

A `Posting` is one transaction: pairs of entries that move points from one account to another (so it sums to zero),
done once per external reference. The `Book` applies each posting to the locked balances and to the lots it touches
in memory, and `write` sends everything in a few statements: the caller's transaction commits it whole. Locking:
`SELECT ... FOR UPDATE` on PostgreSQL, in customer id order (no deadlocks); SQLite's transactions already begin with
the write lock (BEGIN IMMEDIATE, see db.py), so writers there take turns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.db import chunked, insert_ignore
from boomerang.loyalty.models import ACCOUNTS, LoyaltyBalance, LoyaltyLedgerEntry, LoyaltyLot, LoyaltyTransaction

BALANCES = LoyaltyBalance.__table__
LOTS = LoyaltyLot.__table__
TRANSACTIONS = LoyaltyTransaction.__table__
ENTRIES = LoyaltyLedgerEntry.__table__
OWNED = ("wallet", "pending", "held")  # what a customer has: never below zero
LOT_FIELDS = ("customer_id", "order_id", "amount", "remaining", "reversed", "state", "available_at", "expires_at")


@dataclass(eq=False)
class Lot:
    """A lot as the book holds it between reading and writing (`id` is None until its transaction is written)."""

    id: int | None
    customer_id: str
    order_id: str | None
    amount: int
    remaining: int
    reversed: int
    state: str
    available_at: datetime
    expires_at: datetime | None
    created_at: datetime

    @property
    def account(self) -> str:
        """Where its remaining points are: pending until it is spendable, then the wallet."""
        return "pending" if self.state == "pending" else "wallet"

    def expired_by(self, now: datetime) -> bool:
        return self.state == "expired" or (self.expires_at is not None and self.expires_at <= now)

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at, **{f: getattr(self, f) for f in LOT_FIELDS}}


@dataclass(eq=False)
class Posting:
    """One transaction to write: its entries are (customer, account, lot, amount), in pairs that sum to zero."""

    reference: str
    kind: str
    customer_id: str
    source: str
    at: datetime
    order_id: str | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    entries: list[tuple[str, str, Lot | int | None, int]] = field(default_factory=list)  # a lot or its id
    lot: Lot | None = None  # the lot this transaction makes
    id: int | None = None

    def move(
        self,
        amount: int,
        source: str,
        target: str,
        *,
        lot: Lot | int | None = None,
        owner: str | None = None,
        to: str = "",
    ) -> None:
        """`amount` points from the `source` account to the `target` account (of `owner`, or the posting's customer;
        the target's of `to` where it is another customer's: a merge). The lot they belong to may be given by id
        where neither account is one a lot's remaining points are in (held to redeemed)."""
        if amount <= 0:
            return
        owner = owner or self.customer_id
        self.entries.append((owner, source, lot, -amount))
        self.entries.append((to or owner, target, lot, amount))

    @property
    def points(self) -> int:
        """How many points it moved (the sum of its positive entries)."""
        return sum(amount for *_, amount in self.entries if amount > 0)


class Book:
    """The balances of the customers a transaction works on, locked, and what it posts against them."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now = session, now
        session.flush()  # what the caller's ORM objects hold is in the store before the book reads it
        self.conn = session.connection()  # Core statements, without the ORM's per-statement work
        self.balances: dict[str, dict[str, Any]] = {}
        self.postings: list[Posting] = []
        self._changed: set[str] = set()
        self._by_id: dict[int, Lot] = {}
        self._by_customer: dict[str, list[Lot]] = {}
        self._by_order: dict[str, Lot] = {}
        self._new_lots: list[Lot] = []
        self._dirty_lots: set[int] = set()
        self._references: set[str] = set()
        self.pg = session.get_bind().dialect.name == "postgresql"

    # -- balances ----------------------------------------------------------------------------------------------

    def lock(self, customer_ids: Iterable[str]) -> None:
        """Lock the balance rows of these customers (made at zero where missing) until the transaction ends."""
        wanted = sorted(set(customer_ids) - set(self.balances))
        if not wanted:
            return
        self._select_locked(wanted)
        missing = [c for c in wanted if c not in self.balances]
        if missing:  # first movements: their rows are made, then locked like the others
            fresh = [{"customer_id": c, "updated_at": self.now, **dict.fromkeys(ACCOUNTS, 0)} for c in missing]
            self.conn.execute(insert_ignore(self.session, BALANCES), fresh)
            self._select_locked(missing)

    def _select_locked(self, customer_ids: list[str]) -> None:
        for chunk in chunked(customer_ids):
            query = sa.select(BALANCES).where(BALANCES.c.customer_id.in_(chunk)).order_by(BALANCES.c.customer_id)
            for row in self.conn.execute(query.with_for_update() if self.pg else query):
                self.balances[row.customer_id] = dict(row._mapping)

    def balance(self, customer_id: str) -> dict[str, Any]:
        return self.balances[customer_id]

    def due(self, customer_id: str, when: datetime | None) -> None:
        """Something of the customer's may change by itself at `when`: the expiry round looks then."""
        if when is None:
            return
        row = self.balances[customer_id]
        if row["due_at"] is None or when < row["due_at"]:
            row["due_at"] = when
            self._changed.add(customer_id)

    def set_due(self, customer_id: str, when: datetime | None) -> None:
        self.balances[customer_id]["due_at"] = when
        self._changed.add(customer_id)

    # -- lots --------------------------------------------------------------------------------------------------

    def _keep(self, rows: Iterable[sa.Row]) -> list[Lot]:
        out = []
        for row in rows:
            lot = self._by_id.get(row.id)
            if lot is None:
                lot = Lot(**row._mapping)
                self._by_id[lot.id] = lot
                if lot.customer_id in self._by_customer:
                    self._by_customer[lot.customer_id].append(lot)
                if lot.order_id is not None:
                    self._by_order.setdefault(lot.order_id, lot)
            out.append(lot)
        return out

    def lots_of(self, customer_id: str) -> list[Lot]:
        """The customer's lots that still hold points or wait to be spendable (loaded once per book)."""
        self.preload([customer_id])
        return [lot for lot in self._by_customer[customer_id] if lot.state != "expired"]

    def preload(self, customer_ids: Iterable[str]) -> None:
        """Load the lots of many customers at once (what `lots_of` would load for each)."""
        wanted = sorted({c for c in customer_ids if c not in self._by_customer})
        if not wanted:  # `lots_of` asks for one customer at a time: most are loaded already
            return
        new_lots: dict[str, list[Lot]] = {}
        for lot in self._new_lots:
            new_lots.setdefault(lot.customer_id, []).append(lot)
        for chunk in chunked(wanted):
            rows = self.conn.execute(
                sa.select(LOTS).where(
                    LOTS.c.customer_id.in_(chunk),
                    LOTS.c.state != "expired",
                    sa.or_(LOTS.c.remaining > 0, LOTS.c.state == "pending"),
                )
            )
            loaded = self._keep(rows)
            for customer_id in chunk:
                self._by_customer[customer_id] = list(new_lots.get(customer_id, ()))
            for lot in loaded:
                if lot.customer_id in self._by_customer and lot not in self._by_customer[lot.customer_id]:
                    self._by_customer[lot.customer_id].append(lot)

    def lot(self, lot_id: int) -> Lot:
        return self.load_lots([lot_id])[0]

    def load_lots(self, lot_ids: list[int]) -> list[Lot]:
        """These lots (one query for those not loaded yet), in the order asked."""
        missing = [i for i in lot_ids if i not in self._by_id]
        for chunk in chunked(missing):
            self._keep(self.conn.execute(sa.select(LOTS).where(LOTS.c.id.in_(chunk))))
        return [self._by_id[i] for i in lot_ids]

    def order_lots(self, order_ids: Iterable[str]) -> dict[str, Lot]:
        """The lot each of these orders earned, where it earned one."""
        missing = [o for o in set(order_ids) if o not in self._by_order]
        for chunk in chunked(missing):
            self._keep(self.conn.execute(sa.select(LOTS).where(LOTS.c.order_id.in_(chunk))))
        return {o: self._by_order[o] for o in order_ids if o in self._by_order}

    def new_lot(self, lot: Lot) -> None:
        self._new_lots.append(lot)
        if lot.customer_id in self._by_customer:
            self._by_customer[lot.customer_id].append(lot)
        if lot.order_id is not None:
            self._by_order.setdefault(lot.order_id, lot)

    def touch(self, lot: Lot) -> None:
        """The lot changed (state, owner, what was reversed of it): write it back."""
        if lot.id is not None:
            self._dirty_lots.add(lot.id)

    def moved(self, lot: Lot, from_customer: str, to_customer: str) -> None:
        """The lot is another customer's now (a merge)."""
        lot.customer_id = to_customer
        if from_customer in self._by_customer and lot in self._by_customer[from_customer]:
            self._by_customer[from_customer].remove(lot)
        if to_customer in self._by_customer:
            self._by_customer[to_customer].append(lot)
        self.touch(lot)

    # -- postings ----------------------------------------------------------------------------------------------

    def taken(self, references: Iterable[str]) -> set[str]:
        """Which of these references the ledger has done already (or this book has posted)."""
        wanted = set(references)
        found = wanted & self._references
        for chunk in chunked(wanted - found):
            found.update(
                self.conn.scalars(sa.select(TRANSACTIONS.c.reference).where(TRANSACTIONS.c.reference.in_(chunk)))
            )
        return found

    def post(self, posting: Posting) -> Posting:
        """Apply a posting to the balances and lots in memory; `write` stores it."""
        if posting.reference in self._references:
            raise ValueError(f"reference {posting.reference!r} posted twice")
        if posting.lot is not None:
            self.new_lot(posting.lot)
        for customer_id, account, lot, amount in posting.entries:
            if customer_id not in self.balances:
                raise RuntimeError(f"customer {customer_id!r} is not locked in this book")
            self.balances[customer_id][account] += amount
            self._changed.add(customer_id)
            if account in ("wallet", "pending") and lot is not None:
                if not isinstance(lot, Lot):
                    raise TypeError("points into or out of a wallet or pending account need the lot itself")
                lot.remaining += amount
                self.touch(lot)
        self._references.add(posting.reference)
        self.postings.append(posting)
        return posting

    def write(self) -> None:
        """Store what was posted: transactions (their ids come back in order), new lots, entries, changed lots and
        balances. Flushes nothing else; the caller commits."""
        if self.postings:
            rows = [
                {
                    "reference": p.reference,
                    "kind": p.kind,
                    "customer_id": p.customer_id,
                    "order_id": p.order_id,
                    "source": p.source[:100],
                    "reason": p.reason,
                    "detail": p.detail,
                    "at": p.at,
                }
                for p in self.postings
            ]
            ids = self.conn.execute(
                sa.insert(TRANSACTIONS).returning(TRANSACTIONS.c.id, sort_by_parameter_order=True), rows
            ).scalars()
            for posting, tx_id in zip(self.postings, ids):
                posting.id = tx_id
                if posting.lot is not None:
                    posting.lot.id = tx_id
                    self._by_id[tx_id] = posting.lot
            new = [lot for lot in self._new_lots if lot.id is not None]
            if new:
                self.conn.execute(sa.insert(LOTS), [lot.row() for lot in new])
            entries = [
                {
                    "transaction_id": p.id,
                    "customer_id": c,
                    "account": account,
                    "lot_id": lot.id if isinstance(lot, Lot) else lot,
                    "amount": amount,
                }
                for p in self.postings
                for c, account, lot, amount in p.entries
            ]
            if entries:
                self.conn.execute(sa.insert(ENTRIES), entries)
            self._dirty_lots -= {lot.id for lot in new}
            self._new_lots = [lot for lot in self._new_lots if lot.id is None]
            self.postings = []
        if self._dirty_lots:
            update = sa.update(LOTS).where(LOTS.c.id == sa.bindparam("b_id"))
            self.conn.execute(
                update.values({f: sa.bindparam(f) for f in ("customer_id", "remaining", "reversed", "state")}),
                [
                    {
                        "b_id": i,
                        **{f: getattr(self._by_id[i], f) for f in ("customer_id", "remaining", "reversed", "state")},
                    }
                    for i in sorted(self._dirty_lots)
                ],
            )
            self._dirty_lots.clear()
        if self._changed:
            columns = (*ACCOUNTS, "due_at")
            update = sa.update(BALANCES).where(BALANCES.c.customer_id == sa.bindparam("b_customer"))
            self.conn.execute(
                update.values({c: sa.bindparam(c) for c in (*columns, "updated_at")}),
                [
                    {"b_customer": c, "updated_at": self.now, **{k: self.balances[c][k] for k in columns}}
                    for c in sorted(self._changed)
                ],
            )
            self._changed.clear()
