"""Readers of the lake: its tables as Ibis tables on DuckDB (one machine) or on Spark (a cluster).

Both read one version of each table, fixed when the reader opens: the files delta-rs lists for it, so that a
reader never sees a write half done nor files a compaction has replaced. DuckDB scans them through Arrow with the
JSON columns typed as JSON, as the DuckDB file keeps them; Spark reads the same Parquet files, JSON as text, as
the Spark tests always have.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from boomerang.events.lake_store import JSON_COLUMNS, PARTITION, SCHEMAS, Store
from boomerang.events.log import CONFIG
from boomerang.events.reader import Reader, trait_table

if TYPE_CHECKING:
    import ibis
    import pyarrow as pa
    from pyspark.sql import SparkSession

_SPARK: dict[str, SparkSession] = {}
_SPARK_LOCK = threading.Lock()
_READING = threading.RLock()


def _tables(store: Store) -> dict[str, str]:
    """Each table a reader shows, by the name it shows it under, with the lake table it reads."""
    names = {name: name for name in SCHEMAS}
    return names | {trait_table(kind): f"traits/{kind}" for kind in store.trait_kinds()}


def _kept(table: str, schema: pa.Schema) -> list[str]:
    """The columns a view shows: the events' partition column left out (it repeats the timestamp's day)."""
    return [name for name in schema.names if not (table == "events" and name == PARTITION)]


def _columns(table: str, schema: pa.Schema) -> str:
    """The select list of a DuckDB view, JSON typed as JSON."""
    return ", ".join(
        f"CAST({name} AS JSON) AS {name}" if name in JSON_COLUMNS else f'"{name}"' for name in _kept(table, schema)
    )


@contextmanager
def duckdb_reader(store: Store) -> Iterator[Reader]:
    """The lake's tables in an in-memory DuckDB, for the span of the block."""
    import ibis

    backend = ibis.duckdb.connect(**CONFIG)
    try:
        for shown, name in _tables(store).items():
            with store.table(name) as found:
                if found is None:
                    continue
                files = store.dataset(found)
            backend.con.register(f"lake_{shown}", files)
            backend.con.execute(f"CREATE VIEW {shown} AS SELECT {_columns(name, files.schema)} FROM lake_{shown}")
        yield Reader(backend)
    finally:
        backend.disconnect()


class SparkReader(Reader):
    """A Reader over a Spark session's temporary views."""

    def __init__(self, backend: ibis.BaseBackend, names: set[str]) -> None:
        self.backend = backend
        self._names = names


def spark_session(master: str, options: dict[str, str]) -> SparkSession:
    """This process's Spark session on `master` (started on first use, kept: starting one takes seconds)."""
    import os

    from pyspark.sql import SparkSession

    with _SPARK_LOCK:
        if master not in _SPARK:
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = (
                SparkSession.builder.master(master)
                .appName("boomerang")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.shuffle.partitions", "8")
            )
            for key, value in _s3a(options).items():
                builder = builder.config(key, value)
            _SPARK[master] = builder.getOrCreate()
            _SPARK[master].sparkContext.setLogLevel("ERROR")
        return _SPARK[master]


def stop_sessions() -> None:
    """Stop this process's Spark sessions, before their cluster goes away: a session left on a stopped master waits
    for executors forever, and Spark hands it to whoever asks for a session next in the process."""
    with _SPARK_LOCK:
        for session in _SPARK.values():
            session.stop()
        _SPARK.clear()


def _s3a(options: dict[str, str]) -> dict[str, str]:
    """Hadoop's S3A settings from delta-rs's (Spark reads s3:// through hadoop-aws, which the cluster must have)."""
    if not options:
        return {}
    conf = {"spark.hadoop.fs.s3a.path.style.access": "true"}
    if "AWS_ENDPOINT_URL" in options:
        conf["spark.hadoop.fs.s3a.endpoint"] = options["AWS_ENDPOINT_URL"]
    if "AWS_ACCESS_KEY_ID" in options:
        conf["spark.hadoop.fs.s3a.access.key"] = options["AWS_ACCESS_KEY_ID"]
        conf["spark.hadoop.fs.s3a.secret.key"] = options["AWS_SECRET_ACCESS_KEY"]
    return conf


@contextmanager
def spark_reader(store: Store, master: str) -> Iterator[Reader]:
    """The lake's tables as temporary views of this process's session: one reader at a time (Ibis registers its
    in-memory tables in that session whichever session it is given)."""
    import ibis
    from pyspark.sql.pandas.types import from_arrow_schema

    session = spark_session(master, store.options)
    with _READING:
        yield _spark_views(store, session, from_arrow_schema, ibis)


def _spark_views(store: Store, session: SparkSession, from_arrow_schema, ibis) -> Reader:
    names = set()
    for shown, name in _tables(store).items():
        with store.table(name) as found:
            if found is None:
                continue
            schema = found.to_pyarrow_dataset().schema
            files = [uri.replace("s3://", "s3a://", 1) for uri in found.file_uris()]
        kept = _kept(name, schema)
        spark_schema = from_arrow_schema(schema)
        if files:
            frame = session.read.schema(spark_schema).parquet(*files)
        else:
            frame = session.createDataFrame([], spark_schema)
        frame.select(*kept).createOrReplaceTempView(shown)
        names.add(shown)
    return SparkReader(ibis.pyspark.connect(session), names)
