"""The simulated steps as the bulk loader's frames: events with Segment e-commerce properties, orders and lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from boomerang.demo import sessions as st
from boomerang.demo.behaviour import Lines, Orders
from boomerang.demo.catalog import SHOP_URL, Catalog, slug
from boomerang.demo.people import People
from boomerang.demo.sessions import Sessions, Steps
from boomerang.events.bulk import Chunk

NAMES = {
    st.PAGE: "Page Viewed",
    st.VIEW: "Product Viewed",
    st.IDENTIFY: "Identify",
    st.ADD: "Product Added",
    st.REMOVE: "Product Removed",
    st.CART_VIEWED: "Cart Viewed",
    st.CHECKOUT_STARTED: "Checkout Started",
    st.ORDER: "Order Completed",
    st.SHIPPED: "Order Shipped",
    st.DELIVERED: "Order Delivered",
    st.CANCELLED: "Order Cancelled",
    st.REFUNDED: "Order Refunded",
    st.NPS: "NPS Survey Answered",
    st.REVIEW: "Product Reviewed",
    st.PROFILE: "Identify",
}
EVENT_NAME = np.array([NAMES[code] for code in range(len(NAMES))], dtype=object)
EVENT_TYPE = np.array(
    ["identify" if NAMES[code] == "Identify" else "page" if code == st.PAGE else "track" for code in range(len(NAMES))],
    dtype=object,
)
SERVER_SIDE = st.SHIPPED  # codes from here on are sent by the shop's backend, without the browser's id


@dataclass
class Naming:
    """How one slice's people, carts, orders and messages are named; bases count from the slices before."""

    seed: int
    currency: str
    start: date
    external: list[str | None]  # per actor; None for visitors
    anonymous: list[str]  # per actor
    session_base: int
    order_base: int
    message_base: int

    def order_id(self, index: int) -> str:
        return f"ord-{self.seed}-{self.order_base + index:06d}"

    def cart_id(self, session: int) -> str:
        return f"cart-{self.seed}-{self.session_base + session}"


class Products:
    """Property templates for each product, copied into events."""

    def __init__(self, catalog: Catalog, currency: str) -> None:
        frame = catalog.products
        rows = frame[["sku", "name", "category", "brand", "price", "url"]].to_dict("records")
        self.viewed = [{**row, "currency": currency} for row in rows]
        self.line = [{k: row[k] for k in ("sku", "name", "category", "brand", "price")} for row in rows]
        self.pages = [
            {
                "name": leaf.rsplit(" > ", 1)[-1],
                "category": leaf,
                "path": f"/c/{slug(leaf)}",
                "url": f"{SHOP_URL}/c/{slug(leaf)}",
            }
            for leaf in catalog.leaf_names
        ]
        self.home = {"name": "Home", "path": "/", "url": f"{SHOP_URL}/"}


def build(
    steps: Steps,
    s: Sessions,
    lines: Lines,
    o: Orders,
    buyer: np.ndarray,
    people: People,
    naming: Naming,
    products: Products,
    catalog: Catalog,
    *,
    with_products: bool,
) -> Chunk:
    """One chunk: the slice's customers, orders, lines and events (and the catalog when asked)."""
    steps = steps.take(np.lexsort((steps.t, steps.actor)))
    count = len(steps.t)
    message_ids = [f"demo-{naming.seed}-{naming.message_base + k}" for k in range(count)]
    timestamps = np.datetime64(naming.start, "us") + (steps.t * 86_400_000_000).astype("timedelta64[us]")
    external = np.array(naming.external, dtype=object)[steps.actor]
    external[steps.anonymous] = None
    anonymous = np.array(naming.anonymous, dtype=object)[steps.actor]
    anonymous[steps.code >= SERVER_SIDE] = None
    properties = _properties(steps, s, lines, o, people, naming, products)
    events = pd.DataFrame(
        {
            "message_id": message_ids,
            "type": EVENT_TYPE[steps.code],
            "event": EVENT_NAME[steps.code],
            "timestamp": pd.Series(timestamps),
            "properties": properties,
            "external_id": external,
            "anonymous_id": anonymous,
        }
    )
    placed = events["timestamp"].to_numpy()[steps.code == st.ORDER][np.argsort(steps.order[steps.code == st.ORDER])]
    refunds = {
        int(order): message_ids[k]
        for k, order in zip(np.flatnonzero(steps.code == st.REFUNDED), steps.order[steps.code == st.REFUNDED])
    }
    orders, order_lines = _orders(lines, o, buyer, placed, naming, catalog, refunds)
    return Chunk(
        customers=people.frame,
        products=catalog.products if with_products else None,
        orders=orders,
        lines=order_lines,
        events=events,
    )


