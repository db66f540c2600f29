"""Ready-made segments on a simulated shop: the engine against hand-written SQL and pandas; event-to-membership latency.

Every ready-made segment on a large simulated shop: the engine on DuckDB, against a hand-written DuckDB
query of the same rule (the engine's floor) and against pandas; then the time from an event's arrival
to the membership change it causes, in a real workspace.

Workload (defaults): 1,000,000 customers and exactly 50,000,000 events over two years (2023-2024),
the event log and consent history of metrics_workload.py (see metrics.py), plus in the same DuckDB
file what a workspace keeps beside its log for segments: `profiles` (one per customer id, with
email, phone, Telegram, city and birthday for shares of them), `profile_consents` and the traits
`trait_lifecycle` and `trait_predictions` (segments_workload.py). The generation runs in a child
process (its time and peak memory are reported apart). Rules are evaluated as of the end of the
generated period, 2025-01-01 00:00, so that rolling windows end where the data ends.

Measured, for every segment of boomerang.segments.library.definitions():
- engine: Compiler(Tables(...), as_of=..., resolve=<the library>).members(rule).execute() over
  ibis.duckdb.connect(file, read_only=True), as the workspace builds it (compile: building the
  expression and its SQL alone, included in the engine's time);
- SQL: one hand-written DuckDB query of the rule (segments_baselines.py), on the same connection;
- pandas: the rule in vectorised pandas, from frames of the rows it needs loaded from the file
  (customer ids as integer codes; the load is timed and reported apart).
Every member set is checked: the same count and the same ids from all three. Best of --repeat runs (3),
after a warm-up that reads every column the rules read (so that no side pays for a cold file alone).
Aim (from the issue): a behavioural segment (one that reads the log) in at most 2 s, within 1.5x of
the hand-written SQL.

Live (segments_live.py): a workspace made by open_workspace holding the same shop (events in its
log, customers in SQLite), every ready-made segment installed and refreshed; then, one event at a
time, record() -> move_events(ws) -> membership.update_customers(ws.segments, touched_by(moved)) until the
customer's membership row is there: p50/p95/max and the parts. Aim: at most 1 s from event to membership.

    python bench/segments.py [--customers 1000000] [--events 50000000] [--seed 42] [--dir DIR]
                             [--only NAME ...] [--repeat 3] [--skip-pandas] [--explain NAME ...]
                             [--skip-live] [--live 30] [--batch 300] [--live-customers N]

With --dir, the generated file is kept there (named after customers, events and seed) and reused by
the next run with the same arguments; without it, it goes to a temporary folder removed at the end.
The live workspace is always made afresh (in that folder) and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import ibis
import numpy as np
import pandas as pd

from boomerang.segments import library
from boomerang.segments.compile import Compiler, Tables
from boomerang.segments.definition import Event, leaves
from metrics_workload import describe as describe_log
from segments_baselines import load_frames, pandas_versions, sql_queries
from segments_workload import AS_OF, describe, generate_apart

AIM_SECONDS, AIM_RATIO, AIM_LIVE = 2.0, 1.5, 1.0


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    best, result = math.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def behavioural(definition, by_name) -> bool:
    """Whether the rule (or a segment it uses) reads the event log."""
    for leaf in leaves(definition.tree):
        if isinstance(leaf, Event) or getattr(leaf, "anniversary", None) == "first_order":
            return True
        if getattr(leaf, "segment", None) and behavioural(by_name[leaf.segment], by_name):
            return True
    return False


def profile(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """DuckDB's EXPLAIN ANALYZE as an indented list of operators with their rows and time."""
    doc = json.loads(con.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).fetchall()[0][1])
    lines = [
        f"  total {doc['query']['total_time']:.3f} s, cpu {doc['query']['cpu_time']:.3f} s, "
        f"rows scanned {doc['query'].get('total_rows_scanned', 0):,}"
    ]

    def walk(node: dict, depth: int) -> None:
        info = node.get("extra_info", {})
        what = [
            f"{k}: {v}"
            for k, v in info.items()
            if k
            in (
                "Join Type",
                "Conditions",
                "Aggregates",
                "Groups",
                "Table",
                "Filters",
                "Expression",
                "CTE Name",
                "CTE Index",
            )
        ]
        if node["name"] not in ("RESULT_COLLECTOR", "EXPLAIN_ANALYZE"):
            detail = "; ".join(w if len(w) < 110 else w[:107] + "..." for w in what)
            lines.append(
                f"  {'  ' * depth}{node['name']} {node.get('intermediate_rows', 0):,} rows "
                f"{node.get('timing', 0):.3f} s" + (f"  [{detail}]" if detail else "")
            )
            depth += 1
        for child in node.get("children", []):
            walk(child, depth)

    for node in doc["operator"]:
        walk(node, 0)
    return "\n".join(lines)


