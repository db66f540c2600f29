"""Every registered metric on a large simulated shop, on DuckDB through Ibis, against the same metrics in pandas.

Workload (defaults): 1,000,000 customers and exactly 20,000,000 events over two years (2023-2024) in
a DuckDB file with the event log's exact schema (message_id primary key, properties and context JSON),
generated inside DuckDB from range() and hash() with a seed: browsing sessions (Page Viewed, Product
Viewed with a `category` like "Coffee > Beans", Product Added, Cart Viewed, Checkout Started; some from
anonymous visitors), and for every order its path to purchase (views, add, checkout) then Order
Completed with order_id, revenue, total and products. About 62% of customers ever buy; most buy once,
a loyal few often (geometric number of orders per customer, three loyalty tiers), repeat purchases
spaced by exponential gaps around a per-customer rhythm of 10 to 150 days. 3% of orders are cancelled,
5% refunded (fully or partly), 6% answered with an NPS score 0-10; a consents table (email, SMS,
Telegram grants, withdrawals, re-grants) is generated beside it. The generation runs in a child
process (its time and peak memory are reported apart), and the metrics open the file read-only as
the product does: ibis.duckdb.connect(path, read_only=True), Data(events=con.table("events")).

Measured: every metric of boomerang.metrics.base.REGISTRY over 2024 with a monthly series (window
metrics with an explicit 90-day window), rfm and lifecycle per_customer, and the default inactivity
window (the 90th percentile of purchase gaps) on its own, all on one Data: its purchases, refunds and
NPS answers are extracted from the log's JSON once (timed on their own line and counted in the engine's total),
then every metric reads them. Beside it, as the API, the CLI and the dashboard answer: the metrics that read the log's
daily rollup (metrics.rolled: the order KPIs, retention, churn, cohorts; the funnel's first steps) from that rollup,
counted once into the file as migration e0003 fills an existing log (in a child process, timed apart, not counted),
answers checked equal. A metric of the API alone over the events pays the extraction too: its line says how long.
Baseline, in this same process: the same metrics in vectorised pandas (groupby, merge_asof,
searchsorted), from pandas frames of the rows they need, loaded from the same file with the JSON
already extracted by DuckDB (the load is timed and reported apart). Every pandas answer (value,
series and details) is checked against the engine's; a mismatch is printed loudly.

    python bench/metrics.py [--customers 1000000] [--events 20000000] [--seed 42] [--dir DIR]
                            [--only NAME ...] [--skip-pandas] [--repeat 1]

With --dir, the generated file is kept there (named after customers, events and seed) and reused by
the next run with the same arguments; without it, it goes to a temporary folder removed at the end.
The workload is written in metrics_workload.py, the pandas baseline in metrics_pandas.py.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import ibis
import numpy as np
import pandas as pd

from boomerang.events import rollups
from boomerang.metrics import activity, kpis, rolled, service  # noqa: F401 - service registers every metric
from boomerang.metrics.base import REGISTRY, Data
from metrics_pandas import (
    FUNNEL,
    FUNNEL_HOURS,
    RFM_SCORES,
    Period,
    load_frames,
    pandas_versions,
    pd_inactivity_window,
    pd_lifecycle_per_customer,
    pd_rfm_scores,
    quintile,
)
from metrics_workload import count_rollup_apart, describe, generate_apart

PERIOD = {"date_from": date(2024, 1, 1), "date_to": date(2024, 12, 31), "interval": "month"}
WINDOW = 90  # days, passed explicitly to retention_rate, churn_rate and lifecycle
EXTRACT = "(extraction)"  # purchases, refunds and NPS answers: the rows metrics start from, once per Data
FROM_ROLLUP = [*rolled.ORDER_KPIS, *rolled.ACTIVITY, "cohorts", *rolled.DATED]  # what the rollup answers or helps


# ---------------------------------------------------------------------------------------------------
# Checking and timing
# ---------------------------------------------------------------------------------------------------


def differences(expected: Any, got: Any, path: str = "") -> list[str]:
    """Where the engine's answer differs from pandas' (only the fields pandas computed are compared)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{path}: engine has {got!r}"]
        out = []
        for k, v in expected.items():
            out += (
                differences(v, got[k], f"{path}.{k}") if k in got else [f"{path}.{k}: missing from the engine's answer"]
            )
        return out
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return [f"{path}: engine has {len(got) if isinstance(got, list) else got!r} items, pandas {len(expected)}"]
        return [d for i, (a, b) in enumerate(zip(expected, got)) for d in differences(a, b, f"{path}[{i}]")]
    if expected is None or got is None or isinstance(expected, str) or isinstance(got, str):
        return [] if expected == got else [f"{path}: engine {got!r} != pandas {expected!r}"]
    same = math.isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1.5e-6)  # the engine rounds to 6 places
    return [] if same else [f"{path}: engine {got!r} != pandas {expected!r}"]


