"""The event log as a lake: Delta tables on a shared path or S3, written by several pipeline workers at once and
read by DuckDB on one machine or by a Spark cluster (`BOOMERANG_EVENTS__BACKEND=lake`).

The same doors as `EventLog`, so nothing above this package knows which it has. An append inserts only the
message ids its events' days do not hold yet (a Delta merge: a concurrent append of the same days makes it rerun,
so a batch flushed twice by two workers lands once); every COMPACT_EVERY commits the days just written are
compacted into larger files, and files replaced more than RETAIN_HOURS ago are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import duckdb
import orjson
import pandas as pd
import pyarrow as pa
from deltalake import write_deltalake
from deltalake.exceptions import CommitFailedError

from boomerang.core.privacy import analytics_properties
from boomerang.customers.merge import final_targets
from boomerang.events.lake_read import duckdb_reader, spark_reader
from boomerang.events.lake_store import CONSENTS, EVENTS, PROFILES, SYNC, UNINDEXED, Store, retry
from boomerang.events.log import EVENT_COLUMNS, PROFILE_COLUMNS, EventLog, _moment
from boomerang.events.reader import Reader, trait_table

log = logging.getLogger("boomerang.lake")
COMPACT_EVERY = 100  # commits of the events between two compactions of the days written
RETAIN_HOURS = 24  # replaced files stay this long for readers that listed them (a long Spark job)
SOURCE, TARGET = "s", "t"


class LakeLog:
    def __init__(self, store: Store, *, engine: str = "duckdb", spark_master: str = "local[2]") -> None:
        self.store = store
        self.path = store.root
        self.engine = engine
        self.spark_master = spark_master

    def create(self) -> None:
        """Make the lake's tables where they are missing (the lake's migration)."""
        self.store.create()

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        """The lake's tables as they are now, for the span of the block."""
        if self.engine == "spark":
            with spark_reader(self.store, self.spark_master) as r:
                yield r
        else:
            with duckdb_reader(self.store) as r:
                yield r

    # -- writing -----------------------------------------------------------------------------------

    def append(self, frame: pd.DataFrame, *, merges: list[tuple[str, str]] = ()) -> int:
        """Append events, skipping message ids already stored, then move the history of merged profiles
        (from, into) to where they went; returns how many events were new. Two commits: a reader may see the
        new events before the merges' moves, never half of either."""
        pointers = final_targets(dict(merges))  # each merged-away profile's final profile
        new = 0
        if not frame.empty:
            frame = frame.drop_duplicates("message_id")[EVENT_COLUMNS]
            if pointers:
                frame = frame.assign(customer_id=frame["customer_id"].map(lambda c: pointers.get(c, c)))
            new = retry(lambda: self._insert(_events(frame)))
        if pointers:
            moves = pa.table({"from_id": list(pointers), "into_id": list(pointers.values())})
            retry(
                lambda: self._merge("events", moves, "t.customer_id = s.from_id", update={"customer_id": "s.into_id"})
            )
        return new

    def _insert(self, batch: pa.Table) -> int:
        with self.store.table("events") as table:
            done = (
                table.merge(
                    batch,
                    "t.event_date = s.event_date AND t.message_id = s.message_id",
                    source_alias=SOURCE,
                    target_alias=TARGET,
                )
                .when_not_matched_insert_all()
                .execute()
            )
            version = table.version()
        if version % COMPACT_EVERY == 0:
            self.compact(days=sorted(set(batch.column("event_date").to_pylist())))
        return int(done.get("num_target_rows_inserted", 0))

    def _merge(self, name: str, source: pa.Table, on: str, *, update=None, delete: bool = False) -> dict:
        with self.store.table(name) as table:
            merging = table.merge(source, on, source_alias=SOURCE, target_alias=TARGET)
            merging = merging.when_matched_delete() if delete else merging.when_matched_update(update)
            return merging.execute()

    def compact(self, *, days: list | None = None, names: list[str] | None = None) -> None:
        """Rewrite small files into large ones (the given days of the events, or these tables, or all), then delete
        files replaced more than RETAIN_HOURS ago. Another process compacting the same files at once wins; this
        one stops."""
        names = ["events"] if days else names or ["events", "profiles", "profile_consents", "profile_sync"]
        for name in names:
            with self.store.table(name) as table:
                try:
                    table.optimize.compact(
                        partition_filters=[("event_date", "in", [str(d) for d in days])] if days else None
                    )
                except CommitFailedError:
                    log.info("%s: compacted by another process meanwhile", name)
                table.vacuum(retention_hours=RETAIN_HOURS, enforce_retention_duration=False, dry_run=False)
                table.create_checkpoint()

    def save_traits(self, kind: str, frame: pd.DataFrame, schema: pa.Schema | None = None) -> int:
        """Replace the stored traits of this kind with `frame` (one commit: readers see the old or the new)."""
        if "customer_id" not in frame:
            raise ValueError("traits need a customer_id column")
        data = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        uri = self.store.uri(f"traits/{trait_table(kind).removeprefix('trait_')}")
        retry(
            lambda: write_deltalake(
                uri,
                data,
                mode="overwrite",
                schema_mode="overwrite",
                configuration=UNINDEXED,
                storage_options=self.store.options,
            )
        )
        return len(frame)

    def write_profiles(self, people: pd.DataFrame, consents: pd.DataFrame, *, synced_at: datetime | None) -> None:
        """Replace the mirror's rows of the customers in `people` (those with merged_into_id leave it) and the
        consents of the customers in `consents`; `synced_at`: a full copy's start, kept for the next one."""
        if not people.empty:
            gone = people["merged_into_id"].notna()
            rows = _profiles(people).append_column("gone", pa.array(gone.tolist(), pa.bool_()))
            columns = {c: f"s.{c}" for c in PROFILE_COLUMNS}
            retry(lambda: self._write_people(rows, columns))
        leaving = people.loc[people["merged_into_id"].notna(), "customer_id"].tolist() if not people.empty else []
        if not consents.empty or leaving:
            retry(lambda: self._write_consents(consents, leaving))
        if synced_at is not None:
            data = pa.table({"synced_at": pa.array([synced_at], pa.timestamp("us"))}, schema=SYNC)
            uri = self.store.uri("profile_sync")
            retry(lambda: write_deltalake(uri, data, mode="overwrite", storage_options=self.store.options))

    def _write_people(self, rows: pa.Table, columns: dict[str, str]) -> None:
        with self.store.table("profiles") as table:
            (
                table.merge(rows, "t.customer_id = s.customer_id", source_alias=SOURCE, target_alias=TARGET)
                .when_matched_delete("s.gone")
                .when_matched_update(columns)
                .when_not_matched_insert(columns, "NOT s.gone")
                .execute()
            )
            version = table.version()
        if version % COMPACT_EVERY == 0:  # the mirror is written at every segment query: keep its files few
            self.compact(names=["profiles", "profile_consents", "profile_sync"])

    def _write_consents(self, consents: pd.DataFrame, leaving: list[str]) -> None:
        """The consents of these customers become `consents`' rows: the others of theirs go, in one commit."""
        incoming = pa.Table.from_pandas(consents.astype({"granted": bool}), schema=CONSENTS, preserve_index=False)
        whose = pa.table({"customer_id": pa.array([*consents["customer_id"], *leaving], pa.string())})
        with self.store.table("profile_consents") as table:
            con = duckdb.connect()
            con.register("current", self.store.dataset(table))
            con.register("incoming", incoming)
            con.register("whose", whose)
            source = con.sql(
                "SELECT customer_id, channel, granted, false AS drop FROM incoming UNION ALL "
                "SELECT c.customer_id, c.channel, c.granted, true FROM current c "
                "WHERE c.customer_id IN (SELECT customer_id FROM whose) AND NOT EXISTS "
                "(SELECT 1 FROM incoming i WHERE i.customer_id = c.customer_id AND i.channel = c.channel)"
            ).to_arrow_table()
            con.close()
            on = "t.customer_id = s.customer_id AND t.channel = s.channel"
            (
                table.merge(source, on, source_alias=SOURCE, target_alias=TARGET)
                .when_matched_delete("s.drop")
                .when_matched_update({"granted": "s.granted"})
                .when_not_matched_insert({c: f"s.{c}" for c in CONSENTS.names}, "NOT s.drop")
                .execute()
            )

    # -- privacy requests --------------------------------------------------------------------------

    def erase_customers(
        self, customer_ids: list[str], pseudonym: str, *, user_ids: list[str] = (), anonymous_ids: list[str] = ()
    ) -> dict[str, int]:
        """Detach the lake from an erased person, as EventLog.erase_customers does; then the files that held them
        are deleted at once (readers that listed them fail and read again), so nothing of them stays stored."""
        con = duckdb.connect()
        with self.store.table("events") as table:
            con.register("events", self.store.dataset(table))
        con.register("ids", pa.table({"id": pa.array(list(customer_ids), pa.string())}))
        con.register("users", pa.table({"id": pa.array(list(user_ids), pa.string())}))
        rows = con.execute(
            "SELECT message_id, CAST(timestamp AS DATE), properties FROM events WHERE customer_id IN (SELECT id FROM ids) "
            "OR user_id IN (SELECT id FROM users)"
        ).fetchall()
        con.close()
        counts = {"events": len(rows)}
        if rows:
            renamed = []
            for message_id, _, _ in rows:
                for cid in customer_ids:
                    message_id = message_id.replace(cid, pseudonym)
                renamed.append(message_id)
            changes = pa.table(
                {
                    "old_id": [r[0] for r in rows],
                    "event_date": pa.array([r[1] for r in rows], pa.date32()),
                    "new_id": renamed,
                    "properties": [
                        orjson.dumps(analytics_properties(orjson.loads(r[2]) if r[2] else {})).decode() for r in rows
                    ],
                    "pseudonym": [pseudonym] * len(rows),
                }
            )
            update = {
                "message_id": "s.new_id",
                "customer_id": "s.pseudonym",
                "user_id": "CAST(NULL AS STRING)",
                "anonymous_id": "CAST(NULL AS STRING)",
                "context": "'{}'",
                "properties": "s.properties",
            }
            on = "t.event_date = s.event_date AND t.message_id = s.old_id"
            retry(lambda: self._merge("events", changes, on, update=update))
        if anonymous_ids:
            visitors = pa.table({"id": pa.array(list(anonymous_ids), pa.string())})
            update = {"anonymous_id": "CAST(NULL AS STRING)"}
            retry(lambda: self._merge("events", visitors, "t.anonymous_id = s.id", update=update))
        ids = pa.table({"customer_id": pa.array(list(customer_ids), pa.string())})
        on = "t.customer_id = s.customer_id"
        done = retry(lambda: self._merge("profiles", ids, on, delete=True))
        counts["profile_mirror"] = int(done.get("num_target_rows_deleted", 0))
        retry(lambda: self._merge("profile_consents", ids, on, delete=True))
        counts["traits"] = self._move_traits(customer_ids, pseudonym)
        for name in ["events", "profiles", "profile_consents", *(f"traits/{k}" for k in self.store.trait_kinds())]:
            with self.store.table(name) as table:
                table.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
        return counts

    def _move_traits(self, customer_ids: list[str], pseudonym: str) -> int:
        moved = 0
        for kind in self.store.trait_kinds():
            with self.store.table(f"traits/{kind}") as table:
                frame = table.to_pyarrow_table()
            ids = frame.column("customer_id").to_pandas()
            others = ids.isin(customer_ids[1:]) & (ids != customer_ids[0])
            first = ids == customer_ids[0]
            if not (others.any() or first.any()):
                continue
            kept = frame.filter(pa.array((~others).tolist()))
            ids = kept.column("customer_id").to_pandas().where(lambda s: s != customer_ids[0], pseudonym)
            kept = kept.set_column(
                kept.schema.get_field_index("customer_id"), "customer_id", pa.array(ids, pa.string())
            )
            self.save_traits(kind, kept.to_pandas(), kept.schema)
            moved += int(first.sum())
        return moved

    # -- reading: the same queries as the DuckDB file's, through the readers above -------------------

    customer_history = EventLog.customer_history
    customer_traits = EventLog.customer_traits
    count = EventLog.count
    customer_events = EventLog.customer_events
    traits = EventLog.traits
    latest = EventLog.latest
    last_profile_sync = EventLog.last_profile_sync

    def summary(self) -> dict[str, Any]:
        """Counts by event name, and the first and last event time (from the events: the lake keeps no rollup)."""
        with self.reader() as r:
            e = r.events
            counts = e.group_by("event").aggregate(n=e.count())
            by_event = counts.order_by([counts.n.desc(), "event"]).execute()
            span = e.aggregate(first=e.timestamp.min(), last=e.timestamp.max(), total=e.count()).execute()
        first, last, total = (span[c].iloc[0] for c in ("first", "last", "total"))
        return {
            "total": int(total),
            "by_event": dict(zip(by_event["event"], map(int, by_event["n"]))),
            "first": _moment(first),
            "last": _moment(last),
        }

    def revision(self) -> str | None:
        """Whether the lake's tables exist: 'lake' once they do."""
        return "lake" if self.store.exists("events") else None

    def fingerprint(self) -> tuple:
        """Changes whenever a table of the lake is written."""
        names = ["events", "profiles", "profile_consents", *(f"traits/{k}" for k in self.store.trait_kinds())]
        return tuple((name, self.store.version(name)) for name in names)


