"""Promo codes: bulk generation (codes per minute) and validate + hold + confirm per second, on SQLite and
PostgreSQL.

  - generate   `--codes` (1,000,000) codes into one pool with `codes.generate`, one transaction, as
               `boomerang codes generate` runs it: secrets bytes -> alphabet with numpy, 50,000-row
               executemany ON CONFLICT DO NOTHING, then a count to make up collisions;
  - baseline   in the same run and store: the same number of `secrets.token_hex(6)` strings inserted with a plain
               executemany (no alphabet, no ON CONFLICT, no count) into the same table;
  - redeem     `--redeems` (3,000) codes, each validated, held for an order and confirmed, three transactions
               as three API calls would be; one client. p50/p99 of the three together.

    python bench/loyalty_codes.py [--store sqlite|postgres|both] [--codes 1000000] [--redeems 3000]
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.customers.models import Customer
from boomerang.db import executemany
from boomerang.loyalty import codes, codes_redeem
from pg_server import database, postgres

NOW = datetime(2026, 3, 10, 12, 0)
PLAIN = sa.insert(codes.CODES)


def bench(label: str, settings: Settings, args) -> None:
    ws = open_workspace(settings)
    with ws.uow.session() as s:
        s.add(Customer(id="cus_bench", attributes={}, created_at=NOW, updated_at=NOW))
        codes.create_pool(s, {"name": "bench", "value": 10, "prefix": "B-"}, now=NOW)
        codes.create_pool(s, {"name": "baseline", "value": 10}, now=NOW)
    started = time.perf_counter()
    with ws.uow.session() as s:
        codes.generate(s, "bench", args.codes, now=NOW)
    ours = time.perf_counter() - started
    with ws.uow.session() as s:
        pool_id = codes.pool(s, "baseline").id
    started = time.perf_counter()
    with ws.uow.session() as s:
        for start in range(0, args.codes, codes.CHUNK):
            rows = [
                {"code": secrets.token_hex(6), "pool_id": pool_id, "uses": 0, "max_uses": 1, "created_at": NOW}
                for _ in range(min(codes.CHUNK, args.codes - start))
            ]
            executemany(s, PLAIN, rows)
    base = time.perf_counter() - started
    print(
        f"{label}: generate {args.codes:,} codes in {ours:.1f} s = {args.codes / ours * 60:,.0f} codes/min; "
        f"baseline token_hex + plain executemany {base:.1f} s = {args.codes / base * 60:,.0f} codes/min",
        flush=True,
    )
    with ws.uow.session() as s:
        picked = s.scalars(
            sa.select(codes.CODES.c.code).where(codes.CODES.c.pool_id == codes.pool(s, "bench").id).limit(args.redeems)
        ).all()
    latencies = []
    started = time.perf_counter()
    for i, code in enumerate(picked):
        t = time.perf_counter()
        with ws.uow.session() as s:
            codes_redeem.validate(s, code, "cus_bench", 100, now=NOW)
        with ws.uow.session() as s:
            codes_redeem.hold(s, code, "cus_bench", f"bench-{i}", 100, now=NOW)
        with ws.uow.session() as s:
            codes_redeem.confirm(s, f"bench-{i}", now=NOW)
        latencies.append(time.perf_counter() - t)
    spent = time.perf_counter() - started
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000
    print(
        f"{label}: validate+hold+confirm {len(picked):,} codes: {len(picked) / spent:,.0f} per second "
        f"(p50 {p50:.1f} ms, p99 {p99:.1f} ms for the three)",
        flush=True,
    )
    with ws.uow.session() as s:
        shown = codes.show_pool(s, "bench", now=NOW)
    assert shown["codes"] == args.codes and shown["uses"] == len(picked), shown
    ws.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--redeems", type=int, default=3000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores (the store's server shares the machine)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.store in ("sqlite", "both"):
            bench("SQLite", Settings(home=Path(tmp) / "sqlite"), args)
        if args.store == "sqlite":
            return
        url, stop = postgres()
        try:
            bench("PostgreSQL", Settings(home=Path(tmp) / "pg", database_url=database(url, "codes")), args)
        finally:
            stop()


if __name__ == "__main__":
    main()
