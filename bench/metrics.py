"""Every metric on a large simulated event log, on DuckDB through Ibis, against the same metrics in pandas.

Workload (defaults): 1,000,000 customers and 20,000,000 events over two years, generated inside
DuckDB (seeded): product and page views with categories, adds to cart, checkouts, about a million
Order Completed with revenue (customers skewed: most buy once, a few often), cancellations and
refunds of real orders, NPS answers. The engine opens the file read-only, as the product does.
Baseline, in this same process: the same metrics written in vectorised pandas, from frames of
the rows they need (loaded from DuckDB with the JSON already extracted; the load is timed apart).
Each pandas function computes one period; like the engine, it is run for the whole period and for
each month of the series, and every value is checked against the engine's.

    python bench/metrics.py [--customers 1000000] [--events 20000000] [--dir /dev/shm] [--only NAME] [--skip-pandas]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd

from boomerang.metrics import service
from boomerang.metrics.base import REGISTRY, Data, period_and_series

START, DAYS = "2023-01-01", 730
PERIOD = {"date_from": date(2023, 1, 1), "date_to": date(2024, 12, 30), "interval": "month"}
WINDOW = {"window_days": 90}


def generate(path: Path, customers: int, events: int, seed: float = 0.42) -> None:
    """The event log, in SQL: one pass for the bulk of events, then cancellations and refunds of real orders."""
    con = duckdb.connect(str(path))
    con.execute(f"SELECT setseed({seed})")
    con.execute("""
        CREATE TABLE events (message_id VARCHAR PRIMARY KEY, type VARCHAR NOT NULL, event VARCHAR NOT NULL,
            customer_id VARCHAR, anonymous_id VARCHAR, user_id VARCHAR, timestamp TIMESTAMP NOT NULL,
            received_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL, properties JSON, context JSON)""")
    categories = "['Coffee > Beans','Coffee > Ground','Tea > Green','Tea > Black','Home > Mugs','Cosmetics > Care']"
    con.execute(f"""
        INSERT INTO events
        SELECT 'e' || i, 'track', kind, 'c' || cust, NULL, 'c' || cust,
               TIMESTAMP '{START}' + to_seconds(CAST(floor(r_time * {DAYS} * 86400) AS BIGINT)),
               TIMESTAMP '{START}', 'bench',
               CASE kind
                 WHEN 'Order Completed' THEN json_object('order_id', 'o' || i, 'revenue', round(10 + 90 * r_val, 2),
                                                         'total', round(15 + 90 * r_val, 2))
                 WHEN 'NPS Survey Answered' THEN json_object('score', CAST(floor(r_val * 11) AS INTEGER))
                 ELSE json_object('sku', 'S' || CAST(floor(r_val * 500) AS INTEGER),
                                  'category', {categories}[1 + CAST(floor(r_val * 6) AS INTEGER)])
               END,
               '{{}}'
        FROM (
          SELECT i, random() AS r_time, random() AS r_val,
                 CAST(floor({customers} * pow(random(), 1.6)) AS BIGINT) AS cust,
                 CASE WHEN k < 0.55 THEN 'Product Viewed' WHEN k < 0.70 THEN 'Page Viewed'
                      WHEN k < 0.82 THEN 'Product Added' WHEN k < 0.89 THEN 'Checkout Started'
                      WHEN k < 0.945 THEN 'Order Completed' WHEN k < 0.95 THEN 'NPS Survey Answered'
                      ELSE 'Cart Viewed' END AS kind
          FROM (SELECT range AS i, random() AS k FROM range({events}))
        )""")
    for event, share, extra in (("Order Cancelled", 0.02, "1"), ("Order Refunded", 0.03, "2")):
        con.execute(f"""
            INSERT INTO events
            SELECT message_id || '-{extra}', 'track', '{event}', customer_id, NULL, user_id,
                   timestamp + INTERVAL 2 DAY, received_at, 'bench',
                   json_object('order_id', properties->>'order_id', 'total', CAST(properties->>'revenue' AS DOUBLE)),
                   '{{}}'
            FROM events WHERE event = 'Order Completed' AND random() < {share}""")
    con.close()


def consents(customers: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = customers // 2
    granted = pd.Timestamp(START) + pd.to_timedelta(rng.integers(0, DAYS, n), unit="D")
    ids = "c" + pd.Series(rng.choice(customers, n, replace=False)).astype(str)
    gone = rng.random(n) < 0.3
    withdrawn = granted + pd.to_timedelta(rng.integers(1, 400, n), unit="D")
    rows = pd.DataFrame({"customer_id": ids, "channel": rng.choice(["email", "sms", "telegram"], n), "granted": True,
                         "at": granted})
    back = rows[gone].assign(granted=False, at=withdrawn[gone])
    return pd.concat([rows, back], ignore_index=True)


def load_frames(path: Path) -> dict[str, pd.DataFrame]:
    """What the pandas versions start from: the rows they need, JSON extracted by DuckDB."""
    con = duckdb.connect(str(path), read_only=True)
    q = lambda sql: con.execute(sql).df()  # noqa: E731
    frames = {
        "orders": q("SELECT customer_id, properties->>'order_id' AS order_id, timestamp AS ts, "
                    "coalesce(CAST(properties->>'revenue' AS DOUBLE), CAST(properties->>'total' AS DOUBLE), 0) AS value "
                    "FROM events WHERE event = 'Order Completed' AND customer_id IS NOT NULL"),
        "cancelled": q("SELECT DISTINCT properties->>'order_id' AS order_id FROM events WHERE event = 'Order Cancelled'"),
        "refunds": q("SELECT customer_id, timestamp AS ts, coalesce(CAST(properties->>'total' AS DOUBLE), 0) AS value "
                     "FROM events WHERE event = 'Order Refunded' AND customer_id IS NOT NULL"),
        "nps": q("SELECT timestamp AS ts, CAST(properties->>'score' AS DOUBLE) AS score FROM events "
                 "WHERE event = 'NPS Survey Answered'"),
        "steps": q("SELECT customer_id, event, timestamp AS ts, properties->>'category' AS category FROM events "
                   "WHERE event IN ('Product Viewed','Product Added','Checkout Started','Order Completed') "
                   "AND customer_id IS NOT NULL"),
    }
    con.close()
    return frames


# ---- the pandas versions (whole period [start, end)) ----

def _purchases(f, end):
    p = f["orders"][~f["orders"]["order_id"].isin(f["cancelled"]["order_id"])]
    return p[p["ts"] < end]


def pd_order_kpis(f, start, end):
    p = _purchases(f, end)
    p = p[p["ts"] >= start]
    per = p.groupby("customer_id").agg(orders=("value", "size"), revenue=("value", "sum"))
    return {"average_order_value": per["revenue"].sum() / per["orders"].sum(),
            "purchase_frequency": per["orders"].sum() / len(per),
            "repeat_purchase_rate": (per["orders"] >= 2).mean()}


def pd_revenue_split(f, start, end):
    p = _purchases(f, end)
    first = p.groupby("customer_id")["ts"].transform("min")
    inside = p[p["ts"] >= start]
    new = inside["value"][first[inside.index] >= start].sum()
    return {"revenue_new_vs_returning": (inside["value"].sum() - new) / inside["value"].sum()}


def pd_ltv(f, start, end):
    p = _purchases(f, end)
    refunds = f["refunds"][f["refunds"]["ts"] < end]["value"].sum()
    return {"historical_ltv": (p["value"].sum() - refunds) / p["customer_id"].nunique()}


def pd_nps(f, start, end):
    s = f["nps"][(f["nps"]["ts"] >= start) & (f["nps"]["ts"] < end)]["score"]
    return {"nps": 100 * ((s >= 9).sum() - (s <= 6).sum()) / len(s)}


def pd_activity(f, start, end, window=90):
    days = _purchases(f, end)[["customer_id"]].assign(day=_purchases(f, end)["ts"].dt.floor("D")).drop_duplicates()
    w = pd.Timedelta(days=window)
    at_start = set(days[(days["day"] >= start - w) & (days["day"] < start)]["customer_id"])
    at_end = set(days[(days["day"] >= end - w) & (days["day"] < end)]["customer_id"])
    gained = at_end - at_start
    return {"retention_rate": (len(at_end) - len(gained)) / len(at_start) if at_start else None,
            "churn_rate": len(at_start - at_end) / len(at_start) if at_start else None}


def pd_cohorts(f, start, end):
    p = _purchases(f, end)
    first = p.groupby("customer_id")["ts"].min()
    first = first[first >= start]
    rows = p[p["customer_id"].isin(first.index)]
    month = rows["ts"].dt.year * 12 + rows["ts"].dt.month
    first_month = rows["customer_id"].map(first.dt.year * 12 + first.dt.month)
    offset = month - first_month
    sizes = first.groupby(first.dt.to_period("M")).size()
    buyers = rows[offset == 1].groupby(first_month[offset == 1])["customer_id"].nunique().sum()
    return {"cohorts": buyers / sizes[sizes.index < sizes.index.max()].sum()}


def pd_rfm(f, start, end):
    p = _purchases(f, end)
    per = p.groupby("customer_id").agg(last=("ts", "max"), frequency=("value", "size"), monetary=("value", "sum"))
    recency = (end - per["last"]).dt.total_seconds() / 86400
    score = lambda s, asc: np.minimum(np.floor(5 * (s.rank(method="min", ascending=asc) - 1) / (len(s) - 1)) + 1, 5)  # noqa: E731
    r, fr = score(recency, False), score(per["frequency"], True)
    champions = ((r == 5) & fr.isin([4, 5])).sum()
    return {"rfm": len(per), "rfm_champions": int(champions)}


def pd_funnel(f, start, end, hours=168):
    s = f["steps"]
    names = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]
    first = s[(s["event"] == names[0]) & (s["ts"] >= start) & (s["ts"] < end)].groupby("customer_id")["ts"].min()
    reached = pd.DataFrame({"start": first, "at": first})
    counts = [len(reached)]
    for name in names[1:]:
        later = s[s["event"] == name][["customer_id", "ts"]]
        j = later.merge(reached, left_on="customer_id", right_index=True)
        j = j[(j["ts"] >= j["at"]) & (j["ts"] <= j["start"] + pd.Timedelta(hours=hours))]
        at = j.groupby("customer_id")["ts"].min()
        reached = pd.DataFrame({"start": reached.loc[at.index, "start"], "at": at})
        counts.append(len(reached))
    return {"funnel": counts[-1] / counts[0]}


WHOLE_ONLY = {"cohorts", "rfm"}  # answers about the whole period, without a series
PANDAS = {
    "average_order_value": pd_order_kpis, "purchase_frequency": pd_order_kpis, "repeat_purchase_rate": pd_order_kpis,
    "revenue_new_vs_returning": pd_revenue_split, "historical_ltv": pd_ltv, "nps": pd_nps,
    "retention_rate": pd_activity, "churn_rate": pd_activity, "cohorts": pd_cohorts, "rfm": pd_rfm, "funnel": pd_funnel,
}


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--only", action="append", default=None)
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()
    names = args.only or sorted(REGISTRY)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "events.duckdb"
        started = time.perf_counter()
        generate(path, args.customers, args.events)
        generated = time.perf_counter() - started
        con = ibis.duckdb.connect(str(path), read_only=True)
        data = Data(events=con.table("events"), consents=ibis.memtable(consents(args.customers, 7)))
        total = con.table("events").count().execute()
        print(f"machine: {__import__('os').cpu_count()} cores, python {sys.version.split()[0]}, duckdb {duckdb.__version__}")
        print(f"generated {total:,} events for {args.customers:,} customers in {generated:.1f} s")
        start, end = pd.Timestamp(PERIOD["date_from"]), pd.Timestamp(PERIOD["date_to"]) + pd.Timedelta(days=1)
        periods = period_and_series(start, end, "month")
        if not args.skip_pandas:
            started = time.perf_counter()
            frames = load_frames(path)
            print(f"pandas frames loaded from DuckDB in {time.perf_counter() - started:.1f} s "
                  f"({sum(len(f) for f in frames.values()):,} rows; not counted below)")
        print(f"{'metric':28} {'duckdb s':>9} {'pandas s':>9} {'ratio':>7}  check")
        sums = [0.0, 0.0]
        for name in names:
            m = REGISTRY[name]
            params = {**PERIOD, **(WINDOW if "window_days" in m.query_type.model_fields else {})}
            query = service.parse(m, params)
            started = time.perf_counter()
            result = m.calculate(data, query)
            engine = time.perf_counter() - started
            line = f"{name:28} {engine:9.2f}"
            if not args.skip_pandas and name in PANDAS:
                con.disconnect()  # the engine's file handle is not needed by pandas; keeps memory comparable
                started = time.perf_counter()
                buckets = periods.iloc[:1] if name in WHOLE_ONLY else periods
                expected = [PANDAS[name](frames, b.bucket, b.bucket_end)[name] for b in buckets.itertuples()]
                baseline = time.perf_counter() - started
                con = ibis.duckdb.connect(str(path), read_only=True)
                data = Data(events=con.table("events"), consents=data.consents)
                series = [] if name in WHOLE_ONLY else result["series"]
                got = [result["value"], *(row["steps"][-1]["conversion"] if "steps" in row else row["value"]
                                          for row in series)]
                ok = len(got) == len(expected) and all(_close(a, b) for a, b in zip(got, expected))
                sums[0] += engine
                sums[1] += baseline
                check = "same" if ok else f"MISMATCH {got[:4]} != {expected[:4]}"
                line += f" {baseline:9.2f} {baseline / engine:7.2f}  {check}"
            else:
                line += f" {'-':>9} {'-':>7}  (no pandas version)" if not args.skip_pandas else ""
            print(line)
        for name in ("rfm", "lifecycle"):
            if name in names:
                m = REGISTRY[name]
                started = time.perf_counter()
                frame = m.per_customer(data, service.parse(m, {**PERIOD, **(WINDOW if name == "lifecycle" else {})}))
                print(f"{name + ' per customer':28} {time.perf_counter() - started:9.2f}  ({len(frame):,} rows)")
        if sums[0]:
            print(f"{'total (metrics with both)':28} {sums[0]:9.2f} {sums[1]:9.2f} {sums[1] / sums[0]:7.2f}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
