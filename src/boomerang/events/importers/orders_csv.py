"""A shop's own orders export: one row per order line (or per order), its columns named by options.

Rows that share an order id make one order; its total is the sum of their amounts, and an order
that sums below zero is a refund (kept as a returned order of its own, as Online Retail's are).
A row without a customer makes an anonymous order. Dates with a UTC offset are taken as written;
dates without one are in `timezone`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from boomerang.catalog.feeds import category_path
from boomerang.catalog.feeds import currency as currency_code
from boomerang.core.errors import ValidationFailed
from boomerang.db import UnitOfWork
from boomerang.events import bulk
from boomerang.events.bulk import LoadResult
from boomerang.events.importers import NoProgress, Progress
from boomerang.events.importers.order_lines import chunks
from boomerang.events.log import EventLog

SOURCE = "orders-csv"
MAX_ERRORS = 50
OFFSET = r"(?:Z|[+-]\d\d:?\d\d)$"


def _read(path: Path, delimiter: str) -> pd.DataFrame:
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            return pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding)
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ValidationFailed([{"field": "file", "reason": f"not a readable CSV: {exc}"}]) from None
    raise ValidationFailed([{"field": "file", "reason": "neither UTF-8 nor windows-1251 text"}])


def _times(values: pd.Series, date_format: str | None, timezone: str) -> pd.Series:
    """Naive UTC times; NaT where a value does not parse."""
    fmt = date_format or "ISO8601"
    aware = values.str.contains(OFFSET, na=False)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    if aware.any():
        parsed = pd.to_datetime(values[aware], format=fmt, errors="coerce", utc=True)
        out[aware] = parsed.dt.tz_localize(None)
    if (~aware).any():
        parsed = pd.to_datetime(values[~aware], format=fmt, errors="coerce")
        local = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
        out[~aware] = local.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


class _Rows:
    """Per-row checks, gathered and raised together."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame, self.errors = frame, []

    def bad(self, mask: pd.Series, option: str, column: str, reason: str) -> None:
        for row in self.frame.index[mask][: MAX_ERRORS - len(self.errors)]:
            value = self.frame.at[row, column]
            self.errors.append(
                {"field": f"rows[{row}].{column}", "line": int(row) + 2, "reason": f"{value!r} {reason} (--{option})"}
            )

    def number(self, option: str, column: str | None, default: float | None = None) -> pd.Series:
        if column is None:
            return pd.Series(default, index=self.frame.index, dtype=float)
        text = self.frame[column].str.replace(r"[\s\u00a0]", "", regex=True)
        text = text.where(text.str.contains(r"\.", na=False), text.str.replace(",", ".", regex=False))
        parsed = pd.to_numeric(text, errors="coerce")
        self.bad(parsed.isna(), option, column, "is not a number")
        return parsed

    def check(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


def read(
    path: Path,
    *,
    customer: str,
    date: str,
    amount: str,
    order_id: str,
    product: str | None = None,
    quantity: str | None = None,
    price: str | None = None,
    name: str | None = None,
    category: str | None = None,
    date_format: str | None = None,
    delimiter: str = ",",
    timezone: str = "UTC",
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The file as order lines (see order_lines.LINE_COLUMNS) and, with --product, its products."""
    frame = _read(path, delimiter)
    options = {
        "customer": customer,
        "date": date,
        "amount": amount,
        "order-id": order_id,
        "product": product,
        "quantity": quantity,
        "price": price,
        "name": name,
        "category": category,
    }
    missing = [
        {"field": f"--{o}", "reason": f"no column {c!r} in the file (columns: {', '.join(frame.columns)})"}
        for o, c in options.items()
        if c is not None and c not in frame
    ]
    if missing:
        raise ValidationFailed(missing)
    try:
        pd.Timestamp.now(tz=timezone)
    except Exception:  # noqa: BLE001 - zoneinfo and pytz raise different errors for an unknown zone
        raise ValidationFailed([{"field": "--timezone", "reason": f"unknown time zone {timezone!r}"}]) from None
    rows = _Rows(frame)
    rows.bad(frame[order_id].isna(), "order-id", order_id, "is empty")
    placed = _times(frame[date], date_format, timezone)
    rows.bad(placed.isna(), "date", date, f"is not a date ({date_format or 'ISO 8601'})")
    amounts = rows.number("amount", amount)
    quantities = rows.number("quantity", quantity, default=1.0)
    rows.bad((quantities == 0) & (amounts.abs() >= 0.005), "quantity", quantity or "", "is zero but the amount is not")
    prices = rows.number("price", price) if price else None
    owners = frame.groupby(order_id)[customer].nunique()
    rows.bad(frame[order_id].isin(owners.index[owners > 1]), "customer", customer, "differs between rows of one order")
    rows.check()
    totals = amounts.groupby(frame[order_id]).transform("sum")
    lines = pd.DataFrame(
        {
            "order_id": frame[order_id],
            "external_id": frame[customer],
            "placed_at": placed,
            "sku": frame[product] if product else None,
            "name": frame[name] if name else None,
            "category": frame[category].map(category_path, na_action="ignore") if category else None,
            "quantity": quantities,
            "unit_price": (amounts / quantities).where(quantities != 0, 0.0),
            "role": "product" if product else "other",
            "refund": totals < 0,
        }
    )
    if product:
        lines.loc[lines["sku"].isna(), "role"] = "other"
    return lines, _products(lines, prices) if product else None


def _products(lines: pd.DataFrame, prices: pd.Series | None) -> pd.DataFrame:
    """Each sku's latest name, category and price (the --price column, else what it last sold for)."""
    items = lines.assign(price=prices if prices is not None else lines["unit_price"].abs())
    sold = (items["role"] == "product") & (items["quantity"] != 0) & ~items["refund"]
    items = items[sold].sort_values("placed_at", kind="stable")
    latest = items.groupby("sku")[["name", "category", "price"]].last().reset_index()
    latest["in_stock"] = True
    return latest


def run(
    uow: UnitOfWork,
    log: EventLog,
    path: Path,
    *,
    now: datetime,
    progress: Progress | None = None,
    currency: str | None = None,
    **columns,
) -> LoadResult:
    """Import the file; importing it again changes nothing."""
    progress = progress or NoProgress()
    if currency is not None:
        try:
            currency = currency_code(currency)
        except ValueError as exc:
            raise ValidationFailed([{"field": "--currency", "reason": str(exc)}]) from None
    lines, products = read(Path(path), **columns)
    if products is not None:
        products["currency"] = currency
    result = LoadResult(extra={"rows": len(lines), "refunds": int(lines.loc[lines["refund"], "order_id"].nunique())})
    progress.start(len(lines), f"order lines from {Path(path).name}")
    for chunk, size in chunks(lines, source=SOURCE, currency=currency, products=products):
        result.add(bulk.load(uow, log, chunk, source=SOURCE, now=now))
        progress.advance(size)
    return result
