"""A journey with a control group and an A/B split, 2,000 customers through it: for the experiments' tests."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

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


def load_ab_journey(ws):
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
