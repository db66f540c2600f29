"""The event log: the one door to the analytical store (a DuckDB file by default).

Every other module reads the log through Ibis expressions on the tables a `Reader` gives (events,
the profile mirror, stored traits), so the same code runs on any engine Ibis reaches; only this
module speaks DuckDB, for writing and for its own housekeeping.

DuckDB lets one process at a time open the file for writing, and refuses, within one process, a
read-only connection beside a read-write one. So the server never keeps the file open: each use
connects, works and closes, waiting while another process holds the file (`when_free`), and within
a process readers share the file while a writer has it alone (`_Access`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import orjson
import pyarrow as pa

from boomerang.core.errors import LogBusy
from boomerang.core.privacy import analytics_properties
from boomerang.core.vocab import PROFILE_FIELDS, SEEN_FIELDS
from boomerang.events import rollups
from boomerang.events.reader import Reader, trait_table

if TYPE_CHECKING:  # pandas comes with the first read (Ibis answers in frames), not with every command
    import pandas as pd

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
# the profile mirror's columns, in its table's order (migrations/events/versions/0002_profile_mirror.py)
PROFILE_COLUMNS = ["customer_id", *PROFILE_FIELDS, *SEEN_FIELDS, "attributes"]
T = TypeVar("T")


@dataclass
class _Access:
    """Within one process: many readers at once, or one writer (re-entrant in its thread)."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    readers: int = 0
    writer: int | None = None  # the writing thread
    depth: int = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        me = threading.get_ident()
        with self.cond:
            if self.writer == me:
                raise RuntimeError("the event log is open for writing in this thread: read through that connection")
            self.cond.wait_for(lambda: self.writer is None)
            self.readers += 1
        try:
            yield
        finally:
            with self.cond:
                self.readers -= 1
                self.cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        me = threading.get_ident()
        with self.cond:
            if self.writer != me:
                self.cond.wait_for(lambda: self.writer is None and self.readers == 0)
                self.writer = me
            self.depth += 1
        try:
            yield
        finally:
            with self.cond:
                self.depth -= 1
                if not self.depth:
                    self.writer = None
                    self.cond.notify_all()


_ACCESS: dict[Path, _Access] = {}
_ACCESS_LOCK = threading.Lock()


def _access(path: Path) -> _Access:
    with _ACCESS_LOCK:
        return _ACCESS.setdefault(path, _Access())


