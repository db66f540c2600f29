"""Orders given as a frame of lines, cut into loadable chunks of customers, orders, lines and events.

The order importers (Online Retail, CDNOW, a generic CSV) read their files into one frame of
LINE_COLUMNS and leave the rest to `chunks`: order totals, statuses, refunds and the Order
Completed / Order Refunded events that put the orders into the event log. Every id is derived
from the file (order id, message id), so importing the same file twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from boomerang.events.bulk import Chunk

LINE_COLUMNS = [
    "order_id",
    "external_id",
    "placed_at",
    "sku",
    "name",
    "category",
    "quantity",
    "unit_price",
    "role",
    "refund",
]
ROLES = ("product", "shipping", "discount", "other")  # only product lines have a sku and name a product


def chunks(
    lines: pd.DataFrame,
    *,
    source: str,
    currency: str | None,
    customers: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
    chunk_lines: int = 50_000,
) -> Iterator[tuple[Chunk, int]]:
    """Chunks of whole customers (and of anonymous orders), each with how many file lines it carries.

    `lines` has LINE_COLUMNS (placed_at naive UTC; refund True for every line of a refund order);
    `customers` has external_id and profile columns; `products` (sku, ...) goes into the first chunk.
    """
    order_time = lines.groupby("order_id")["placed_at"].transform("min")
    lines = lines.assign(_at=order_time).sort_values(
        ["external_id", "_at", "order_id"], kind="stable", na_position="last"
    )
    lines = lines.drop(columns="_at").reset_index(drop=True)
    bounds = _boundaries(lines, chunk_lines)
    for number, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        part = lines.iloc[start:stop]
        ids = part["external_id"].dropna().unique()
        chunk = Chunk(
            customers=_customers(ids, customers),
            products=products if number == 0 else None,
            orders=None,
            lines=None,
            events=None,
        )
        chunk.orders, chunk.lines, chunk.events = _orders(part, source=source, currency=currency)
        yield chunk, len(part)
    if len(bounds) < 2 and products is not None:
        yield Chunk(products=products), 0


def _boundaries(lines: pd.DataFrame, size: int) -> list[int]:
    """Cut points near every `size` lines that split neither a customer nor an anonymous order."""
    n = len(lines)
    if n == 0:
        return [0]
    owner = lines["external_id"].fillna("\0" + lines["order_id"])
    changes = np.flatnonzero(owner.ne(owner.shift()).to_numpy())
    cuts, next_at = [0], size
    for at in changes:
        if at >= next_at:
            cuts.append(int(at))
            next_at = at + size
    return [*cuts, n]


def _customers(ids, customers: pd.DataFrame | None) -> pd.DataFrame | None:
    if len(ids) == 0:
        return None
    if customers is None:
        return pd.DataFrame({"external_id": ids})
    return customers[customers["external_id"].isin(ids)]


def _orders(
    part: pd.DataFrame, *, source: str, currency: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    amount = (part["quantity"] * part["unit_price"]).round(4)
    by_order = part.assign(
        amount=amount,
        shipping=amount.where(part["role"] == "shipping", 0.0),
        discount=-amount.where(part["role"] == "discount", 0.0),
    ).groupby("order_id", sort=False)
    orders = (
        by_order.agg(
            external_id=("external_id", "first"),
            placed_at=("placed_at", "min"),
            refund=("refund", "first"),
            total=("amount", "sum"),
            shipping=("shipping", "sum"),
            discount=("discount", "sum"),
        )
        .reset_index()
        .rename(columns={"order_id": "id"})
    )
    orders["total"] = orders["total"].round(2)
    refunds = orders["refund"].to_numpy()
    orders["refunded_total"] = np.where(refunds, -orders["total"], 0.0)
    orders["total"] = np.where(refunds, 0.0, orders["total"])
    orders["status"] = np.where(refunds, "returned", "paid")
    orders["shipping"] = orders["shipping"].round(2).where(orders["shipping"] != 0)
    orders["discount"] = orders["discount"].round(2).where(orders["discount"] != 0)
    orders["currency"] = currency
    orders["source"] = source
    orders["external_id"] = orders["external_id"].astype(object).where(orders["external_id"].notna(), None)
    events = _events(orders, part, source=source, currency=currency)
    lines = part[["order_id", "sku", "name", "category", "quantity", "unit_price"]].copy()
    lines["line_no"] = lines.groupby("order_id", sort=False).cumcount()
    return orders.drop(columns=["refund"]), lines, events


def _events(orders: pd.DataFrame, part: pd.DataFrame, *, source: str, currency: str | None) -> pd.DataFrame:
    """One Order Completed (or Order Refunded) event per order, with its product lines."""
    products: dict[str, list[dict]] = {}
    items = part[part["role"] == "product"]
    columns = [
        items[c].astype(object).where(items[c].notna(), None).tolist()
        for c in ("order_id", "sku", "name", "category", "quantity", "unit_price")
    ]
    for order_id, sku, name, category, quantity, price in zip(*columns):
        item = {"sku": sku, "name": name, "quantity": abs(quantity), "price": price}
        if category is not None:
            item["category"] = category
        products.setdefault(order_id, []).append(item)
    properties = []
    for order_id, refund, total, refunded, shipping, discount in orders[
        ["id", "refund", "total", "refunded_total", "shipping", "discount"]
    ].itertuples(index=False, name=None):
        props = {
            "order_id": order_id,
            "total": refunded if refund else total,
            "currency": currency,
            "products": products.get(order_id, []),
        }
        if not refund:
            props["revenue"] = total
        if pd.notna(shipping):
            props["shipping"] = abs(shipping)
        if pd.notna(discount):
            props["discount"] = abs(discount)
        properties.append({k: v for k, v in props.items() if v is not None})
    refund = orders["refund"].to_numpy()
    return pd.DataFrame(
        {
            "message_id": [f"{source}:{'refund' if r else 'order'}:{oid}" for oid, r in zip(orders["id"], refund)],
            "type": "track",
            "event": np.where(refund, "Order Refunded", "Order Completed"),
            "timestamp": orders["placed_at"].to_numpy(),
            "properties": properties,
            "external_id": orders["external_id"].to_numpy(),
        }
    )
