"""The CDNOW purchase log of Fader, Hardie & Lee (2005): CDNOW_master.txt or CDNOW_sample.txt.

Each row is one purchase (a customer, a day, a number of CDs, a dollar value) and becomes one
order of one line. The sample file carries the master file's customer ids too, and an order's id
is the master id, the day and the row's position among that customer's rows of that day, so the
sample and the master file can both be imported into one workspace without counting a purchase twice.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from boomerang.core.errors import ValidationFailed
from boomerang.db import UnitOfWork
from boomerang.events import bulk
from boomerang.events.bulk import LoadResult
from boomerang.events.importers import NoProgress, Progress
from boomerang.events.importers.order_lines import chunks
from boomerang.events.log import EventLog

SOURCE = "cdnow"
MASTER = ["customer_id", "date", "number_of_cds", "dollar_value"]
SAMPLE = ["customer_id", "sample_id", "date", "number_of_cds", "dollar_value"]


def read(path: Path) -> pd.DataFrame:
    """Either file as customer_id, date, number_of_cds, dollar_value; every row checked."""
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, engine="python")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValidationFailed([{"field": "file", "reason": f"not a CDNOW file: {exc}"}]) from None
    if frame.shape[1] not in (len(MASTER), len(SAMPLE)):
        raise ValidationFailed(
            [{"field": "file", "reason": f"expected 4 (master) or 5 (sample) columns, found {frame.shape[1]}"}]
        )
    frame.columns = MASTER if frame.shape[1] == len(MASTER) else SAMPLE
    if frame.iloc[0]["customer_id"] == "customer_id":  # the header that lifetimes' copy added
        frame = frame.iloc[1:]
    placed = pd.to_datetime(frame["date"], format="%Y%m%d", errors="coerce")
    cds = pd.to_numeric(frame["number_of_cds"], errors="coerce")
    value = pd.to_numeric(frame["dollar_value"], errors="coerce")
    errors = [
        {"field": f"rows[{row}].{name}", "reason": f"{frame.at[row, name]!r} is not valid", "line": int(row) + 1}
        for name, parsed in (("date", placed), ("number_of_cds", cds), ("dollar_value", value))
        for row in frame.index[parsed.isna() | (parsed < 0 if name != "date" else False)][:10]
    ]
    if errors:
        raise ValidationFailed(errors)
    return pd.DataFrame({"customer_id": frame["customer_id"], "date": placed, "cds": cds, "value": value})


def run(uow: UnitOfWork, log: EventLog, path: Path, *, now: datetime, progress: Progress | None = None) -> LoadResult:
    """Import a CDNOW file; importing it again (or the other file) stores no purchase twice."""
    progress = progress or NoProgress()
    frame = read(Path(path))
    nth = frame.groupby(["customer_id", "date"]).cumcount()
    cds = frame["cds"].where(frame["cds"] > 0, 1).astype(float)
    lines = pd.DataFrame(
        {
            "order_id": "cdnow-"
            + frame["customer_id"]
            + "-"
            + frame["date"].dt.strftime("%Y%m%d")
            + "-"
            + nth.astype(str),
            "external_id": frame["customer_id"],
            "placed_at": frame["date"],
            "sku": None,
            "name": "CD",
            "category": "Music > CDs",
            "quantity": cds,
            "unit_price": frame["value"] / cds,
            "role": "other",
            "refund": False,
        }
    )
    result = LoadResult(extra={"rows": len(frame)})
    progress.start(len(lines), f"purchases from {Path(path).name}")
    for chunk, size in chunks(lines, source=SOURCE, currency="USD"):
        result.add(bulk.load(uow, log, chunk, source=SOURCE, now=now))
        progress.advance(size)
    return result
