"""The UCI Online Retail invoice file (InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice,
CustomerID, Country), as orders, refunds, products and customers.

- An invoice is an order; a "C" invoice is a refund (it names no original invoice, so it is kept as a
  returned order of its own and nets out of revenue); rows without a CustomerID make anonymous orders.
- Postage, carriage, discounts, fees, manual lines and gift vouchers are order lines, never products.
- "A" invoices (bad-debt adjustments) and invoices whose every line takes stock out at no price
  (write-offs, never a customer) are accounting, not orders: they are counted and skipped.
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

COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
ROLES = {"POST": "shipping", "DOT": "shipping", "C2": "shipping", "D": "discount"}
NOT_PRODUCTS = {"M", "m", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK"}  # fees, samples, manual entries
SOURCE = "online-retail"


def read(path: Path, timezone: str = "Europe/London") -> pd.DataFrame:
    """The file as a frame, checked; times converted from the shop's local time to UTC."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValidationFailed([{"field": "file", "reason": f"not a readable CSV: {exc}"}]) from None
    missing = [c for c in COLUMNS if c not in frame]
    if missing:
        raise ValidationFailed([{"field": "header", "reason": f"missing column {c}"} for c in missing])
    errors = []
    quantity = pd.to_numeric(frame["Quantity"], errors="coerce")
    price = pd.to_numeric(frame["UnitPrice"], errors="coerce")
    placed = pd.to_datetime(frame["InvoiceDate"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    for name, parsed in (("Quantity", quantity), ("UnitPrice", price), ("InvoiceDate", placed)):
        for row in frame.index[parsed.isna()][:10]:
            errors.append(
                {"field": f"rows[{row}].{name}", "reason": f"{frame.at[row, name]!r} is not valid", "line": row + 2}
            )
    for row in frame.index[frame["InvoiceNo"].isna() | frame["StockCode"].isna()][:10]:
        errors.append({"field": f"rows[{row}]", "reason": "InvoiceNo and StockCode are required", "line": row + 2})
    if errors:
        raise ValidationFailed(errors)
    frame["Quantity"], frame["UnitPrice"] = quantity, price
    local = placed.dt.tz_localize(timezone, ambiguous=False, nonexistent="shift_forward")
    frame["InvoiceDate"] = local.dt.tz_convert("UTC").dt.tz_localize(None)
    # CustomerID is written as a float ("17850.0"); the id is the integer.
    frame["CustomerID"] = frame["CustomerID"].str.removesuffix(".0")
    return frame


def _role(codes: pd.Series) -> pd.Series:
    role = codes.map(ROLES).fillna("product")
    other = codes.isin(NOT_PRODUCTS) | codes.str.startswith("gift_")
    return role.where(~other, "other")


def _adjustments(frame: pd.DataFrame) -> pd.Series:
    """Rows of invoices that are accounting entries rather than sales."""
    write_off = (frame["Quantity"] <= 0) & (frame["UnitPrice"] == 0) & frame["CustomerID"].isna()
    all_write_off = write_off.groupby(frame["InvoiceNo"]).transform("all")
    cancelled = frame["InvoiceNo"].str.startswith("C")
    return frame["InvoiceNo"].str.startswith("A") | (all_write_off & ~cancelled)


def _products(frame: pd.DataFrame) -> pd.DataFrame:
    """One product per stock code: its most frequent description and its latest positive price."""
    rows = frame[frame["role"] == "product"]
    names = rows.dropna(subset=["Description"]).groupby("StockCode")["Description"].agg(lambda s: s.mode().iloc[0])
    priced = rows[rows["UnitPrice"] > 0].sort_values("InvoiceDate", kind="stable")
    prices = priced.groupby("StockCode")["UnitPrice"].last()
    products = pd.DataFrame({"sku": sorted(rows["StockCode"].unique())})
    products["name"] = products["sku"].map(names)
    products["price"] = products["sku"].map(prices)
    products["currency"] = "GBP"
    products["in_stock"] = True
    return products


def run(
    uow: UnitOfWork,
    log: EventLog,
    path: Path,
    *,
    now: datetime,
    progress: Progress | None = None,
    timezone: str = "Europe/London",
) -> LoadResult:
    """Import the file; importing it again changes nothing."""
    progress = progress or NoProgress()
    frame = read(Path(path), timezone)
    skipped = _adjustments(frame)
    rows_total = len(frame)
    frame = frame[~skipped].copy()
    frame["role"] = _role(frame["StockCode"])
    customers = (
        frame.dropna(subset=["CustomerID"])
        .sort_values("InvoiceDate", kind="stable")
        .groupby("CustomerID")["Country"]
        .last()
        .rename_axis("external_id")
        .rename("country")
        .reset_index()
    )
    product = frame["role"] == "product"
    lines = pd.DataFrame(
        {
            "order_id": frame["InvoiceNo"],
            "external_id": frame["CustomerID"],
            "placed_at": frame["InvoiceDate"],
            "sku": frame["StockCode"].where(product, None),
            "name": frame["Description"],
            "category": None,
            "quantity": frame["Quantity"].astype(float),
            "unit_price": frame["UnitPrice"],
            "role": frame["role"],
            "refund": frame["InvoiceNo"].str.startswith("C"),
        }
    )
    result = LoadResult(
        extra={
            "rows": rows_total,
            "skipped_adjustment_rows": int(skipped.sum()),
            "refunds": int(lines.loc[lines["refund"], "order_id"].nunique()),
            "anonymous_orders": int(lines.loc[lines["external_id"].isna() & ~lines["refund"], "order_id"].nunique()),
        }
    )
    progress.start(len(lines), f"invoice lines from {Path(path).name}")
    for chunk, size in chunks(lines, source=SOURCE, currency="GBP", customers=customers, products=_products(frame)):
        result.add(bulk.load(uow, log, chunk, source=SOURCE, now=now))
        progress.advance(size)
    return result
