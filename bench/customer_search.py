"""Customer lookup and the customer list on a 40,000-customer shop (SQLite or PostgreSQL, this machine).

Workload: 40,000 customers (Ukrainian and English names, emails, phones for two in three) and 120,000 orders loaded
through the bulk importer (the engine hook folding the names on the way); then, each timed as the median of
`--repeat` runs: customers.search.find for a Cyrillic name part, a full name in another case, a phone typed three
ways, an email part and an external id; customers.search.resolve of a unique name; and the list's first page
(orders, spend, last order) sorted by spend. Baseline, in the same process: the old exact-match query (external id,
email, phone equal), the floor a lookup is measured against.

    python bench/customer_search.py [--customers 40000] [--repeat 7] [--store sqlite|postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.customers import search
from boomerang.customers.models import Customer
from boomerang.events import bulk
from boomerang.orders import per_customer
from pg_server import database, postgres

FIRST = "Андрій Олександр Дмитро Олена Оксана Ірина Марія Наталія Ivan Olga John Mary Peter Anna".split()
LAST = "Шевченко Коваленко Бондаренко Ткаченко Кравченко Мельник Smith Brown Taylor Wilson Petrenko".split()
NOW = datetime(2026, 12, 1)


def _load(ws, n: int) -> float:
    rng = np.random.default_rng(7)
    ids = [f"c{i:06d}" for i in range(n)]
    firsts, lasts = rng.choice(FIRST, n), rng.choice(LAST, n)
    customers = pd.DataFrame(
        {
            "external_id": ids,
            "first_name": firsts,
            "last_name": [f"{last}{i % 97}" if i % 5 else last for i, last in enumerate(lasts)],
            "email": [f"user{i}@example.com" for i in range(n)],
            "phone": [f"+38067{i:07d}" if i % 3 else None for i in range(n)],
        }
    )
    orders = pd.DataFrame(
        {
            "id": [f"o{i}" for i in range(3 * n)],
            "external_id": rng.choice(ids, 3 * n),
            "status": "paid",
            "placed_at": [NOW - timedelta(days=int(d)) for d in rng.integers(0, 700, 3 * n)],
            "total": rng.gamma(2.0, 30.0, 3 * n).round(2),
            "currency": "UAH",
        }
    )
    started = time.perf_counter()
    step = 10_000
    for i in range(0, n, step):
        part = customers.iloc[i : i + step]
        mine = orders[orders["external_id"].isin(set(part["external_id"]))]
        bulk.load(ws.uow, ws.log, bulk.Chunk(customers=part, orders=mine), source="bench", now=NOW)
    return time.perf_counter() - started


def _median(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    stop = None
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "ws")
        if args.store == "postgres":
            url, stop = postgres()
            settings = Settings(home=Path(tmp) / "ws", database_url=database(url, "search"))
        try:
            run(settings, args)
        finally:
            if stop is not None:
                stop()


def run(settings: Settings, args) -> None:
    ws = open_workspace(settings)
    loaded = _load(ws, args.customers)
    print(f"loaded {args.customers:,} customers and {3 * args.customers:,} orders in {loaded:.1f} s")
    with ws.uow.session() as s:

        def old_exact(q: str):
            return s.scalars(
                sa.select(Customer).where(
                    Customer.merged_into_id.is_(None),
                    sa.or_(Customer.external_id == q, Customer.email == q.lower(), Customer.phone == q),
                )
            ).all()

        base, _ = _median(lambda: old_exact("user123@example.com"), args.repeat)
        print(f"{'baseline: old exact match (email)':44} {base:8.1f} ms")
        for q in (
            "шевч",
            "ОЛЕНА ШЕВЧЕНКО",
            "+380 67 000 12 34",
            "(067) 000-1234",
            "380670001234",
            "user123@",
            "c012345",
        ):
            ms, (rows, total) = _median(lambda q=q: search.find(s, q, limit=50), args.repeat)
            print(f"find {q!r:39} {ms:8.1f} ms  {total:>6,} found  ({ms / base:5.1f}x baseline)")
        ms, found = _median(lambda: search.resolve(s, "(067) 000-1234"), args.repeat)
        print(f"{'resolve a phone as typed':44} {ms:8.1f} ms  -> {found.external_id}")
        ms, _ = _median(lambda: per_customer.listing(s, search.matching(s, ""), sort="spend", limit=50), args.repeat)
        print(f"{'list page 1 by spend (orders joined)':44} {ms:8.1f} ms")
        ms, _ = _median(
            lambda: per_customer.listing(s, search.matching(s, "шевч"), sort="created", limit=50), args.repeat
        )
        print(f"{'list page 1 of a name search':44} {ms:8.1f} ms")
        ms, ids = _median(
            lambda: per_customer.ordered_ids(s, search.matching(s, ""), sort="created", descending=True), args.repeat
        )
        print(f"{'every id in order (a stored-result filter)':44} {ms:8.1f} ms  {len(ids):,} ids")
    ws.engine.dispose()


if __name__ == "__main__":
    main()
