"""Where metrics run: the workspace's DuckDB event log by default, or any Ibis backend holding an events table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import ibis

from boomerang.bootstrap import Workspace
from boomerang.events.log import CONFIG


@contextmanager
def log_backend(ws: Workspace) -> Iterator[ibis.BaseBackend]:
    """The event log's DuckDB file as an Ibis backend, read-only, for the span of the block.

    DuckDB lets no other process in while one writes: the connection waits for the pipeline's
    flush to finish and is closed right after, so that the next flush is not held up for long.
    """
    con = ws.log.when_free(lambda: ibis.duckdb.connect(str(ws.log.path), read_only=True, **CONFIG))
    try:
        yield con
    finally:
        con.disconnect()


@contextmanager
def events_table(ws: Workspace) -> Iterator[ibis.Table]:
    """The event log as an Ibis table, read-only, for the span of the block."""
    with log_backend(ws) as con:
        yield con.table("events")
