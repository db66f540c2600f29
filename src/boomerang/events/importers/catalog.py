"""Catalog feeds (CSV or YML): the whole file is parsed and checked, then products are upserted by sku."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from boomerang.catalog import feeds
from boomerang.catalog.models import Product
from boomerang.core.errors import ValidationFailed
from boomerang.db import UnitOfWork, in_chunks
from boomerang.events import bulk
from boomerang.events.bulk import LoadResult
from boomerang.events.importers import NoProgress, Progress
from boomerang.events.log import EventLog

CHUNK = 5000
PARSERS = {"csv": feeds.parse_csv, "yml": feeds.parse_yml}
SUFFIXES = {".csv": "csv", ".yml": "yml", ".xml": "yml"}
YML_NAMES = {"sku": "id", "brand": "vendor", "image_url": "picture"}  # how a YML feed names the columns


def detect(path: Path) -> str:
    """csv or yml, from the file name (.csv, .yml, .xml, each maybe .gz) or else from its first bytes."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".gz"]:
        suffixes.pop()
    if suffixes and suffixes[-1] in SUFFIXES:
        return SUFFIXES[suffixes[-1]]
    with feeds.open_feed(path) as handle:
        head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "yml" if head.startswith(b"<") else "csv"


def _check_lengths(frame: pd.DataFrame, fmt: str) -> None:
    """Every text fits its column, so that no chunk fails half-way through the import."""
    errors, where = [], "offers" if fmt == "yml" else "rows"
    for column in Product.__table__.columns:
        size = getattr(column.type, "length", None)
        if size is None or column.name not in frame:
            continue
        for index in frame.index[frame[column.name].str.len() > size]:
            name = YML_NAMES.get(column.name, column.name) if fmt == "yml" else column.name
            errors.append({"field": f"{where}[{index}].{name}", "reason": f"is longer than {size} characters"})
    if errors:
        raise ValidationFailed(errors[: feeds.MAX_ERRORS])


def _stored(uow: UnitOfWork, frame: pd.DataFrame) -> dict[str, tuple]:
    """The stored products that the feed names, as tuples of the frame's columns."""
    columns = [Product.__table__.c[name] for name in frame.columns]
    with uow.session() as session:
        rows = in_chunks(session, lambda skus: sa.select(*columns).where(Product.sku.in_(skus)), frame["sku"])
    return {row[0]: tuple(row) for row in rows}


def run(
    uow: UnitOfWork,
    log: EventLog,
    path: Path,
    *,
    now: datetime,
    progress: Progress | None = None,
    format: str | None = None,
) -> LoadResult:
    """Import a product feed; only new and changed products are written, so the same feed twice changes nothing."""
    path, progress = Path(path), progress or NoProgress()
    fmt = (format or detect(path)).lower()
    if fmt not in PARSERS:
        raise ValidationFailed([{"field": "format", "reason": f"{format!r} is not one of csv, yml"}])
    frame = PARSERS[fmt](path)
    _check_lengths(frame, fmt)
    stored = _stored(uow, frame)
    records = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    changed = frame[[stored.get(record[0]) != record for record in records]]
    created = int((~changed["sku"].isin(list(stored))).sum())
    result = LoadResult(
        extra={
            "format": fmt,
            "created": created,
            "updated": len(changed) - created,
            "unchanged": len(frame) - len(changed),
        }
    )
    progress.start(len(changed), f"products from {path.name}")
    for start in range(0, len(changed), CHUNK):
        part = changed.iloc[start : start + CHUNK]
        result.add(bulk.load(uow, log, bulk.Chunk(products=part), source="catalog", now=now))
        progress.advance(len(part))
    return result