def _cart(s: Sessions, session: int, products: Products) -> list[dict]:
    """The items still in a visit's cart."""
    end = s.item_start[session + 1] if session + 1 < len(s.item_start) else len(s.item_product)
    return [
        {**products.line[p], "quantity": int(q)}
        for p, q, gone in zip(
            s.item_product[s.item_start[session] : end].tolist(),
            s.item_quantity[s.item_start[session] : end].tolist(),
            s.item_removed[s.item_start[session] : end].tolist(),
        )
        if not gone
    ]


def _properties(
    steps: Steps, s: Sessions, lines: Lines, o: Orders, people: People, naming: Naming, products: Products
) -> np.ndarray:
    """Each event's properties, built kind by kind from templates."""
    out = np.empty(len(steps.t), dtype=object)
    _visit_properties(out, steps, s, o, people, naming, products)
    _order_properties(out, steps, lines, o, naming, products)
    return out


def _visit_properties(
    out: np.ndarray, steps: Steps, s: Sessions, o: Orders, people: People, naming: Naming, products: Products
) -> None:
    code, product, session = steps.code, steps.product.tolist(), steps.session.tolist()
    actor, qty = steps.actor.tolist(), steps.quantity.tolist()
    carts: dict[int, list[dict]] = {}

    def cart(k: int) -> list[dict]:
        if session[k] not in carts:
            carts[session[k]] = _cart(s, session[k], products)
        return [dict(item) for item in carts[session[k]]]  # no dict shared between events

    for k in np.flatnonzero(code == st.PAGE).tolist():
        out[k] = dict(products.home) if s.home[session[k]] else dict(products.pages[s.focus[session[k]]])
    for k in np.flatnonzero(code == st.VIEW).tolist():
        out[k] = {**products.viewed[product[k]]}
    for k in np.flatnonzero((code == st.ADD) | (code == st.REMOVE)).tolist():
        out[k] = {**products.viewed[product[k]], "quantity": int(qty[k]), "cart_id": naming.cart_id(session[k])}
    for k in np.flatnonzero(code == st.IDENTIFY).tolist():
        out[k] = {**people.traits[actor[k]], "consents": dict(people.traits[actor[k]]["consents"])}
    for k in np.flatnonzero(code == st.PROFILE).tolist():
        late = people.late[actor[k]]
        out[k] = {**late, "consents": dict(late["consents"])}
    for k in np.flatnonzero(code == st.CART_VIEWED).tolist():
        out[k] = {"cart_id": naming.cart_id(session[k]), "products": cart(k)}
    buying = np.flatnonzero(s.kind == st.PURCHASE)
    order_of_session = dict(zip(buying.tolist(), s.order[buying].tolist()))
    total, subtotal, discount, shipping = (a.tolist() for a in (o.total, o.subtotal, o.discount, o.shipping))
    for k in np.flatnonzero(code == st.CHECKOUT_STARTED).tolist():
        items = cart(k)
        props = {"cart_id": naming.cart_id(session[k]), "products": items, "currency": naming.currency}
        bought = order_of_session.get(session[k])
        if bought is None:
            props["total"] = round(sum(i["price"] * i["quantity"] for i in items), 2)
        else:
            props.update(order_id=naming.order_id(bought), total=total[bought])
        out[k] = props
    for k in np.flatnonzero(code == st.ORDER).tolist():
        i = order_of_session[session[k]]
        props = {
            "order_id": naming.order_id(i),
            "cart_id": naming.cart_id(session[k]),
            "total": total[i],
            "revenue": round(subtotal[i] - discount[i], 2),
            "subtotal": subtotal[i],
            "discount": discount[i],
            "shipping": shipping[i],
            "currency": naming.currency,
            "products": cart(k),
        }
        if o.coupon[i] >= 0:
            props["coupon"] = o.coupon_codes[o.coupon[i]]
        out[k] = props