def as_set(values) -> set[str]:
    return {str(v) for v in values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--dir", default=None, help="keep the generated file there and reuse it (default: a temporary folder)"
    )
    names_all = [d.name for d in library.definitions()]
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="NAME",
        help=f"a segment to run (repeatable): {', '.join(names_all)}",
    )
    parser.add_argument("--repeat", type=int, default=3, help="run each side this many times and keep the best")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument(
        "--explain",
        action="append",
        default=[],
        metavar="NAME",
        help="print DuckDB's EXPLAIN ANALYZE of the engine's query and of the hand-written one",
    )
    parser.add_argument("--skip-live", action="store_true", help="skip the event-to-membership latency")
    parser.add_argument("--live", type=int, default=30, help="single-event rounds (the three kinds in turn)")
    parser.add_argument("--batch", type=int, default=300, help="customers in the one batched round")
    parser.add_argument(
        "--live-customers",
        type=int,
        default=None,
        help="put only this many customers (and their events) in the live workspace (default: all)",
    )
    args = parser.parse_args()
    names = args.only or names_all
    unknown = [n for n in names + args.explain if n not in names_all]
    if unknown:
        parser.error(f"unknown segment(s): {', '.join(unknown)}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(args.dir) if args.dir else Path(tmp)
        path = folder / f"segments-{args.customers}-{args.events}-{args.seed}.duckdb"
        print(
            f"machine: {os.cpu_count()} cores, {memory_gib():.0f} GiB, python {sys.version.split()[0]}, "
            f"duckdb {duckdb.__version__}, ibis {ibis.__version__}, pandas {pd.__version__}; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        if path.exists():
            print(f"reusing {path} (generation not timed; delete it to regenerate)")
        else:
            counts, steps, seconds, gen_peak = generate_apart(path, args.customers, args.events, args.seed)
            tables = {
                k: counts.pop(k)
                for k in ("consents", "profiles", "profile_consents", "trait_lifecycle", "trait_predictions")
            }
            print(
                f"generated {sum(counts.values()):,} events for {args.customers:,} customers, "
                + ", ".join(f"{n:,} {k}" for k, n in tables.items())
                + f" in {seconds:.1f} s (seed {args.seed}; peak memory of the generating process {gen_peak:,.0f} MB)"
            )
            print("  steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
            print("  " + ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])))
        for line in describe_log(path) + describe(path):
            print("  " + line)

        definitions = library.definitions()
        by_name = {d.name: d for d in definitions}
        con = ibis.duckdb.connect(str(path), read_only=True)
        tables = Tables(
            events=con.table("events"),
            profiles=con.table("profiles"),
            consents=con.table("profile_consents"),
            traits={
                "rfm": None,
                "lifecycle": con.table("trait_lifecycle"),
                "predictions": con.table("trait_predictions"),
            },
        )
        started = time.perf_counter()  # so that the first segment timed does not pay for a cold file alone
        con.raw_sql(
            "SELECT count(*), count(customer_id), count(event), min(timestamp), sum(length(CAST(properties AS VARCHAR))) "
            "FROM events"
        ).fetchall()
        for table in ("profiles", "profile_consents", "trait_lifecycle", "trait_predictions"):
            con.raw_sql(f"SELECT * FROM {table}").fetchall()
        print(
            f"warm-up: one scan of every column the rules read in {time.perf_counter() - started:.1f} s (not counted)"
        )
        print(f"as of {AS_OF} (the end of the generated period)")

        def compiled(name: str):
            return Compiler(tables, as_of=AS_OF, resolve=lambda n: by_name[n].tree).members(by_name[name].tree)

        sqls = sql_queries(AS_OF)
        engine, hand, compile_s = {}, {}, {}
        own = {}  # the engine's SQL run alone: what its plan costs without building and compiling it
        for name in names:
            sql, compile_s[name] = timed(lambda: ibis.to_sql(compiled(name)), args.repeat)
            engine[name] = timed(lambda: compiled(name).execute()["customer_id"].to_numpy(), args.repeat)
            _, own[name] = timed(lambda: con.con.execute(sql).df(), args.repeat)
            hand[name] = timed(lambda: con.con.execute(sqls[name]).df()["customer_id"].to_numpy(), args.repeat)
        engine_peak = peak_mb()
        explains = {
            name: (profile(con.con, ibis.to_sql(compiled(name))), profile(con.con, sqls[name])) for name in args.explain
        }

        baseline, load_s, rows, load_peak = {}, 0.0, 0, 0.0
        if not args.skip_pandas:
            frames, load_s = timed(lambda: load_frames(con.con), 1)
            rows = sum(len(f) for k, f in frames.items() if k != "ids")
            load_peak = peak_mb()
            versions = pandas_versions(AS_OF)
            baseline = {name: timed(lambda: versions[name](frames), args.repeat) for name in names}
            del frames
        con.disconnect()

        print(
            f"\n{'segment':24} {'members':>9} {'engine s':>9} {'compile':>8} {'its SQL':>8} {'SQL s':>7} {'pandas s':>9} "
            f"{'engine/SQL':>10} {'pandas/engine':>13}  check       aim"
        )
        problems, missed = [], []
        for name in names:
            (got, e_s), (sql_ids, s_s) = engine[name], hand[name]
            got_set = as_set(got)
            diffs = []
            if len(got) != len(got_set):
                diffs.append(f"the engine gave {len(got) - len(got_set):,} duplicate ids")
            if as_set(sql_ids) != got_set or len(sql_ids) != len(got_set):
                diffs.append(
                    f"SQL has {len(sql_ids):,} members, {len(as_set(sql_ids) - got_set):,} not in the engine's, "
                    f"{len(got_set - as_set(sql_ids)):,} missing"
                )
            line = f"{name:24} {len(got_set):9,} {e_s:9.2f} {compile_s[name]:8.2f} {own[name]:8.2f} {s_s:7.2f}"
            if name in baseline:
                p_ids, p_s = baseline[name]
                if as_set(p_ids) != got_set or len(p_ids) != len(got_set):
                    diffs.append(
                        f"pandas has {len(p_ids):,} members, {len(as_set(p_ids) - got_set):,} not in the "
                        f"engine's, {len(got_set - as_set(p_ids)):,} missing"
                    )
                line += f" {p_s:9.2f} {e_s / s_s:10.2f} {p_s / e_s:13.2f}"
            else:
                line += f" {'-':>9} {e_s / s_s:10.2f} {'-':>13}"
            line += f"  {'same' if not diffs else f'MISMATCH ({len(diffs)})':10}"
            if behavioural(by_name[name], by_name):
                why = [f"{e_s:.2f} s > {AIM_SECONDS:.0f} s"] * (e_s > AIM_SECONDS) + [
                    f"{e_s / s_s:.2f}x SQL > {AIM_RATIO}x"
                ] * (e_s / s_s > AIM_RATIO)
                line += "  met" if not why else "  MISSED: " + ", ".join(why)
                missed += [f"{name}: " + ", ".join(why)] if why else []
            else:
                line += "  (profile/trait)"
            problems += [f"{name}: {d}" for d in diffs]
            print(line)
        total = [sum(engine[n][1] for n in names), sum(hand[n][1] for n in names)]
        line = f"{'total':24} {'':9} {total[0]:9.2f} {sum(compile_s.values()):8.2f} {sum(own.values()):8.2f} {total[1]:7.2f}"
        if baseline:
            total.append(sum(baseline[n][1] for n in names))
            line += f" {total[2]:9.2f} {total[0] / total[1]:10.2f} {total[2] / total[0]:13.2f}"
        print(line)
        print(
            "compile: Compiler(...).members(rule) and its SQL (ibis.to_sql), part of the engine's time; its SQL: the "
            "engine's SQL run alone on the same connection"
        )
        if baseline:
            print(f"pandas frames loaded from DuckDB in {load_s:.1f} s ({rows:,} rows; not counted above)")
        print(
            f"aim for a behavioural segment (reads the log): at most {AIM_SECONDS:.0f} s and within {AIM_RATIO}x of "
            f"the hand-written SQL: "
            + ("met by every one" if not missed else f"MISSED by {len(missed)}: " + "; ".join(missed))
        )
        for name, (mine, theirs) in explains.items():
            print(
                f"\nEXPLAIN ANALYZE of {name} (operator, rows out, seconds in it), the engine's query:\n{mine}\n"
                f"and the hand-written one:\n{theirs}"
            )

        live_peak = None
        if not args.skip_live:
            home = Path(tempfile.mkdtemp(prefix="segments-live-", dir=folder))
            try:
                live_report(path, home, args)
            finally:
                shutil.rmtree(home, ignore_errors=True)
            live_peak = peak_mb()
        print(
            f"\npeak memory of this process: {engine_peak:,.0f} MB after the engine's and SQL runs"
            + (f", {load_peak:,.0f} MB after loading the pandas frames" if baseline else "")
            + (f", {live_peak:,.0f} MB after the live part" if live_peak else "")
            + f" (of {memory_gib():.0f} GiB; DuckDB's buffer pool counts)"
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
        if problems:
            print("\n!!! MISMATCHES between the engine and its baselines !!!")
            for p in problems:
                print("  " + p)
            sys.exit(1)


def live_report(path: Path, home: Path, args) -> None:
    from boomerang.segments import membership
    from segments_live import KINDS, build, during_refresh, measure, prepare

    print(f"\nlive: a workspace (open_workspace, SQLite + DuckDB) in {home}")
    ws, steps, kept = build(path, home, AS_OF, args.live_customers)
    if kept < args.customers:
        print(
            f"  NOTE: only {kept:,} of the {args.customers:,} customers (and their events) are in this workspace "
            f"(--live-customers)"
        )
    refreshed, more = prepare(ws)
    for k, v in {**steps, **more}.items():
        print(f"  {k}: {v:.1f} s")
    with ws.log.connect() as conn:
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    print(f"  the log holds {events:,} events; the refresh (membership.refresh, as the schedule runs it), per segment:")
    print(
        "  "
        + ", ".join(
            f"{r['name']} {r['size']:,} in {r['seconds']:.2f} s" if "size" in r else f"{r['name']} ERROR {r['error']}"
            for r in refreshed
        )
    )
    reevaluated = {kind: sorted(d.name for d in library.definitions() if kind in d.triggers()) for kind in KINDS}
    singles, together = measure(ws, args.live, args.batch, args.seed)
    started = time.perf_counter()
    again = membership.refresh(ws.segments, only_expiring=True)
    scheduled = time.perf_counter() - started
    print(
        f"\nevent -> membership: record() one event, move_events(ws), "
        f"membership.update_customers(ws.segments, touched_by(moved)), "
        f"{len(singles)} rounds (median of each part; latency = their sum; sync: the part of update spent in profiles.sync, "
        f"copying the touched profiles beside the log)"
    )
    print(
        f"  {'event (enters)':36} {'n':>3} {'p50 s':>7} {'p95 s':>7} {'max s':>7}   {'record':>7} {'flush':>7} "
        f"{'update':>7} {'(sync)':>7}  segments re-evaluated"
    )
    groups = {f"{k} ({s})": [x for x in singles if x.kind == k] for k, s in KINDS.items()}
    groups["all"] = singles
    for label, xs in groups.items():
        if not xs:
            continue
        lat = sorted(x.latency for x in xs)
        med = lambda attr: statistics.median(getattr(x, attr) for x in xs)  # noqa: E731
        segs = len(reevaluated[xs[0].kind]) if label != "all" else "-"
        print(
            f"  {label:36} {len(xs):3} {float(np.percentile(lat, 50)):7.3f} {float(np.percentile(lat, 95)):7.3f} {lat[-1]:7.3f}   "
            f"{med('record'):7.3f} {med('flush'):7.3f} {med('update'):7.3f} {med('sync'):7.3f}  {segs}"
        )
    for kind, segs in reevaluated.items():
        print(f"  {kind} re-evaluates: {', '.join(segs)}")
    failed = [x for x in singles if not x.entered]
    if failed:
        print(f"  !!! {len(failed)} rounds did not bring the customer into the segment")
    if together:
        print(
            f"  one round of {together.customers} customers at once (the three kinds): record {together.record:.3f} s, "
            f"flush {together.flush:.3f} s, update {together.update:.3f} s (sync {together.sync:.3f} s): "
            f"{together.latency:.3f} s; every one entered: {'yes' if together.entered else 'NO'}"
        )
    changed = sum(r.get("entered", 0) + r.get("exited", 0) for r in again)
    print(
        f"  the scheduled refresh run inline (membership.refresh(ws.segments, only_expiring=True), {len(again)} "
        f"segments, {changed:,} entries and exits): {scheduled:.1f} s: events arriving meanwhile would wait for all of it"
    )
    apart, refresh_s = during_refresh(ws, args.live, args.seed + 1)
    if apart:
        lat = sorted(x.latency for x in apart)
        print(
            f"  the same refresh as the pipeline runs it now (membership.Refresher, its own thread): {refresh_s:.1f} s, "
            f"during which {len(apart)} single-event rounds ran: latency p50 {float(np.percentile(lat, 50)):.3f} s, "
            f"p95 {float(np.percentile(lat, 95)):.3f} s, max {lat[-1]:.3f} s; every one entered: "
            + ("yes" if all(x.entered for x in apart) else "NO")
        )
    else:
        print(f"  the same refresh in its own thread: {refresh_s:.1f} s (it ended before a round could run)")
    p95 = float(np.percentile([x.latency for x in singles], 95)) if singles else math.nan
    print(
        f"aim: at most {AIM_LIVE:.0f} s from event to membership: p95 {p95:.3f} s, "
        + ("met" if p95 <= AIM_LIVE else "MISSED")
        + ". In `boomerang serve` the tracking API wakes the pipeline when it accepts events, so such a round starts "
        "at once, or when the round under way ends (the scheduled refresh of the expiring segments, every "
        f"{ws.settings.segments_refresh_minutes:g} minutes, runs in a thread of its own: rounds go on meanwhile)."
    )
    ws.engine.dispose()


if __name__ == "__main__":
    main()
