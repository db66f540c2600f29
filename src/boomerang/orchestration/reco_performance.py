"""How each recommendation block performs, read from the event log through Ibis: the widget's `Product List Viewed`
(impressions) and `Product Clicked` events, each carrying the block's name as `list_id` and the variant served
("block", or "control": plain best sellers), beside the shop's completed orders.

Per block and variant over a period: impressions, visitors, clicks and CTR; orders and revenue attributed to a click
(an order by the same customer within `WINDOW_DAYS` after the click that contains the clicked product: the revenue
of those lines); and the revenue per exposed visitor (everything they spent in the `WINDOW_DAYS` after their first
impression of the block), from which the incremental revenue of the block against its control follows:
(revenue per visitor shown the block - per visitor shown the control) x visitors shown the block, with its
always-valid interval (experiments.readout, from each arm's visitors, buyers and sums of revenue and its square).

A visitor belongs to the variant of their first impression of a block in the period (the split is by visitor, so
they keep it). Visitors first shown a block in the last `WINDOW_DAYS` have not had their whole window yet: both arms
alike, so the difference stays fair but is smaller than it will be. No figure at all while the control is smaller
than `MIN_CONTROL` visitors.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import ibis
import pandas as pd

from boomerang.core.errors import ValidationFailed
from boomerang.events.log import EventLog
from boomerang.experiments import readout
from boomerang.experiments.stats import Moments
from boomerang.metrics import source

LIST_VIEWED = "Product List Viewed"
CLICKED = "Product Clicked"
VARIANTS = ("block", "control")
WINDOW_DAYS = 7
MIN_CONTROL = readout.MIN_UNITS  # control visitors below which no incremental figure is given
FLOATS = ("revenue", "exposed_revenue", "exposed_revenue_sq")
DEFAULT_DAYS = 30
MAX_DAYS = 366


def _shown(events: ibis.Table, name: str, since: datetime, until: datetime) -> ibis.Table:
    """block, variant, visitor, customer_id, sku, ts: the widget's events of one kind in the period."""
    e = events.filter((events.event == name) & (events.timestamp >= since) & (events.timestamp < until))
    variant = source.text(e, "variant")
    rows = e.select(
        block=source.text(e, "list_id"),
        variant=ibis.ifelse(variant == "control", "control", "block"),  # absent or unknown: the block itself
        visitor=e.customer_id.coalesce(e.anonymous_id),
        customer_id=e.customer_id,
        sku=source.text(e, "sku").coalesce(source.text(e, "product_id")),
        ts=e.timestamp,
    )
    return rows.filter(rows.block.notnull() & (rows.block != ""))


def _lines(events: ibis.Table, since: datetime, until: datetime, cancelled: ibis.Table | None) -> ibis.Table:
    """customer_id, order_id, line, sku, ts, revenue: every line of the completed, not cancelled orders placed in
    [since, until)."""
    completed = events.filter(
        (events.event == source.ORDER_COMPLETED)
        & events.customer_id.notnull()
        & (events.timestamp >= since)
        & (events.timestamp < until)
    )
    rows = completed.select(
        "customer_id",
        order_id=source.text(completed, "order_id"),
        ts=completed.timestamp,
        product=completed.properties["products"].array,
    ).unnest("product", offset="line")
    quantity = rows["product"]["quantity"].float.coalesce(1.0)
    rows = rows.select(
        "customer_id",
        "order_id",
        "line",
        "ts",
        sku=rows["product"]["sku"].str.coalesce(rows["product"]["product_id"].str),
        revenue=(rows["product"]["price"].float * quantity).coalesce(0.0),
    )
    return rows.semi_join(source.purchases(events, since, until, cancelled).select("order_id"), "order_id")