def _order_properties(
    out: np.ndarray, steps: Steps, lines: Lines, o: Orders, naming: Naming, products: Products
) -> None:
    code, order, value, product = steps.code, steps.order.tolist(), steps.value.tolist(), steps.product.tolist()
    count = np.bincount(lines.order, minlength=len(o.total))
    starts = (np.cumsum(count) - count).tolist()
    for k in np.flatnonzero((code == st.SHIPPED) | (code == st.DELIVERED)).tolist():
        out[k] = {"order_id": naming.order_id(order[k])}
    for k in np.flatnonzero(code == st.CANCELLED).tolist():
        out[k] = {"order_id": naming.order_id(order[k]), "total": float(o.total[order[k]]), "currency": naming.currency}
    for k in np.flatnonzero(code == st.REFUNDED).tolist():
        i = order[k]
        which = [int(o.refund_line[i])] if o.refund_line[i] >= 0 else range(starts[i], starts[i] + int(count[i]))
        items = [{**products.line[int(lines.product[j])], "quantity": int(lines.quantity[j])} for j in which]
        out[k] = {
            "order_id": naming.order_id(i),
            "total": float(o.refund[i]),
            "currency": naming.currency,
            "products": items,
        }
    for k in np.flatnonzero(code == st.NPS).tolist():
        out[k] = {"score": value[k], "order_id": naming.order_id(order[k]), "survey": "post-delivery"}
    for k in np.flatnonzero(code == st.REVIEW).tolist():
        line = products.line[product[k]]
        out[k] = {
            "sku": line["sku"],
            "name": line["name"],
            "category": line["category"],
            "rating": value[k],
            "order_id": naming.order_id(order[k]),
        }


def _orders(
    lines: Lines,
    o: Orders,
    buyer: np.ndarray,
    placed: np.ndarray,
    naming: Naming,
    catalog: Catalog,
    refunds: dict[int, str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = len(o.total)
    ids = [naming.order_id(i) for i in range(m)]
    coupon = np.array([None, *o.coupon_codes], dtype=object)[o.coupon + 1]
    refund = o.refund.tolist()
    orders = pd.DataFrame(
        {
            "id": ids,
            "external_id": np.array(naming.external, dtype=object)[buyer],
            "status": o.status,
            "currency": naming.currency,
            "total": o.total,
            "subtotal": o.subtotal,
            "discount": np.where(o.discount > 0, o.discount, np.nan),
            "shipping": o.shipping,
            "refunded_total": o.refund,
            "coupon": coupon,
            "placed_at": pd.Series(placed, dtype="datetime64[us]"),
            "attributes": [{"refunds": {refunds[i]: refund[i]}} if i in refunds else {} for i in range(m)],
        }
    )
    count = np.bincount(lines.order, minlength=m)
    frame = catalog.products
    order_lines = pd.DataFrame(
        {
            "order_id": np.array(ids, dtype=object)[lines.order],
            "line_no": np.arange(len(lines.order)) - np.repeat(np.cumsum(count) - count, count),
            "sku": frame["sku"].to_numpy()[lines.product],
            "name": frame["name"].to_numpy()[lines.product],
            "category": frame["category"].to_numpy()[lines.product],
            "quantity": lines.quantity,
            "unit_price": catalog.price[lines.product],
        }
    )
    return orders, order_lines
