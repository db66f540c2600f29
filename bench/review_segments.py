"""The monthly review's segment changes: read from the log's count per day and segment (`rollup_segments`, kept at
every write) against the same answer from the events themselves, side by side in the same run, answers checked equal.

Workload (defaults): 10,000,000 `Segment Entered` / `Segment Exited` events (two in three entries) of 12 segments
and 1,000,000 customers over two years (2024-2025), written into a fresh workspace's log in time order as a shop's
live segments would write them, then counted as migration e0005 fills an existing log (timed). Measured: the review
of November 2025 (`orchestration.review.segment_changes`), --repeat times each way; the first includes Ibis's compile.

    python bench/review_segments.py [--events 10000000] [--repeat 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import datetime
from pathlib import Path

from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.events import rollups
from boomerang.events.reader import Reader
from boomerang.orchestration import review

SINCE, UNTIL = datetime(2025, 11, 1), datetime(2025, 12, 1)


def _write(ws, events: int) -> None:
    seconds = 2 * 365 * 86_400
    with ws.log.connect() as conn:
        conn.execute(f"""
            INSERT INTO events BY NAME
            SELECT 'm' || i AS message_id, 'track' AS type,
                   CASE WHEN i % 3 = 0 THEN 'Segment Exited' ELSE 'Segment Entered' END AS event,
                   'c' || (i % 1000000) AS customer_id,
                   TIMESTAMP '2024-01-01' + to_seconds(CAST(i * ({seconds} / {events}) AS BIGINT)) AS timestamp,
                   TIMESTAMP '2024-01-01' AS received_at, 'server' AS source,
                   ('{{"segment": "segment_' || (i % 12) || '", "version": 1}}')::JSON AS properties,
                   '{{}}'::JSON AS context
            FROM range({events}) t(i) ORDER BY timestamp""")
        started = time.perf_counter()
        conn.execute(rollups.fill_segments())
        rows = conn.execute(f"SELECT count(*) FROM {rollups.SEGMENTS}").fetchall()[0][0]
        print(f"counted as migration e0005 does: {rows:,} rows in {time.perf_counter() - started:.2f} s")
        conn.execute("CHECKPOINT")


def _timed(ws) -> tuple[float, dict]:
    started = time.perf_counter()
    answer = review.segment_changes(ws.log, since=SINCE, until=UNTIL, titles={})
    return time.perf_counter() - started, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the workspace goes (default: the system's temp folder)")
    args = parser.parse_args()
    print(f"load (1/5/15 min) at the start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ws = open_workspace(Settings(home=Path(tmp) / "ws"))
        _write(ws, args.events)
        kept_way = Reader.segment_changes
        for attempt in range(1, args.repeat + 1):
            kept, answer = _timed(ws)
            Reader.segment_changes = property(lambda self: None)  # as on an engine keeping no count: the events
            try:
                raw, expected = _timed(ws)
            finally:
                Reader.segment_changes = kept_way
            assert answer == expected, "the two ways disagree"
            print(
                f"try {attempt}: {args.events:,} segment events, November 2025: from the events {raw * 1000:,.0f} ms, "
                f"from rollup_segments {kept * 1000:,.0f} ms ({raw / kept:.1f}x); load {os.getloadavg()[0]:.2f}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"load (1/5/15 min) at the end: {os.getloadavg()}; peak memory {peak / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
