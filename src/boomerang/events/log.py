"""The event log: a DuckDB file that one process at a time may open, so every use is short.

The server does not keep the file open. Each writer or reader connects, works and closes,
retrying while another process holds the lock, so that `boomerang status` or an import
can run beside `boomerang serve`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

EVENT_COLUMNS = [
    "message_id",
    "type",
    "event",
    "customer_id",
    "anonymous_id",
    "user_id",
    "timestamp",
    "received_at",
    "source",
    "properties",
    "context",
]
TIME_COLUMNS = ("timestamp", "received_at")  # given as datetimes or as ISO text; the log casts them
SMALL_APPEND = 5000  # rows up to which an append checks its ids as a pushed-down filter
CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": True}
T = TypeVar("T")


class LogBusy(RuntimeError):
    """Another process held the event log for longer than the configured wait."""


class EventLog:
    def __init__(self, path: Path, *, lock_timeout: float = 60.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout

    def when_free(self, opener: Callable[[], T]) -> T:
        """Call `opener`, retrying while another process holds the file's lock, or while another thread of
        this process holds it open with another configuration (read-only beside read-write), which DuckDB
        refuses at once instead of waiting."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.01
        while True:
            try:
                return opener()
            except Exception as exc:  # duckdb raises IOException; through SQLAlchemy it is wrapped
                message = str(exc).lower()
                if "lock" not in message and "different configuration" not in message:
                    raise
                if time.monotonic() > deadline:
                    raise LogBusy(f"the event log {self.path} is held by another process") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.25)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the log, waiting while another process holds it."""
        conn = self.when_free(lambda: duckdb.connect(str(self.path), config=CONFIG))
        try:
            yield conn
        finally:
            conn.close()

    def append(self, conn: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> int:
        """Append events, skipping message ids already stored; returns how many were new."""
        if frame.empty:
            return 0
        frame = frame.drop_duplicates("message_id")[EVENT_COLUMNS]
        before = conn.execute("SELECT count(*) FROM events").fetchall()[0][0]
        conn.register("incoming_events", pa.Table.from_pandas(frame, preserve_index=False))
        values = [f"CAST({c} AS TIMESTAMP)" if c in TIME_COLUMNS else c for c in EVENT_COLUMNS]
        # Past 50 ids DuckDB checks the primary key by reading every row group's message ids; with the
        # ids pushed down as a filter a small append stays a few milliseconds on a log of millions.
        conn.execute(f"SET dynamic_or_filter_threshold = {max(50, min(len(frame), SMALL_APPEND) + 1)}")
        try:
            conn.execute(
                f"INSERT OR IGNORE INTO events ({', '.join(EVENT_COLUMNS)}) "
                f"SELECT {', '.join(values)} FROM incoming_events"
            )
        finally:
            conn.unregister("incoming_events")
            conn.execute("RESET dynamic_or_filter_threshold")
        return conn.execute("SELECT count(*) FROM events").fetchall()[0][0] - before

    @staticmethod
    def redirect(conn: duckdb.DuckDBPyConnection, merges: list[tuple[str, str]]) -> None:
        """Move the history of merged profiles to the profile they were merged into, in order."""
        for from_id, into_id in merges:
            conn.execute("UPDATE events SET customer_id = ? WHERE customer_id = ?", [into_id, from_id])

    def summary(self) -> dict:
        """Counts by event name, and the first and last event time."""
        with self.connect() as conn:
            by_event = conn.execute("SELECT event, count(*) FROM events GROUP BY event ORDER BY 2 DESC, 1").fetchall()
            first, last, total = conn.execute("SELECT min(timestamp), max(timestamp), count(*) FROM events").fetchall()[
                0
            ]
        return {"total": total, "by_event": dict(by_event), "first": first, "last": last}
