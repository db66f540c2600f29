"""Campaigns: validation, holdout and variants, local send times, throttling, the guards, results."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
import yaml

from boomerang.config import GuardSettings
from boomerang.core.clock import FixedClock
from boomerang.core.errors import Conflict, ValidationFailed
from boomerang.messaging import campaign_results, campaigns
from boomerang.messaging.models import Message
from boomerang.orchestration.rounds import tick
from boomerang.orders.models import Order
from cli_helpers import run_cli
from messaging_data import NOW, add_customer, add_segment, add_template

CUSTOMERS = 400
SALE = {
    "name": "spring_sale",
    "segment": "everyone",
    "channels": ["email"],
    "holdout_percent": 10,
    "variants": [{"name": "A", "template": "greeting"}, {"name": "B", "template": "greeting_b", "weight": 1}],
}


@pytest.fixture
def shop(ws):
    ws.settings.guards = GuardSettings(global_control_share=0, caps={})
    ws.clock = FixedClock(NOW)
    with ws.uow.session() as s:
        ids = [f"c{i:03d}" for i in range(CUSTOMERS)]
        for i, cid in enumerate(ids):
            add_customer(s, cid, tz=("Asia/Tokyo", "America/New_York", None)[i % 3])
        add_template(s)
        from messaging_data import GREETING

        add_template(s, {**GREETING, "name": "greeting_b"})
        add_segment(s, "everyone", ids)
    return ws


def save(ws, raw):
    with ws.uow.session() as s:
        return campaigns.save(s, raw, now=NOW)


def schedule(ws, name):
    with ws.uow.session() as s:
        return campaigns.schedule(s, name, now=NOW)


def get(ws, name):
    with ws.uow.session() as s:
        return campaigns.get(s, name)


def by(ws, column):
    with ws.uow.session() as s:
        return Counter(s.scalars(sa.select(column).where(Message.source == "campaign:spring_sale")))


def test_definitions_are_checked_field_by_field(shop):
    cases = [
        ({**SALE, "segment": "nobody"}, "segment"),
        ({**SALE, "name": "Spring!"}, "name"),
        ({**SALE, "template": "greeting"}, ""),
        ({**SALE, "channels": ["fax"]}, "channels"),
        ({**SALE, "variants": [{"name": "A", "template": "missing"}]}, "variants.A.template"),
        ({**SALE, "local_time": "25:00"}, "local_time"),
        ({**SALE, "holdout_percent": 100}, "holdout_percent"),
    ]
    for raw, field in cases:
        with pytest.raises(ValidationFailed) as err:
            save(shop, raw)
        assert err.value.errors[0]["field"].startswith(field), (raw, err.value.errors)


def test_holdout_and_variants_split_the_audience_stably_and_the_guards_still_hold(shop):
    save(shop, SALE)
    schedule(shop, "spring_sale")
    out = tick(shop, NOW)
    assert out["campaigns"] == 1
    variants = by(shop, Message.variant)
    assert sum(variants.values()) == CUSTOMERS
    assert 20 <= variants["holdout"] <= 60 and abs(variants["A"] - variants["B"]) < 60
    statuses = by(shop, Message.status)
    assert statuses["held_out"] == variants["holdout"]
    # noon UTC is night in Tokyo and early morning in New York: quiet hours hold those back
    assert statuses["sent"] + statuses["queued"] == CUSTOMERS - variants["holdout"]
    assert set(by(shop, Message.reason)) == {
        None,
        "campaign holdout",
        *(r for r in by(shop, Message.reason) if r and r.startswith("deferred by quiet_hours")),
    }
    assert get(shop, "spring_sale")["status"] == "sending"
    tick(shop, NOW + timedelta(hours=2))  # 10:00 in New York
    tick(shop, NOW + timedelta(hours=14))  # 11:00 in Tokyo
    assert by(shop, Message.status)["sent"] == CUSTOMERS - variants["holdout"]
    campaigns.start_due(shop.segments, now=NOW + timedelta(hours=14))
    assert get(shop, "spring_sale")["status"] == "sent"
    with pytest.raises(Conflict):
        save(shop, SALE)  # it went out: no more changes
    again = tick(shop, NOW + timedelta(hours=15))
    assert again["campaigns"] == 0 and sum(by(shop, Message.variant).values()) == CUSTOMERS  # once only


def test_local_time_and_throttling_spread_the_sends(shop):
    save(shop, {**SALE, "name": "spring_sale", "local_time": "10:00", "holdout_percent": 0, "throttle_per_minute": 100})
    schedule(shop, "spring_sale")
    campaigns.start_due(shop.segments, now=NOW)
    with shop.uow.session() as s:
        rows = s.execute(sa.select(Message.customer_id, Message.send_after).order_by(Message.customer_id)).all()
    first = {cid: at for cid, at in rows}
    # noon UTC: Tokyo's next 10:00 is 01:00 UTC tomorrow, New York's 14:00 UTC today, UTC's 10:00 tomorrow
    assert first["c000"] - timedelta(minutes=first["c000"].minute) == datetime(2026, 3, 11, 1, 0)
    assert first["c001"] - timedelta(minutes=first["c001"].minute) == datetime(2026, 3, 10, 14, 0)
    assert first["c002"] - timedelta(minutes=first["c002"].minute) == datetime(2026, 3, 11, 10, 0)
    assert max(at.minute for at in first.values()) == 3  # 400 messages at 100 a minute


def test_results_compare_each_variant_with_the_holdout(shop):
    save(shop, SALE)
    schedule(shop, "spring_sale")
    tick(shop, NOW)
    with shop.uow.session() as s:
        groups = dict(s.execute(sa.select(Message.customer_id, Message.variant)).all())
        for n, (cid, variant) in enumerate(sorted(groups.items())):  # A buys more than the holdout
            if (variant == "A" and n % 2 == 0) or (variant == "holdout" and n % 10 == 0):
                s.add(
                    Order(
                        id=f"o{n}",
                        customer_id=cid,
                        status="completed",
                        currency="EUR",
                        total=100.0,
                        source="test",
                        attributes={},
                        placed_at=NOW + timedelta(days=1),
                        updated_at=NOW,
                    )
                )
        s.add(
            Order(
                id="late",
                customer_id=next(iter(groups)),
                status="completed",
                total=999.0,
                source="test",
                attributes={},
                placed_at=NOW + timedelta(days=30),
                updated_at=NOW,
            )
        )  # outside the window
    with shop.uow.session() as s:
        stats = campaigns.stats(s, "spring_sale")
    a, hold = stats["groups"]["A"], stats["groups"]["holdout"]
    assert 0 < a["sent"] < a["customers"] and hold["sent"] == 0  # the rest wait out the night
    assert a["conversion_rate"] > hold["conversion_rate"] > 0
    with shop.uow.session() as s:
        results = campaign_results.results(s, "spring_sale", global_control_share=0.0)
    by_pair = {(c["treated"], c["baseline"]): c for c in results["comparisons"]}
    vs_holdout = by_pair["A", "holdout"]
    assert results["groups"]["A"]["units"] == a["customers"] and results["groups"]["A"]["revenue"] == a["revenue"]
    assert vs_holdout["conversion"]["effect"] == pytest.approx(a["conversion_rate"] - hold["conversion_rate"], abs=1e-3)
    assert vs_holdout["incremental_revenue"]["effect"] == pytest.approx(
        a["revenue"] - hold["revenue"] / hold["customers"] * a["customers"], abs=0.01
    )
    low, high = vs_holdout["conversion"]["low"], vs_holdout["conversion"]["high"]
    assert low < vs_holdout["conversion"]["effect"] < high and vs_holdout["conversion"]["sequential"]
    assert results["sample_ratio"]["alarm"] is False


def test_cancel_stops_what_is_queued(shop):
    save(shop, {**SALE, "local_time": "10:00"})
    schedule(shop, "spring_sale")
    campaigns.start_due(shop.segments, now=NOW)
    with shop.uow.session() as s:
        campaigns.cancel(s, "spring_sale", now=NOW)
    assert by(shop, Message.status)["queued"] == 0
    assert get(shop, "spring_sale")["status"] == "cancelled"


def test_cli(shop, tmp_path):
    file = tmp_path / "sale.yaml"
    file.write_text(yaml.safe_dump(SALE))

    def run(*a):
        return run_cli(shop.settings.home, *a)

    assert run("campaigns", "create", str(file)).returncode == 0
    listed = run("campaigns", "list", "--json")
    assert '"spring_sale"' in listed.stdout and '"draft"' in listed.stdout
    assert run("campaigns", "schedule", "spring_sale", "--at", "2026-03-10T12:00:00").returncode == 0
    assert '"groups"' in run("campaigns", "stats", "spring_sale", "--json").stdout
    bad = run("campaigns", "schedule", "nowhere")
    assert bad.returncode == 2 and "no campaign 'nowhere'" in bad.stderr
    file.write_text(yaml.safe_dump({**SALE, "segment": "nobody"}))
    bad = run("campaigns", "create", str(file))
    assert bad.returncode == 2 and "segment" in bad.stderr
