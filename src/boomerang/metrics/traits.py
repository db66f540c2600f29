"""Per-customer results of analytics (RFM group, lifecycle stage, predictions), kept beside the event log.

Each kind is one DuckDB table, `trait_<kind>`, replaced whole when recomputed, keyed by customer_id,
so segments, journeys and the dashboard read the latest computation with one join.
"""

from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa

from boomerang.bootstrap import Workspace

_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def table_name(kind: str) -> str:
    if not _NAME.fullmatch(kind):
        raise ValueError(f"trait kind {kind!r} must be lower-case letters, digits and _")
    return f"trait_{kind}"


def save(ws: Workspace, kind: str, frame: pd.DataFrame) -> int:
    """Replace the stored traits of this kind with `frame` (one row per customer_id); returns the row count."""
    if "customer_id" not in frame:
        raise ValueError("traits need a customer_id column")
    name = table_name(kind)
    with ws.log.connect() as conn:
        conn.register("incoming_traits", pa.Table.from_pandas(frame, preserve_index=False))
        try:
            conn.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM incoming_traits")
        finally:
            conn.unregister("incoming_traits")
    return len(frame)


def load(ws: Workspace, kind: str, customer_ids: list[str] | None = None) -> pd.DataFrame | None:
    """The stored traits of this kind (of some customers only, if given); None when never computed."""
    name = table_name(kind)
    with ws.log.connect() as conn:
        found = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[
            0
        ]
        if not found:
            return None
        if customer_ids is None:
            return conn.execute(f"SELECT * FROM {name}").df()
        return conn.execute(f"SELECT * FROM {name} WHERE customer_id IN (SELECT unnest(?))", [customer_ids]).df()