def frame_differences(engine: pd.DataFrame, pandas: pd.DataFrame) -> list[str]:
    engine = engine.sort_values("customer_id", ignore_index=True)
    pandas = pandas.sort_values("customer_id", ignore_index=True)
    if len(engine) != len(pandas):
        return [f"rows: engine {len(engine):,}, pandas {len(pandas):,}"]
    out = []
    for column in pandas.columns:
        a, b = engine[column], pandas[column]
        if pd.api.types.is_float_dtype(b):
            bad = ~np.isclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-9)
        else:
            bad = ~((a.astype(object) == b.astype(object)) | (a.isna() & b.isna())).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            out.append(
                f"{column}: {int(bad.sum()):,} rows differ, e.g. {engine['customer_id'][i]}: "
                f"engine {a[i]!r} != pandas {b[i]!r}"
            )
    return out


def float_ties(engine: pd.DataFrame, diffs: list[str]) -> bool:
    """Whether the only differences are scores that ranking the engine's own values reproduces: customers
    whose sums tie in cents but differ in the last bit with the order of addition, at a quintile boundary."""
    if not all(d.split(":")[0] in {c for c, _, _ in RFM_SCORES} for d in diffs):
        return False
    return all(
        (quintile(engine[value], ascending).to_numpy() == engine[column].to_numpy()).all()
        for column, value, ascending in RFM_SCORES
    )


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    best, result = math.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best


