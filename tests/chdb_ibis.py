"""An Ibis backend named "clickhouse" that runs the SQL of Ibis's ClickHouse compiler in chdb (ClickHouse
embedded in the process), for the tests.

Expressions bound to it compile with Ibis's own ClickHouse compiler, as for a ClickHouse server; only the
transport differs (a chdb session, not clickhouse-connect, which Ibis's ClickHouse backend needs even to be
imported). Tables are loaded from frames through Parquet; in-memory tables (ibis.memtable) are created in the
session when a query needs them.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.schema as sch
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from ibis.backends.sql import SQLBackend
from ibis.backends.sql.compilers.clickhouse import compiler as clickhouse
from ibis.formats.pandas import PandasData


class Chdb(SQLBackend):
    """Ibis's ClickHouse SQL, run in a chdb session kept in `folder`."""

    name = "clickhouse"
    compiler = clickhouse

    def __init__(self, folder: Path) -> None:
        super().__init__()
        from chdb import session  # noqa: PLC0415 - optional: the tests that use it skip without it

        self.folder = folder
        self.session = session.Session(str(folder / "chdb"))
        self.session.query("SET session_timezone = 'UTC'")  # timestamps without a zone are UTC, as in the log
        self._files = itertools.count()
        self._memtables: set[str] = set()

    def load(self, name: str, data: pd.DataFrame | pa.Table) -> ibis.Table:
        """Create table `name` from a frame (through Parquet, as ClickHouse reads files); returns it."""
        path = self.folder / f"{name}-{next(self._files)}.parquet"
        pq.write_table(data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False), path)
        self.session.query(f"DROP TABLE IF EXISTS {name}")
        self.session.query(f"CREATE TABLE {name} ENGINE = Memory AS SELECT * FROM file('{path}', Parquet)")
        return self.table(name)

    def close(self) -> None:
        self.session.close()

    # -- what Ibis asks of the backend -------------------------------------------------------------

    def get_schema(self, table_name: str, *, catalog: str | None = None, database: str | None = None) -> sch.Schema:
        described = self.session.query(f"DESCRIBE TABLE {table_name}", "DataFrame")
        types = {row["name"]: self.compiler.type_mapper.from_string(row["type"]) for _, row in described.iterrows()}
        # Parquet's times come back in UTC; the log's are UTC without a zone, and so are they here
        return sch.Schema({k: t.copy(timezone=None) if t.is_timestamp() else t for k, t in types.items()})

    def _create_memtables(self, expr: ibis.Expr) -> None:
        for op in expr.op().find(ibis.expr.operations.InMemoryTable):
            if op.name not in self._memtables:
                self.load(op.name, op.data.to_pyarrow(op.schema))
                self._memtables.add(op.name)

    def execute(self, expr: ibis.Expr, /, *, limit: Any = None, params: Any = None, **kwargs: Any) -> Any:
        table = expr.as_table()
        self._create_memtables(table)
        sql = self.compile(table, params=params, limit=limit)
        schema = table.schema()
        frame = self.session.query(sql, "DataFrame")
        frame = pd.DataFrame(columns=schema.names) if frame.empty else frame.set_axis(list(schema.names), axis=1)
        for name, dtype in schema.items():  # chdb gives times in the session's zone; the log's have none
            if dtype.is_timestamp() and dtype.timezone is None and isinstance(frame[name].dtype, pd.DatetimeTZDtype):
                frame[name] = frame[name].dt.tz_convert("UTC").dt.tz_localize(None)
        return expr.__pandas_result__(PandasData.convert_table(frame, schema=schema))

    def to_pyarrow(self, expr: ibis.Expr, /, *, limit: Any = None, params: Any = None, **kwargs: Any) -> Any:
        frame = self.execute(expr.as_table(), limit=limit, params=params)
        return expr.__pyarrow_result__(pa.Table.from_pandas(frame, preserve_index=False))

    def disconnect(self) -> None:
        with contextlib.suppress(Exception):
            self.session.close()

    @property
    def version(self) -> str:
        return str(self.session.query("SELECT version()", "CSV")).strip().strip('"')

    def do_connect(self, *args: Any, **kwargs: Any) -> None:
        """Connected at construction."""

    def list_tables(self, *, like: str | None = None, database: str | None = None) -> list[str]:
        names = self.session.query("SELECT name FROM system.tables WHERE database = currentDatabase()", "DataFrame")
        return self._filter_with_like(list(names["name"]), like)

    def _get_schema_using_query(self, query: str) -> sch.Schema:
        raise NotImplementedError("not needed by the tests")

    def _register_in_memory_table(self, op: Any) -> None:
        self.load(op.name, op.data.to_pyarrow(op.schema))

    def create_table(self, name: str, /, obj: Any = None, **kwargs: Any) -> ibis.Table:
        """A table from a frame, or from an expression computed in the session (temporary or not: the session
        is the test's)."""
        if not isinstance(obj, ibis.Table):
            return self.load(name, obj)
        self._create_memtables(obj)
        self.session.query(f"CREATE TABLE {name} ENGINE = Memory AS {self.compile(obj)}")
        return self.table(name)
