"""A journey's results as tests: the treated instances against the journey's control group (entered, walked the
same graph, were sent nothing) and against the global control group (treated instances of customers who get no
marketing at all), each node's passers against the control instances that passed it too, and each split node's
variants against its first. Conversion is the journey's goal; revenue, the goal's; the pre-period spend of each
customer (orders.windows) narrows the revenue intervals. Test runs never count."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.experiments import readout
from boomerang.experiments.readout import Units
from boomerang.journeys import models as m
from boomerang.journeys.definition import Journey, Send, Split
from boomerang.messaging.guards import in_global_control
from boomerang.orders.windows import spend_around

TREATED, CONTROL, GLOBAL = "treated", "control", "global control"


def _instances(session: Session, journey_id: int, since: datetime | None, until: datetime | None) -> pd.DataFrame:
    query = sa.select(
        m.Instance.id, m.Instance.customer_id, m.Instance.control, m.Instance.entered_at, m.Instance.state
    ).where(m.Instance.journey_id == journey_id, m.Instance.test.is_(False))
    if since is not None:
        query = query.where(m.Instance.entered_at >= since)
    if until is not None:
        query = query.where(m.Instance.entered_at < until)
    rows = session.execute(query.order_by(m.Instance.entered_at)).all()
    frame = pd.DataFrame(rows, columns=["id", "customer_id", "control", "at", "state"])
    conversions = dict(
        session.execute(
            sa.select(m.Conversion.instance_id, m.Conversion.revenue).where(m.Conversion.journey_id == journey_id)
        ).all()
    )
    frame["converted"] = frame["id"].isin(conversions.keys())
    frame["revenue"] = frame["id"].map(conversions).fillna(0.0).astype(float)
    return spend_around(session, frame, after=None)


def _units(frame: pd.DataFrame, group: pd.Series) -> Units:
    units = Units()
    for g, converted, revenue, pre, at in zip(
        group, frame["converted"], frame["revenue"], frame["pre"], frame["at"], strict=True
    ):
        if g is not None:
            units.add(g, bool(converted), float(revenue), float(pre), at.date())
    return units


def measure(
    session: Session,
    row: m.Journey,
    journey: Journey,
    *,
    global_control_share: float,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The journey's tests, as experiments.readout reports them, with the lift over time against the control; of
    the instances that entered in [since, until) where given."""
    frame = _instances(session, row.id, since, until)
    marketing = journey.category != "transactional"
    in_global = frame["customer_id"].map(lambda c: marketing and in_global_control(c, global_control_share))
    group = pd.Series(
        [CONTROL if c else GLOBAL if g else TREATED for c, g in zip(frame["control"], in_global, strict=True)],
        index=frame.index,
        dtype=object,
    )
    units = _units(frame, group)
    arms = units.arms([TREATED, CONTROL, GLOBAL])
    overall = readout.report(arms, [(TREATED, CONTROL), (TREATED, GLOBAL)])
    assigned = {TREATED: arms[TREATED].units + arms[GLOBAL].units, CONTROL: arms[CONTROL].units}
    overall["sample_ratio"] = readout.sample_ratio(
        assigned, {CONTROL: journey.control_share, TREATED: 1 - journey.control_share}
    )
    overall["over_time"] = units.over_time(TREATED, CONTROL)
    paths = frame["state"].map(lambda s: set((s or {}).get("path") or []))
    return {"journey": overall, "nodes": _nodes(journey, frame, group, paths), "splits": _splits(journey, frame, group)}


def _nodes(journey: Journey, frame: pd.DataFrame, group: pd.Series, paths: pd.Series) -> dict[str, Any]:
    """Per send node: the treated instances that passed it against the control instances that passed it."""
    out = {}
    for name, node in journey.nodes.items():
        if not isinstance(node, Send):
            continue
        passed = paths.map(lambda p, name=name: name in p)
        at_node = group.where(passed & group.isin([TREATED, CONTROL]), None)
        arms = _units(frame, at_node).arms([TREATED, CONTROL])
        out[name] = readout.report(arms, [(TREATED, CONTROL)])
    return out


def _splits(journey: Journey, frame: pd.DataFrame, group: pd.Series) -> dict[str, Any]:
    """Per split node: its variants (treated instances only) against the first, and whether their sizes match
    the weights."""
    out = {}
    variants = frame["state"].map(lambda s: (s or {}).get("variants") or {})
    for name, node in journey.nodes.items():
        if not isinstance(node, Split):
            continue
        names = [v.name for v in node.variants]
        arm = variants.map(lambda v, name=name: v.get(name)).where(group == TREATED, None)
        arms = _units(frame, arm).arms(names)
        shares = {v.name: v.weight for v in node.variants}
        report = readout.report(arms, [(n, names[0]) for n in names[1:]], shares=shares)
        out[name] = {**report, "winner": readout.winner(report, names[0]), "rolled_out": node.winner}
    return out
