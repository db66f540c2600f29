"""The lake's storage: Delta tables (partitioned Parquet and a commit log, by delta-rs) on a path or S3.

Each table of the DuckDB file has a Delta table of its own under the lake's root: `events` (partitioned by the
event's date), `profiles`, `profile_consents`, `profile_sync`, and `traits/<kind>`. delta-rs commits each write
as one new log entry, written only if that version does not exist yet (a rename on a path, a conditional put on
S3), so several processes append at once and readers never see half a write; a writer that lost the race reruns
its write over the newer version (`retry`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from boomerang.core.vocab import PROFILE_FIELDS

T = TypeVar("T")
JSON_COLUMNS = ("properties", "context", "attributes")  # JSON kept as text in the files, as Spark keeps it
PARTITION = "event_date"  # the events' partition: the day of `timestamp`
EVENTS = pa.schema(
    [
        ("message_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("customer_id", pa.string()),
        ("anonymous_id", pa.string()),
        ("user_id", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("received_at", pa.timestamp("us")),
        ("source", pa.string()),
        ("properties", pa.string()),
        ("context", pa.string()),
        (PARTITION, pa.date32()),
    ]
)
PROFILES = pa.schema(
    [("customer_id", pa.string())]
    + [(name, pa.date32() if kind == "date" else pa.string()) for name, kind in PROFILE_FIELDS.items()]
    + [(name, pa.timestamp("us")) for name in ("first_seen_at", "last_seen_at", "created_at")]
    + [("attributes", pa.string())]
)
CONSENTS = pa.schema([("customer_id", pa.string()), ("channel", pa.string()), ("granted", pa.bool_())])
SYNC = pa.schema([("synced_at", pa.timestamp("us"))])
SCHEMAS = {"events": EVENTS, "profiles": PROFILES, "profile_consents": CONSENTS, "profile_sync": SYNC}
# no min/max statistics of ids in the commit log: an erased customer's id must not outlive its files there
UNINDEXED = {"delta.dataSkippingStatsColumns": "type,event,timestamp,received_at,source,channel,synced_at"}
ATTEMPTS = 20  # commits lost to other writers before a write gives up


@dataclass
class Store:
    """The lake's root (a folder or s3://bucket/prefix) and how to reach it."""

    root: str
    options: dict[str, str] = field(default_factory=dict)  # delta-rs storage options (S3 endpoint and keys)
    _tables: dict[str, DeltaTable] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @classmethod
    def at(cls, root: str, *, endpoint: str | None = None, region: str = "us-east-1", key_id=None, secret=None):
        if not root.startswith("s3://"):
            return cls(root.rstrip("/"))
        options = {"AWS_REGION": region, "conditional_put": "etag"}  # S3's If-None-Match: one writer per version
        if endpoint:
            options |= {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": str(endpoint.startswith("http:")).lower()}
        if key_id and secret:
            options |= {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
        return cls(root.rstrip("/"), options)

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}"

    def create(self) -> None:
        """Make the tables that are missing (the events partitioned by day)."""
        for name, schema in SCHEMAS.items():
            if not self.exists(name):
                DeltaTable.create(
                    self.uri(name),
                    schema=schema,
                    partition_by=[PARTITION] if name == "events" else None,
                    configuration=UNINDEXED,
                    mode="ignore",
                    storage_options=self.options,
                )

    @contextmanager
    def table(self, name: str) -> Iterator[DeltaTable | None]:
        """The table at its newest version, or None when it does not exist; this process's other users of it wait
        meanwhile (one delta-rs handle per table, kept open and brought up to date)."""
        with self._lock:
            table = self._tables.get(name)
            try:
                if table is None:
                    table = self._tables[name] = DeltaTable(self.uri(name), storage_options=self.options)
                else:
                    table.update_incremental()
            except TableNotFoundError:
                table = None
            yield table

    def exists(self, name: str) -> bool:
        with self.table(name) as found:
            return found is not None

    def trait_kinds(self) -> list[str]:
        """The kinds under traits/ (a folder each)."""
        fs, base = self._filesystem()
        try:
            found = fs.get_file_info(pafs.FileSelector(f"{base}/traits", allow_not_found=True))
        except FileNotFoundError:
            return []
        return sorted(info.base_name for info in found if info.type == pafs.FileType.Directory)

    def dataset(self, table: DeltaTable) -> ds.Dataset:
        """The table's current files as one Arrow dataset (without the partition column, which is in the path), text
        read as string views: DuckDB pushes filters down as string views, which Arrow cannot compare with strings."""
        schema = table.to_pyarrow_dataset().schema
        if PARTITION in schema.names:
            schema = schema.remove(schema.get_field_index(PARTITION))
        schema = pa.schema([f.with_type(pa.string_view()) if f.type == pa.string() else f for f in schema])
        fs, _ = self._filesystem()
        files = [uri.removeprefix("s3://").removeprefix("file://") for uri in table.file_uris()]
        return ds.dataset(files, schema=schema, format="parquet", filesystem=fs)

    def _filesystem(self) -> tuple[pafs.FileSystem, str]:
        if not self.root.startswith("s3://"):
            return pafs.LocalFileSystem(), self.root
        o = self.options
        endpoint = o.get("AWS_ENDPOINT_URL", "")
        fs = pafs.S3FileSystem(
            access_key=o.get("AWS_ACCESS_KEY_ID"),
            secret_key=o.get("AWS_SECRET_ACCESS_KEY"),
            region=o["AWS_REGION"],
            endpoint_override=endpoint.split("://", 1)[-1] or None,
            scheme="http" if endpoint.startswith("http:") else "https",
        )
        return fs, self.root.removeprefix("s3://")

    def version(self, name: str) -> int | None:
        with self.table(name) as found:
            return None if found is None else found.version()


def retry(write: Callable[[], T]) -> T:
    """Run a write until its commit lands: another process's commit in between makes it read again and redo."""
    delay = 0.01
    for attempt in range(ATTEMPTS):
        try:
            return write()
        except CommitFailedError:
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    raise AssertionError("unreachable")