def _events(frame: pd.DataFrame) -> pa.Table:
    """The frame as the events table's rows: times cast as the DuckDB file casts them, the day beside."""
    con = duckdb.connect()
    con.register("incoming", pa.Table.from_pandas(frame, preserve_index=False))
    select = ", ".join(
        f"CAST({c} AS TIMESTAMP) AS {c}" if c in ("timestamp", "received_at") else f"CAST({c} AS VARCHAR) AS {c}"
        for c in EVENT_COLUMNS
    )
    table = con.sql(
        f"SELECT {select}, CAST(CAST(timestamp AS TIMESTAMP) AS DATE) AS event_date FROM incoming"
    ).to_arrow_table()
    con.close()
    return table.cast(EVENTS)


def _profiles(people: pd.DataFrame) -> pa.Table:
    con = duckdb.connect()
    con.register(
        "incoming", pa.Table.from_pandas(people.astype(object).where(people.notna(), None), preserve_index=False)
    )
    select = ", ".join(
        "coalesce(CAST(attributes AS VARCHAR), '{}') AS attributes"
        if c == "attributes"
        else f"CAST({c} AS {'DATE' if c == 'birthday' else 'TIMESTAMP' if c.endswith('_at') else 'VARCHAR'}) AS {c}"
        for c in PROFILE_COLUMNS
    )
    table = con.sql(f"SELECT {select} FROM incoming").to_arrow_table()
    con.close()
    return table.cast(PROFILES)
