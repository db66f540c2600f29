"""Bulk loading of whole frames of customers, products, orders and events (importers, the demo).

One call writes one chunk: the operational rows in one transaction, then the events into the log.
Everything is keyed (external id, sku, order id, message id), so loading the same chunk twice
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import orjson
import pandas as pd
import sqlalchemy as sa

from boomerang.catalog import changes
from boomerang.catalog.models import Product
from boomerang.core.privacy import SUPPRESSIBLE
from boomerang.core.vocab import CHANNELS, PROFILE_FIELDS
from boomerang.customers import bulk as customers_bulk
from boomerang.customers.models import Customer
from boomerang.customers.privacy import suppressed
from boomerang.db import UnitOfWork, chunked, upsert
from boomerang.events import effects
from boomerang.events.log import EVENT_COLUMNS, EventLog
from boomerang.loyalty import orders as loyalty
from boomerang.orders.models import Order, OrderLine


@dataclass
class Chunk:
    """Frames to load together. Customers are named by `external_id` everywhere.

    - customers: external_id, then any of the profile fields (core.vocab.PROFILE_FIELDS)
    - products: sku, then any Product column
    - orders: id, external_id (empty for an anonymous order), status, placed_at, total, and any Order column
    - lines: order_id, line_no, sku, name, category, quantity, unit_price
    - events: message_id, type, event, timestamp, properties (dict), external_id and/or anonymous_id
    """

    customers: pd.DataFrame | None = None
    products: pd.DataFrame | None = None
    orders: pd.DataFrame | None = None
    lines: pd.DataFrame | None = None
    events: pd.DataFrame | None = None


@dataclass
class LoadResult:
    customers: int = 0
    products: int = 0
    orders: int = 0
    lines: int = 0
    events_new: int = 0
    extra: dict = field(default_factory=dict)

    def add(self, other: LoadResult) -> None:
        for name in ("customers", "products", "orders", "lines", "events_new"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts with None for missing values (pandas' NA does not bind)."""
    columns = {name: frame[name].astype(object).where(frame[name].notna(), None).tolist() for name in frame}
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def load(uow: UnitOfWork, log: EventLog, chunk: Chunk, *, source: str, now: datetime) -> LoadResult:
    """Write one chunk; returns how many rows of each kind it carried (events: how many were new)."""
    result = LoadResult()
    events = None
    with uow.session() as session:
        external_ids: set[str] = set()
        for frame in (chunk.customers, chunk.orders, chunk.events):
            if frame is not None and "external_id" in frame:
                external_ids.update(frame["external_id"].dropna().astype(str))
        ids = customers_bulk.ensure(session, "user", external_ids, now=now)

        if chunk.customers is not None and not chunk.customers.empty:
            _profiles(session, chunk.customers, ids, now=now)
            result.customers = len(chunk.customers)

        if chunk.products is not None and not chunk.products.empty:
            rows = _records(chunk.products)
            for row in rows:
                row.setdefault("attributes", {})
                row.setdefault("in_stock", True)
                row["created_at"] = row["updated_at"] = now
            before = changes.offers(session, (row["sku"] for row in rows))
            stmt = upsert(session, Product.__table__, ["sku"], rows)
            session.execute(stmt, rows)
            changes.record(session, _offer_changes(before, rows), now=now)
            result.products = len(rows)

        if chunk.orders is not None and not chunk.orders.empty:
            rows = _records(chunk.orders)
            for row in rows:
                ext = row.pop("external_id", None)
                row["customer_id"] = ids[str(ext)] if ext is not None else None
                row.setdefault("source", source)
                row.setdefault("attributes", {})
                row["updated_at"] = now
            session.execute(upsert(session, Order.__table__, ["id"], rows), rows)
            for order_ids in chunked(r["id"] for r in rows):
                session.execute(sa.delete(OrderLine).where(OrderLine.order_id.in_(order_ids)))
            result.orders = len(rows)
            if chunk.lines is not None and not chunk.lines.empty:
                session.connection().execute(OrderLine.__table__.insert(), _records(chunk.lines))
                result.lines = len(chunk.lines)
            orders = map(loyalty.OrderState.of, rows)
            loyalty.follow(session, orders, now=now, baskets=effects.order_baskets)  # no one is told

        if chunk.events is not None and not chunk.events.empty:
            events = _event_frame(session, chunk.events, ids, now=now, source=source)
            _consents(session, events, source=source)
        seen = _seen_ranges(chunk, events, ids)
        customers_bulk.touch_seen(session, seen)
        # The log is written inside the SQL transaction's scope, so a failure there rolls both back.
        if events is not None:
            result.events_new = log.append(events)
    return result