def _frames(
    events: ibis.Table, since: datetime, until: datetime, cancelled: ibis.Table | None = None
) -> dict[str, pd.DataFrame]:
    window = ibis.interval(days=WINDOW_DAYS)
    views, clicks = _shown(events, LIST_VIEWED, since, until), _shown(events, CLICKED, since, until)
    impressions = views.group_by("block", "variant").agg(impressions=views.count())
    clicked = clicks.group_by("block", "variant").agg(clicks=clicks.count())

    # each visitor in the arm of their first impression, and what they spent in the window after it
    known = views.filter(views.visitor.notnull())
    first = known.group_by("block", "visitor").agg(first=known.ts.min(), arm=known.variant.argmin(known.ts))
    reach = until + timedelta(days=WINDOW_DAYS)  # the last order a window after an impression or a click can reach
    orders = source.purchases(events, since, reach, cancelled)
    spent = first.left_join(
        orders,
        (first.visitor == orders.customer_id) & (orders.ts >= first["first"]) & (orders.ts < first["first"] + window),
    )
    each = spent.group_by(variant=spent.arm, block=spent.block, visitor=spent.visitor).agg(
        value=spent.value.sum().coalesce(0.0)
    )
    exposed = each.group_by("variant", "block").agg(
        visitors=each.count(),
        exposed_revenue=each.value.sum(),
        exposed_revenue_sq=(each.value * each.value).sum(),
        buyers=(each.value > 0).cast("int64").sum(),
    )

    # lines of a clicked product bought by the clicking customer within the window after the click
    lines = _lines(events, since, reach, cancelled)
    c = clicks.filter(clicks.customer_id.notnull() & clicks.sku.notnull())
    hit = c.join(
        lines,
        (c.customer_id == lines.customer_id) & (c.sku == lines.sku) & (lines.ts > c.ts) & (lines.ts <= c.ts + window),
    ).select(c.block, c.variant, lines.order_id, lines.line, lines.revenue)
    hit = hit.distinct()  # a line clicked twice in the same block and variant counts once
    attributed = hit.group_by("block", "variant").agg(orders=hit.order_id.nunique(), revenue=hit.revenue.sum())
    return {
        "impressions": impressions.to_pandas(),
        "clicks": clicked.to_pandas(),
        "exposed": exposed.to_pandas(),
        "attributed": attributed.to_pandas(),
    }


def _incremental(arms: dict[str, dict[str, Any]], min_control: int) -> dict[str, Any]:
    """The block against its control, per exposed visitor: buying and revenue with always-valid intervals
    (experiments.readout), the incremental revenue over the block's visitors, and a verdict."""
    block, control = arms["block"], arms["control"]
    out = {"block_visitors": block["visitors"], "control_visitors": control["visitors"], "revenue": None}
    found = {name: _arm(a) for name, a in arms.items()}
    test = readout.compare(found, "block", "control", min_units=min_control)
    if "conversion" not in test:
        out["reason"] = f"not enough data: {block['visitors']} visitors saw the block and {control['visitors']} the "
        out["reason"] += f"control, at least {min_control} each are needed"
        return out
    revenue = test["incremental_revenue"]
    out.update(
        revenue_per_visitor=test["revenue_per_unit"]["effect"],
        revenue=revenue["effect"],
        revenue_low=revenue["low"],
        revenue_high=revenue["high"],
        comparison=test,
        verdict=test["verdict"],
        says=test["says"],
        reason=None,
    )
    return out


def _arm(a: dict[str, Any]) -> readout.Arm:
    n = a["visitors"]
    return readout.Arm(n, Moments.count(a["buyers"], n), Moments(n, a["exposed_revenue"], a["exposed_revenue_sq"]))


def _ratio(top: float, bottom: float) -> float | None:
    return top / bottom if bottom else None


def compute(
    log: EventLog, *, now: datetime, days: int = DEFAULT_DAYS, blocks: list[str] = (), min_control: int = MIN_CONTROL
) -> dict[str, Any]:
    """Every block shown in the `days` before `now` (and those of `blocks`, with zeros), by variant."""
    if not 1 <= days <= MAX_DAYS:
        raise ValidationFailed([{"field": "days", "reason": f"a whole number of days, 1 to {MAX_DAYS}"}])
    since = now - timedelta(days=days)
    with log.reader() as r:
        frames = _frames(r.events, since, now, r.cancelled)
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for name in [*blocks, *(n for f in frames.values() for n in f["block"])]:
        found.setdefault(
            name,
            {
                v: {
                    "impressions": 0,
                    "visitors": 0,
                    "buyers": 0,
                    "clicks": 0,
                    "orders": 0,
                    "revenue": 0.0,
                    "exposed_revenue": 0.0,
                    "exposed_revenue_sq": 0.0,
                }
                for v in VARIANTS
            },
        )
    for frame in frames.values():
        for row in frame.to_dict("records"):
            arm = found[row["block"]][row["variant"]]
            for key, value in row.items():
                if key not in ("block", "variant"):
                    arm[key] = float(value) if key in FLOATS else int(value)
    rows = []
    for name in sorted(found):
        arms = found[name]
        for arm in arms.values():
            arm["ctr"] = _ratio(arm["clicks"], arm["impressions"])
            arm["revenue_per_visitor"] = _ratio(arm["exposed_revenue"], arm["visitors"])
        rows.append({"block": name, "variants": arms, "incremental": _incremental(arms, min_control)})
    return {
        "since": since,
        "until": now,
        "days": days,
        "window_days": WINDOW_DAYS,
        "min_control": min_control,
        "blocks": rows,
    }