class EventLog:
    def __init__(self, path: Path, *, lock_timeout: float = 60.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self._access = _access(path)

    # -- connections -------------------------------------------------------------------------------

    def when_free(self, opener: Callable[[], T]) -> T:
        """Call `opener`, retrying while another process holds the file's lock (or a connection of another
        configuration, opened by hand beside this log)."""
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
        """A read-write DuckDB connection, alone in this process: for this module, migrations and tests."""
        with self._access.write():
            conn = self.when_free(lambda: duckdb.connect(str(self.path), config=CONFIG))
            try:
                yield conn
            finally:
                conn.close()

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """The log's tables, read-only, for the span of the block (a flush waits for it: keep it short)."""
        import ibis  # heavy: loaded by the first reader, not by every command that imports the log

        with self._access.read():
            backend = self.when_free(lambda: ibis.duckdb.connect(str(self.path), read_only=True, **CONFIG))
            try:
                yield Reader(backend)
            finally:
                backend.disconnect()

    # -- writing -----------------------------------------------------------------------------------

    def append(self, frame: pd.DataFrame, *, merges: list[tuple[str, str]] = ()) -> int:
        """Append events, skipping message ids already stored, then move the history of merged profiles
        (from, into) to where they went, in one transaction; returns how many events were new."""
        with self.connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            fresh = self._append(conn, frame)
            rollups.add(conn, fresh)
            for from_id, into_id in merges:
                conn.execute("UPDATE events SET customer_id = ? WHERE customer_id = ?", [into_id, from_id])
            rollups.move(conn, merges)
            conn.execute("COMMIT")
        return fresh.num_rows

    @staticmethod
    def _append(conn: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> pa.Table:
        """Insert the events whose message ids are new; returns those rows (what `rollups.add` counts)."""
        if frame.empty:
            return pa.table({c: pa.array([], pa.string()) for c in rollups.FRESH})
        frame = frame.drop_duplicates("message_id")[EVENT_COLUMNS]
        conn.register("incoming_events", pa.Table.from_pandas(frame, preserve_index=False))
        values = [f"CAST({c} AS TIMESTAMP)" if c in TIME_COLUMNS else c for c in EVENT_COLUMNS]
        # Past 50 ids DuckDB checks the primary key by reading every row group's message ids; with the
        # ids pushed down as a filter a small append stays a few milliseconds on a log of millions.
        conn.execute(f"SET dynamic_or_filter_threshold = {max(50, min(len(frame), SMALL_APPEND) + 1)}")
        try:
            fresh = conn.sql(
                f"INSERT OR IGNORE INTO events ({', '.join(EVENT_COLUMNS)}) "
                f"SELECT {', '.join(values)} FROM incoming_events RETURNING {', '.join(rollups.FRESH)}"
            ).to_arrow_table()
        finally:
            conn.unregister("incoming_events")
            conn.execute("RESET dynamic_or_filter_threshold")
        return fresh

    def save_traits(self, kind: str, frame: pd.DataFrame, schema: pa.Schema | None = None) -> int:
        """Replace the stored traits of this kind with `frame` (one row per customer_id; `schema` types its columns
        when the values alone may not, an empty frame say); returns the row count."""
        if "customer_id" not in frame:
            raise ValueError("traits need a customer_id column")
        with self.connect() as conn:
            conn.register("incoming_traits", pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
            try:
                conn.execute(f"CREATE OR REPLACE TABLE {trait_table(kind)} AS SELECT * FROM incoming_traits")
            finally:
                conn.unregister("incoming_traits")
        return len(frame)

    def write_profiles(self, people: pd.DataFrame, consents: pd.DataFrame, *, synced_at: datetime | None) -> None:
        """Replace the mirror's rows of the customers in `people` (those with merged_into_id leave it) and
        the consents of the customers in `consents`; `synced_at`: a full copy's start, kept for the next one."""
        people = people.astype(
            {
                "birthday": "datetime64[s]",
                "first_seen_at": "datetime64[us]",
                "last_seen_at": "datetime64[us]",
                "created_at": "datetime64[us]",
            }
        )
        columns = ", ".join(
            "CAST(birthday AS DATE)"
            if c == "birthday"
            else "CAST(coalesce(attributes, '{}') AS JSON)"
            if c == "attributes"
            else c
            for c in PROFILE_COLUMNS
        )
        with self.connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            conn.register("incoming_people", pa.Table.from_pandas(people, preserve_index=False))
            conn.register(
                "incoming_consents", pa.Table.from_pandas(consents.astype({"granted": bool}), preserve_index=False)
            )
            conn.execute("DELETE FROM profiles WHERE customer_id IN (SELECT customer_id FROM incoming_people)")
            conn.execute(f"INSERT INTO profiles SELECT {columns} FROM incoming_people WHERE merged_into_id IS NULL")
            conn.execute(
                "DELETE FROM profile_consents WHERE customer_id IN (SELECT customer_id FROM incoming_consents) "
                "OR customer_id IN (SELECT customer_id FROM incoming_people WHERE merged_into_id IS NOT NULL)"
            )
            conn.execute("INSERT INTO profile_consents SELECT customer_id, channel, granted FROM incoming_consents")
            if synced_at is not None:
                conn.execute("DELETE FROM profile_sync")
                conn.execute("INSERT INTO profile_sync VALUES (?)", [synced_at])
            conn.execute("COMMIT")
            conn.unregister("incoming_people")
            conn.unregister("incoming_consents")

    # -- privacy requests --------------------------------------------------------------------------

    def customer_history(self, customer_ids: list[str], *, user_ids: list[str] = ()) -> list[dict[str, Any]]:
        """Every event of these customers (or carrying one of their user ids), oldest first, with its properties
        and context as objects: what a customer's data export shows of the log."""
        with self.reader() as r:
            e = r.events
            mine = e.customer_id.isin(list(customer_ids))
            if user_ids:
                mine |= e.user_id.isin(list(user_ids))
            found = e.filter(mine).mutate(properties=e.properties.cast(str), context=e.context.cast(str))
            found = found.order_by([found.timestamp, found.message_id]).execute()
        rows = found.astype(object).where(found.notna(), None).to_dict("records")
        for row in rows:
            for name in ("properties", "context"):
                row[name] = orjson.loads(row[name]) if row[name] else {}
            for name in TIME_COLUMNS:
                row[name] = _moment(row[name])
        return rows

    def customer_traits(self, customer_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The stored traits (rfm, lifecycle, predictions...) of these customers, by kind."""
        with self.reader() as r:
            out = {}
            for kind in r.trait_kinds():
                table = r.trait(kind)
                frame = table.filter(table.customer_id.isin(list(customer_ids))).execute()
                out[kind] = frame.astype(object).where(frame.notna(), None).to_dict("records")
        return out

    def erase_customers(
        self, customer_ids: list[str], pseudonym: str, *, user_ids: list[str] = (), anonymous_ids: list[str] = ()
    ) -> dict[str, int]:
        """Detach the log from an erased person, in one transaction: their events (by customer or user id) keep
        their name, time and what counts need (core.privacy.analytics_properties) under `pseudonym`, without user
        id, anonymous id or context, with the customer ids inside message ids replaced; others' events lose the
        person's anonymous ids (a shared device's); the profile mirror forgets them; the first customer id's
        traits move to the pseudonym, the others' go. Checkpointed, so that the write-ahead log keeps nothing of
        them either."""
        with self.connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            conn.register("erased_customers", pa.table({"id": pa.array(list(customer_ids), pa.string())}))
            conn.register("erased_users", pa.table({"id": pa.array(list(user_ids), pa.string())}))
            conn.register("erased_visitors", pa.table({"id": pa.array(list(anonymous_ids), pa.string())}))
            try:
                touched = rollups.keys_of(
                    conn, "customer_id IN (SELECT id FROM erased_customers) OR user_id IN (SELECT id FROM erased_users)"
                )
                counts = {"events": self._erase_events(conn, customer_ids, pseudonym)}
                rollups.recompute(conn, touched, pseudonym)
                conn.execute(
                    "UPDATE events SET anonymous_id = NULL WHERE anonymous_id IN (SELECT id FROM erased_visitors)"
                )
                counts["profile_mirror"] = self._erase_mirror(conn)
                counts["traits"] = self._move_traits(conn, customer_ids, pseudonym)
                conn.execute("COMMIT")
            finally:
                for name in ("erased_customers", "erased_users", "erased_visitors"):
                    conn.unregister(name)
            conn.execute("CHECKPOINT")
        return counts

    @staticmethod
    def _erase_events(conn: duckdb.DuckDBPyConnection, customer_ids: list[str], pseudonym: str) -> int:
        rows = conn.execute(
            "SELECT message_id, CAST(properties AS VARCHAR) FROM events "
            "WHERE customer_id IN (SELECT id FROM erased_customers) OR user_id IN (SELECT id FROM erased_users)"
        ).fetchall()
        if not rows:
            return 0
        renamed = []
        for message_id, _ in rows:
            for cid in customer_ids:
                message_id = message_id.replace(cid, pseudonym)
            renamed.append(message_id)
        kept = [orjson.dumps(analytics_properties(orjson.loads(p) if p else {})).decode() for _, p in rows]
        changes = pa.table({"old_id": [r[0] for r in rows], "new_id": renamed, "properties": kept})
        conn.register("erased_events", changes)
        try:
            conn.execute(
                "UPDATE events SET customer_id = ?, user_id = NULL, anonymous_id = NULL, context = '{}', "
                "properties = CAST(x.properties AS JSON) FROM erased_events x WHERE events.message_id = x.old_id",
                [pseudonym],
            )
            conn.execute(
                "UPDATE events SET message_id = x.new_id FROM erased_events x "
                "WHERE events.message_id = x.old_id AND x.new_id <> x.old_id"
            )
        finally:
            conn.unregister("erased_events")
        return len(rows)

    @staticmethod
    def _erase_mirror(conn: duckdb.DuckDBPyConnection) -> int:
        gone = conn.execute(
            "SELECT count(*) FROM profiles WHERE customer_id IN (SELECT id FROM erased_customers)"
        ).fetchall()[0][0]
        conn.execute("DELETE FROM profiles WHERE customer_id IN (SELECT id FROM erased_customers)")
        conn.execute("DELETE FROM profile_consents WHERE customer_id IN (SELECT id FROM erased_customers)")
        return int(gone)

    @staticmethod
    def _move_traits(conn: duckdb.DuckDBPyConnection, customer_ids: list[str], pseudonym: str) -> int:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE starts_with(table_name, 'trait_')"
            ).fetchall()
        ]
        moved = 0
        for table in tables:
            conn.execute(
                f"DELETE FROM {table} WHERE customer_id IN (SELECT id FROM erased_customers) AND customer_id <> ?",
                [customer_ids[0]],
            )
            moved += conn.execute(
                f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?", [pseudonym, customer_ids[0]]
            ).fetchall()[0][0]
        return moved

    # -- reading -----------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts by event name, and the first and last event time (from the daily rollup)."""
        with self.reader() as r:  # one scan: per event, then over all of them
            e = r.rollup
            by_event = (
                e.group_by("event").aggregate(n=e.events.sum(), first=e.first_at.min(), last=e.last_at.max()).execute()
            )
        by_event = by_event.sort_values(["n", "event"], ascending=[False, True])
        first, last = (by_event["first"].min(), by_event["last"].max()) if len(by_event) else (None, None)
        return {
            "total": int(by_event["n"].sum()),
            "by_event": dict(zip(by_event["event"], map(int, by_event["n"]))),
            "first": _moment(first),
            "last": _moment(last),
        }

    def count(self) -> int:
        with self.reader() as r:
            return int(r.events.count().execute())

    def customer_events(self, customer_id: str, *, limit: int, offset: int) -> tuple[pd.DataFrame, int]:
        """A page of one customer's events, newest first (timestamp, type, event, source, properties), and
        how many there are."""
        with self.reader() as r:
            mine = r.events.filter(r.events.customer_id == customer_id)
            if (totals := r.totals) is not None:  # how many, and from when to when: only that part of the log is read
                theirs = totals.filter(totals.customer_id == customer_id)
                span = theirs.aggregate(n=theirs.events.sum(), first=theirs.first_at.min(), last=theirs.last_at.max())
                n, first, last = span.execute().iloc[0]
                total = 0 if _moment(last) is None else int(n)  # no row: nulls
                if total:
                    mine = mine.filter((mine.timestamp >= first) & (mine.timestamp <= last))
            else:
                total = int(mine.count().execute())
            page = (
                mine.order_by([mine.timestamp.desc(), mine.message_id])
                .select("timestamp", "type", "event", "source", "message_id", properties=mine.properties.cast(str))
                .limit(limit, offset=offset)
                .execute()
            )
        return page.drop(columns="message_id"), total

    def traits(self, kind: str, customer_ids: list[str] | None = None) -> pd.DataFrame | None:
        """The stored traits of this kind (of some customers only, if given); None when never computed."""
        with self.reader() as r:
            table = r.trait(kind)
            if table is None:
                return None
            if customer_ids is not None:
                table = table.filter(table.customer_id.isin(customer_ids))
            return table.execute()

    def latest(self, event: str) -> pd.DataFrame:
        """customer_id, last: when each customer last did `event`."""
        with self.reader() as r:
            e = r.events.filter(r.events.event == event)
            return e.group_by("customer_id").aggregate(last=e.timestamp.max()).execute()

    def last_profile_sync(self) -> datetime | None:
        """When the last full copy of the profiles began."""
        with self.reader() as r:
            found = r.backend.table("profile_sync").synced_at.max().execute()
        return _moment(found)

    def revision(self) -> str | None:
        """The log's schema revision (Alembic's), None for a new file."""
        with self.connect() as conn:  # read-write: a new workspace's file is made here
            found = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'alembic_version'"
            ).fetchall()[0][0]
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall() if found else []
        return rows[0][0] if rows else None

    def fingerprint(self) -> tuple:
        """Changes whenever the log's file or its write-ahead log is written."""
        out = []
        for path in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                st = path.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)


def _moment(value: Any) -> datetime | None:
    import pandas as pd

    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()