def answered_from(daily: ibis.Table, data: Data, m: Any, query: Any) -> dict[str, Any]:
    """The metric as rolled.answer gives it where the log keeps its rollup: from the rollup for one in rolled.ROLLED,
    over the events with the first steps from the rollup for the funnel."""
    if m.name in rolled.ROLLED:
        return rolled.run(daily, m.name, query)
    return m.calculate(Data(events=data.events, rollup=daily), query)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--dir", default=None, help="keep the generated log there and reuse it (default: a temporary folder)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="NAME",
        help=f"a metric to run (repeatable): {', '.join(sorted(REGISTRY))}, inactivity_window",
    )
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="run each side this many times and keep the best")
    args = parser.parse_args()
    names = args.only or [*sorted(REGISTRY), "inactivity_window"]
    unknown = [n for n in names if n not in REGISTRY and n != "inactivity_window"]
    if unknown:
        parser.error(f"unknown metric(s): {', '.join(unknown)}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(args.dir) if args.dir else Path(tmp)
        path = folder / f"events-{args.customers}-{args.events}-{args.seed}.duckdb"
        print(
            f"machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
            f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, ibis {ibis.__version__}, pandas {pd.__version__}; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        if path.exists():
            print(f"reusing {path} (generation not timed; delete it to regenerate)")
        else:
            counts, steps, seconds, gen_peak = generate_apart(path, args.customers, args.events, args.seed)
            events = sum(n for k, n in counts.items() if k != "consents")
            print(
                f"generated {events:,} events for {args.customers:,} customers and {counts['consents']:,} consent changes "
                f"in {seconds:.1f} s (seed {args.seed}; peak memory of the generating process {gen_peak:,.0f} MB)"
            )
            print("  steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
            print(
                "  "
                + ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]) if k != "consents")
            )
        for line in describe(path):
            print("  " + line)

        counted = count_rollup_apart(path)
        if counted is not None:
            print(
                f"  the daily rollup counted into the file in {counted:.1f} s (once, as migration e0003 does; not counted)"
            )
        con = ibis.duckdb.connect(str(path), read_only=True)
        data = Data(events=con.table("events"), consents=con.table("consents"))
        daily = con.table(rollups.TABLE)
        started = time.perf_counter()  # so that the first metric timed does not pay for a cold file alone
        con.raw_sql("SELECT count(*), sum(length(CAST(properties AS VARCHAR))) FROM events").fetchall()
        print(
            f"warm-up: one scan of the log with its properties in {time.perf_counter() - started:.1f} s (not counted)"
        )
        start = pd.Timestamp(PERIOD["date_from"])
        period = Period.of(start, pd.Timestamp(PERIOD["date_to"]) + pd.Timedelta(days=1))
        print(
            f"period {PERIOD['date_from']} to {PERIOD['date_to']} by month ({len(period.buckets) - 1} buckets), "
            f"window {WINDOW} days, funnel {' > '.join(FUNNEL)} within {FUNNEL_HOURS} h"
        )

        # The engine, every metric first, so that its peak memory is its own. Its purchases, refunds and NPS answers
        # are extracted from the log's JSON once, into tables on the engine that every metric on this Data reads: that
        # step is timed on its own line and counted in the engine's total (pandas' load of its frames is not).
        engine: dict[str, tuple[Any, float]] = {}
        from_rollup: dict[str, tuple[Any, float]] = {}
        engine[EXTRACT] = timed(lambda: (data.purchases(), data.refunds(), kpis.answers(data)), 1)
        for name in names:
            if name == "inactivity_window":
                engine[name] = timed(lambda: activity.default_window(data), args.repeat)
                continue
            m = REGISTRY[name]
            params = {**PERIOD, **({"window_days": WINDOW} if "window_days" in m.query_type.model_fields else {})}
            query = service.parse(m, params)
            engine[name] = timed(lambda: m.calculate(data, query), args.repeat)
            if name in FROM_ROLLUP:
                from_rollup[name] = timed(lambda: answered_from(daily, data, m, query), args.repeat)
            if m.trait:
                engine[f"{name} per_customer"] = timed(lambda: m.per_customer(data, query), args.repeat)
        engine_peak = peak_mb()
        con.disconnect()

        baseline: dict[str, tuple[Any, float]] = {}
        if not args.skip_pandas:
            frames, load_s = timed(lambda: load_frames(path), 1)
            rows = sum(len(f) for f in frames.values())
            load_peak = peak_mb()
            versions = pandas_versions(WINDOW)
            for name in names:
                if name == "inactivity_window":
                    baseline[name] = timed(lambda: pd_inactivity_window(frames), args.repeat)
                    continue
                baseline[name] = timed(lambda: versions[name](frames, period), args.repeat)
                if name == "rfm":
                    baseline["rfm per_customer"] = timed(lambda: pd_rfm_scores(frames, period.end), args.repeat)
                if name == "lifecycle":
                    baseline["lifecycle per_customer"] = timed(
                        lambda: pd_lifecycle_per_customer(frames, period, WINDOW), args.repeat
                    )

        print(f"\n{'metric':28} {'duckdb s':>9} {'pandas s':>9} {'pandas/duckdb':>14}  check")
        sums = [0.0, 0.0]
        problems, notes = [], []
        for name, (result, seconds) in engine.items():
            line = f"{name:28} {seconds:9.2f}"
            if name == EXTRACT:
                sums[0] += seconds
                line += f" {'':9} {'':14}  counted in the engine's total"
            elif name in baseline:
                expected, pandas_s = baseline[name]
                if name == "inactivity_window":
                    diffs = [] if expected == result else [f"engine {result} days != pandas {expected} days"]
                elif name.endswith("per_customer"):
                    diffs = frame_differences(result, expected)
                else:
                    diffs = differences(expected, result)
                sums[0] += seconds
                sums[1] += pandas_s
                if diffs and name == "rfm per_customer" and float_ties(result, diffs):
                    check = "same, but for float ties (*)"
                    notes += [f"(*) {name}: {d}" for d in diffs] + [
                        "    every such customer's monetary agrees to 1e-9, and ranking the engine's own sums gives the "
                        "engine's scores:",
                        "    equal totals in cents summed in another order differ in the last bit "
                        "and fall either side of a quintile",
                        "    boundary. DuckDB's parallel SUM(DOUBLE) does this "
                        "between its own runs too: an engine issue, not different work.",
                    ]
                else:
                    check = "same" if not diffs else f"MISMATCH ({len(diffs)})"
                    problems += [f"{name}{d}" if d.startswith((".", "[")) else f"{name}: {d}" for d in diffs[:5]]
                line += f" {pandas_s:9.2f} {pandas_s / seconds:14.2f}  {check}"
                if name in from_rollup:
                    answer, rollup_s = from_rollup[name]
                    wrong = differences(result, answer)
                    problems += [f"{name} from the rollup: {d}" for d in wrong[:5]]
                    alone = seconds + (engine[EXTRACT][1] if name in rolled.ROLLED else 0.0)
                    line += (
                        f"  rollup {rollup_s:.2f} s ({pandas_s / rollup_s:.1f}x pandas; alone over the events "
                        f"{alone:.2f} s){' MISMATCH' if wrong else ''}"
                    )
                if name.endswith("per_customer"):
                    line += f"  {len(result):,} rows"
                elif name == "inactivity_window":
                    line += f"  {result} days"
            elif name.endswith("per_customer"):
                line += f"  {len(result):,} rows"
            print(line)
        if sums[1]:
            print(f"{'total':28} {sums[0]:9.2f} {sums[1]:9.2f} {sums[1] / sums[0]:14.2f}")
            print(f"pandas frames loaded from DuckDB in {load_s:.1f} s ({rows:,} rows; not counted above)")
        print(
            f"peak memory of this process: {engine_peak:,.0f} MB after the engine's runs"
            + (
                f", {load_peak:,.0f} MB after loading the pandas frames, {peak_mb():,.0f} MB at the end"
                if not args.skip_pandas
                else ""
            )
        )
        load = os.getloadavg()
        print(
            f"load average at the end: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min) on {os.cpu_count()} cores"
            + (
                ": other work shared the machine, the times are inflated"
                if load[1] > (os.cpu_count() or 1) + 0.5
                else ""
            )
        )
        if not args.skip_pandas:
            print(
                f"every pandas version ran on all the rows: no sample was needed "
                f"(peak {peak_mb() / 1024:.1f} GiB of {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB)"
            )
        for note in notes:
            print(note)
        if problems:
            print("\n!!! MISMATCHES between the engine and pandas !!!")
            for p in problems:
                print("  " + p)
            sys.exit(1)


if __name__ == "__main__":
    main()