def _profiles(session, frame: pd.DataFrame, ids: dict[str, str], *, now: datetime) -> None:
    """Profile fields of the customers in the frame; an erased customer's email or phone (customers.privacy)
    is skipped, the rest of the row written."""
    columns = [c for c in PROFILE_FIELDS if c != "external_id" and c in frame]
    if not columns:
        return
    rows = _records(frame[["external_id", *columns]])
    for kind in SUPPRESSIBLE:
        if kind in columns:
            gone = suppressed(session, kind, (row[kind] for row in rows if isinstance(row[kind], str)))
            if gone:
                rows = [{k: v for k, v in row.items() if k != kind or v not in gone} for row in rows]
    by_columns: dict[tuple[str, ...], list[dict]] = {}
    for row in rows:
        row["cid"] = ids[str(row.pop("external_id"))]
        row["updated_at"] = now
        by_columns.setdefault(tuple(c for c in row if c != "cid"), []).append(row)
    for names, group in by_columns.items():
        session.connection().execute(
            sa.update(Customer).where(Customer.id == sa.bindparam("cid")).values({c: sa.bindparam(c) for c in names}),
            group,
        )


def _offer_changes(before: dict[str, changes.Offer], rows: list[dict]) -> list[tuple]:
    """(sku, before, after) of the known products among the rows written (the last row of a sku wins)."""
    written = {row["sku"]: row for row in rows if row["sku"] in before}
    return [(sku, before[sku], before[sku].updated(row)) for sku, row in written.items()]


def _event_frame(session, frame: pd.DataFrame, ids: dict[str, str], *, now: datetime, source: str) -> pd.DataFrame:
    frame = frame.copy()
    ext = frame["external_id"] if "external_id" in frame else pd.Series(None, index=frame.index, dtype=object)
    anon = frame["anonymous_id"] if "anonymous_id" in frame else pd.Series(None, index=frame.index, dtype=object)
    # An anonymous id seen beside an external id belongs to that customer: so do its anonymous-only events.
    both = ext.notna() & anon.notna()
    pairs = dict(zip(anon[both].astype(str), ext[both].astype(str)))
    customers_bulk.link(session, "anonymous", {a: ids[e] for a, e in pairs.items()}, now=now)
    anon_only = anon[ext.isna() & anon.notna()].astype(str)
    anon_ids = customers_bulk.ensure(session, "anonymous", anon_only, now=now) if len(anon_only) else {}
    frame["user_id"] = ext.astype(object).where(ext.notna(), None)
    frame["anonymous_id"] = anon.astype(object).where(anon.notna(), None)
    frame["customer_id"] = [
        ids.get(str(e)) if e is not None else anon_ids.get(str(a))
        for e, a in zip(frame["user_id"], frame["anonymous_id"])
    ]
    frame["received_at"] = now
    frame["source"] = frame["source"] if "source" in frame else source
    frame["properties"] = [orjson.dumps(p).decode() for p in frame["properties"]]
    if "context" not in frame:
        frame["context"] = "{}"
    return frame[EVENT_COLUMNS]


def _consents(session, events: pd.DataFrame, *, source: str) -> None:
    """Consents carried by identify events (`traits.consents`), as the tracking API records them."""
    identify = events[events["type"] == "identify"]
    changes = []
    for cid, at, props in zip(identify["customer_id"], identify["timestamp"], identify["properties"]):
        consents = orjson.loads(props).get("consents") if cid else None
        if isinstance(consents, dict):
            changes += [
                (cid, channel, granted, at)
                for channel, granted in consents.items()
                if channel in CHANNELS and isinstance(granted, bool)
            ]
    customers_bulk.record_consents(session, changes, source=source)


def _seen_ranges(
    chunk: Chunk, events: pd.DataFrame | None, ids: dict[str, str]
) -> dict[str, tuple[datetime, datetime]]:
    parts = []
    if events is not None:
        parts.append(events[["customer_id", "timestamp"]].dropna())
    if chunk.orders is not None and not chunk.orders.empty and "external_id" in chunk.orders:
        orders = chunk.orders.dropna(subset=["external_id"])
        parts.append(
            pd.DataFrame({"customer_id": orders["external_id"].astype(str).map(ids), "timestamp": orders["placed_at"]})
        )
    if not parts:
        return {}
    both = pd.concat(parts).dropna()
    if both.empty:
        return {}
    span = both.groupby("customer_id")["timestamp"].agg(["min", "max"])
    firsts, lasts = span["min"].dt.to_pydatetime().tolist(), span["max"].dt.to_pydatetime().tolist()
    return dict(zip(span.index.tolist(), zip(firsts, lasts)))
