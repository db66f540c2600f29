"""A campaign's results as tests: each variant against the holdout (never sent anything), against the global
control group (its customers who get no marketing at all) and, with several variants, against the first.
A customer converts by ordering within the attribution window after the campaign started; revenue is what they
spent in it; the 90 days before the start (orders.windows) narrow the revenue intervals."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound
from boomerang.experiments import readout
from boomerang.experiments.readout import Units
from boomerang.messaging import campaigns
from boomerang.messaging.campaigns import CampaignDefinition
from boomerang.messaging.guards import in_global_control
from boomerang.messaging.models import Campaign, Message
from boomerang.orders.windows import spend_around

HOLDOUT, GLOBAL = "holdout", "global control"


def measure(session: Session, row: Campaign, definition: CampaignDefinition, *, global_control_share: float) -> dict:
    """experiments.readout's report of the campaign (empty groups until it has started)."""
    arms = [a.name for a in definition.arms()]
    if row.started_at is None:
        return {"groups": {}, "comparisons": [], "sample_ratio": None, "started": False}
    rows = session.execute(
        sa.select(Message.customer_id, Message.variant).where(Message.source == f"campaign:{row.name}")
    ).all()
    frame = pd.DataFrame(rows, columns=["customer_id", "variant"]).drop_duplicates("customer_id")
    frame["at"] = row.started_at
    window = timedelta(days=definition.attribution_days)
    frame = spend_around(session, frame.reset_index(drop=True), after=window)
    marketing = definition.category != "transactional"
    units = Units()
    for cid, variant, orders, revenue, pre in zip(
        frame["customer_id"], frame["variant"], frame["after_orders"], frame["after_revenue"], frame["pre"], strict=True
    ):
        held = variant == HOLDOUT
        group = HOLDOUT if held else GLOBAL if marketing and in_global_control(cid, global_control_share) else variant
        units.add(group, orders > 0, float(revenue), float(pre), row.started_at.date())
    found = units.arms([*arms, HOLDOUT, GLOBAL])
    pairs = [(a, HOLDOUT) for a in arms] + [(a, GLOBAL) for a in arms] + [(a, arms[0]) for a in arms[1:]]
    result = readout.report(found, pairs)
    weights = sum(a.weight for a in definition.arms())
    shares = {HOLDOUT: definition.holdout_percent / 100}
    shares |= {a.name: (1 - shares[HOLDOUT]) * a.weight / weights for a in definition.arms()}
    shares = {k: v for k, v in shares.items() if v > 0}
    result["sample_ratio"] = readout.sample_ratio(dict(Counter(frame["variant"].fillna(arms[0]))), shares)
    result["started"] = True
    variants_only = {**result, "comparisons": [c for c in result["comparisons"] if c["baseline"] == arms[0]]}
    result["winner"] = readout.winner(variants_only, arms[0]) if len(arms) > 1 else None
    return result


def results(session: Session, name: str, *, global_control_share: float) -> dict[str, Any]:
    row = campaigns.find(session, name)
    if row is None:
        raise NotFound(f"no campaign {name!r}", field="campaign")
    return {
        "campaign": name,
        **measure(session, row, campaigns.parse(row.definition), global_control_share=global_control_share),
    }
