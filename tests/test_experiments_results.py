"""Journeys' and campaigns' results as tests, read from the stores: the journey against its control group and the
global one, per send node and per split variant, with the lift over time."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from boomerang.customers.models import Customer
from boomerang.journeys import models as m
from boomerang.journeys import service
from boomerang.messaging.guards import in_global_control
from boomerang.orders.models import Order

NOW = datetime(2026, 5, 1, 9, 0)
AB = {
    "name": "ab_welcome",
    "trigger": {"manual": True},
    "control_share": 0.2,
    "goal": {"event": "Order Completed", "within_days": 7},
    "start": "ab",
    "nodes": {
        "ab": {
            "type": "split",
            "variants": [
                {"name": "short", "weight": 1, "next": "mail_short"},
                {"name": "long", "weight": 1, "next": "mail_long"},
            ],
        },
        "mail_short": {"type": "send", "channel": "email", "template": "welcome", "next": "end"},
        "mail_long": {"type": "send", "channel": "email", "template": "welcome", "next": "end"},
        "end": {"type": "exit"},
    },
}
N = 2000


def _order(n: int, cid: str, at: datetime, total: float) -> Order:
    return Order(
        id=f"o{n}",
        customer_id=cid,
        status="completed",
        total=total,
        source="test",
        attributes={},
        placed_at=at,
        updated_at=at,
    )


@pytest.fixture
def journey(ws):
    """2,000 customers entered over ten days: the treated "long" arm converts 25 %, "short" 15 %, the control
    and the global control 10 %; every tenth customer spent 80 in the 90 days before, and buys again more often."""
    with ws.uow.session() as s, s.begin():
        service.save(s, AB, now=NOW)
        row = service.get(s, "ab_welcome")
        for n in range(N):
            cid = f"c{n:05d}"
            s.add(Customer(id=cid, created_at=NOW, updated_at=NOW))
            control = n % 5 == 0
            arm = "long" if n % 2 else "short"
            entered = NOW + timedelta(days=n % 10)
            s.add(
                m.Instance(
                    id=f"i{n}",
                    journey_id=row.id,
                    version=1,
                    customer_id=cid,
                    status="done",
                    node="end",
                    control=control,
                    state={"variants": {"ab": arm}, "path": ["ab", f"mail_{arm}", "end"]},
                    entered_at=entered,
                    updated_at=entered,
                )
            )
            if n % 10 == 3:
                s.add(_order(n, cid, entered - timedelta(days=20), 80.0))
            gc = in_global_control(cid, 0.05)
            rate = 0.10 if control or gc else 0.25 if arm == "long" else 0.15
            if random.Random(n).random() < rate + (0.2 if n % 10 == 3 else 0):  # past buyers buy again more
                s.add(
                    m.Conversion(
                        instance_id=f"i{n}",
                        journey_id=row.id,
                        customer_id=cid,
                        node="end",
                        control=control,
                        revenue=50.0,
                        at=entered + timedelta(days=1),
                    )
                )
    return ws


def test_journey_results_have_intervals_per_group_node_and_variant(journey):
    with journey.uow.session() as s:
        result = service.results(s, "ab_welcome", global_control_share=0.05)
    overall = result["journey"]
    groups = overall["groups"]
    assert groups["control"]["units"] == N // 5
    assert groups["treated"]["units"] + groups["global control"]["units"] + groups["control"]["units"] == N
    vs_control, vs_global = overall["comparisons"]
    assert (vs_control["treated"], vs_control["baseline"]) == ("treated", "control")
    conversion = vs_control["conversion"]
    assert conversion["verdict"] == "better" and conversion["low"] > 0 and conversion["sequential"]
    expected = groups["treated"]["conversion_rate"] - groups["control"]["conversion_rate"]
    assert conversion["effect"] == pytest.approx(expected, abs=1e-6)
    assert vs_control["revenue_per_unit"]["method"] == "confidence sequence, CUPED"
    assert vs_global["baseline"] == "global control"
    assert overall["sample_ratio"]["alarm"] is False
    days = [point["day"] for point in overall["over_time"]]
    assert days == sorted(days) and overall["over_time"][-1]["effect"] == pytest.approx(conversion["effect"])
    assert set(result["nodes"]) == {"mail_short", "mail_long"}
    long_vs_short = result["splits"]["ab"]["comparisons"][0]
    assert (long_vs_short["treated"], long_vs_short["baseline"]) == ("long", "short")
    assert long_vs_short["conversion"]["effect"] > 0.05
    assert result["splits"]["ab"]["sample_ratio"]["alarm"] is False
