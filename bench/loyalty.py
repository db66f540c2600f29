"""Loyalty checkout: estimates and hold+confirm pairs per second with concurrent clients, p50/p99 latency.

Workload (defaults): 2,000 customers with 5,000 points each; `--clients` client processes (4) call the services
the API routes call, each in its own transaction as a request would:
  - estimate   an order of 20-500 for a random customer (reads only);
  - hold+confirm  a hold of 1-20 points for a new order of a random customer, then its confirmation (two
                  transactions; the latency is the pair's);
  - one balance  hold+confirm all against a single customer with 2,000 points, far fewer than the clients ask
                  for: the row lock decides, and zero overspend is asserted (points confirmed <= the balance, the
                  wallet = balance - confirmed, `check` proves the ledger).
Baseline in the same run, on the same store and clients: the smallest locked read-modify-write transaction
through SQLAlchemy (SELECT ... FOR UPDATE of one balance row, then UPDATE it; on SQLite the write lock), the
floor a ledger transaction stands on. After all runs the whole ledger is replayed by `check`.

    python bench/loyalty.py [--store sqlite|postgres|both] [--clients 4] [--customers 2000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import tempfile
import time
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from boomerang.bootstrap import Workspace, open_workspace
from boomerang.config import Settings
from boomerang.core.errors import Conflict
from boomerang.customers.models import Customer
from boomerang.loyalty import checkout, service
from boomerang.loyalty.models import LoyaltyBalance, LoyaltyHold
from pg_server import database, postgres

NOW = datetime(2026, 3, 10, 12, 0)
POINTS = 5000
HOT_POINTS = 2000
HOT = "cus_hot"


def prepare(settings: Settings, customers: int) -> None:
    ws = open_workspace(settings)
    ids = [f"cus_{i:07d}" for i in range(customers)] + [HOT]
    with ws.uow.session() as s:
        s.execute(sa.insert(Customer), [{"id": c, "attributes": {}, "created_at": NOW, "updated_at": NOW} for c in ids])
    with ws.uow.session() as s:
        rows = [service.points_row(f"seed:{c}", c, POINTS, source="bench", now=NOW) for c in ids[:-1]]
        service.write(s, rows + [service.points_row("seed:hot", HOT, HOT_POINTS, source="bench", now=NOW)])
    ws.engine.dispose()


def client(settings: Settings, kind: str, index: int, customers: int, seconds: float, queue) -> None:
    """One client process: `kind` operations for `seconds`; puts (latencies, refused) on the queue."""
    ws = Workspace(settings)
    programme, rng = settings.loyalty, random.Random(index)
    latencies, refused, n = [], 0, 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        n += 1
        who = HOT if kind == "one balance" else f"cus_{rng.randrange(customers):07d}"
        started = time.perf_counter()
        try:
            if kind == "estimate":
                with ws.uow.session() as s:
                    checkout.estimate(s, who, rng.uniform(20, 500), settings=programme, now=NOW)
            elif kind == "baseline":
                with ws.uow.session() as s:
                    row = s.execute(
                        sa.select(LoyaltyBalance.wallet).where(LoyaltyBalance.customer_id == who).with_for_update()
                    ).one()
                    s.execute(sa.update(LoyaltyBalance).where(LoyaltyBalance.customer_id == who).values(wallet=row[0]))
            else:
                order = f"{kind[:3]}-{index}-{n}"
                with ws.uow.session() as s:
                    checkout.hold(s, who, order, rng.randint(1, 20), 1000.0, settings=programme, now=NOW)
                with ws.uow.session() as s:
                    checkout.confirm(s, order, now=NOW)
        except Conflict:
            refused += 1
        latencies.append(time.perf_counter() - started)
    ws.engine.dispose()
    queue.put((latencies, refused))


def run(label: str, settings: Settings, kind: str, clients: int, customers: int, seconds: float) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=client, args=(settings, kind, i, customers, seconds, queue)) for i in range(clients)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for r, _ in results for x in r)
    refused = sum(r for _, r in results)
    count = len(latencies)
    p50, p99 = latencies[count // 2], latencies[min(count - 1, int(count * 0.99))]
    print(
        f"{label:10} {kind:14} {count / seconds:8,.0f}/s  p50 {p50 * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"
        f"  ({count:,} in {seconds:g} s{f', {refused:,} refused' if refused else ''})",
        flush=True,
    )


def overspend(settings: Settings) -> str:
    """The hot customer's points: confirmed never above what they had; the whole ledger replayed."""
    ws = open_workspace(settings)
    with ws.uow.session() as s:
        confirmed = s.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LoyaltyHold.points), 0)).where(
                LoyaltyHold.customer_id == HOT, LoyaltyHold.state == "confirmed"
            )
        )
        wallet = service.wallets(s, [HOT], now=NOW)[HOT]
        proof = service.check(s)
    ws.engine.dispose()
    assert confirmed <= HOT_POINTS, f"OVERSPENT: {confirmed} confirmed of {HOT_POINTS}"
    assert wallet.points == HOT_POINTS - confirmed and wallet.held == 0, (wallet, confirmed)
    assert proof["ok"], proof["problems"]
    return (
        f"zero overspend: {confirmed:,} of {HOT_POINTS:,} points confirmed on one balance, {wallet.points:,} left; "
        f"check ok over {proof['transactions']:,} transactions, {proof['entries']:,} entries"
    )


def bench(label: str, settings: Settings, args) -> None:
    prepare(settings, args.customers)
    for kind in ("baseline", "estimate", "hold+confirm", "one balance"):
        run(label, settings, kind, args.clients, args.customers, args.seconds)
    print(f"{label:10} {overspend(settings)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=8.0, help="per run")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores; {args.customers:,} customers x {POINTS:,} points, {args.clients} clients, "
        f"{args.seconds:g} s per run (the store's server shares the machine)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.store in ("sqlite", "both"):
            bench("SQLite", Settings(home=Path(tmp) / "sqlite"), args)
        if args.store == "sqlite":
            return
        url, stop = postgres()
        try:
            bench("PostgreSQL", Settings(home=Path(tmp) / "pg", database_url=database(url, "loyalty")), args)
        finally:
            stop()


if __name__ == "__main__":
    main()
