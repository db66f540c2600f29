"""The ready-made journeys: every one validates, installing is idempotent, the cart and win-back ones run."""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import resources

import pytest
import sqlalchemy as sa
import yaml

import segments_data
from boomerang.events.ingest import record
from boomerang.events.schemas import Logged
from boomerang.journeys import library, runtime, service
from boomerang.journeys.definition import parse_journey
from boomerang.loyalty.models import PromoCode
from boomerang.messaging.models import Message
from boomerang.orchestration.rounds import move_events
from boomerang.segments import service as segment_service

T0 = segments_data.NOW
FILES = sorted(f for f in (resources.files("boomerang") / "journeys" / "library").iterdir() if f.name.endswith(".yaml"))


@pytest.fixture
def shop(ws):
    return ws, segments_data.load(ws)


@pytest.mark.parametrize("path", FILES, ids=lambda f: f.name)
def test_every_ready_made_journey_validates(path):
    raw = yaml.safe_load(path.read_text("utf-8"))
    journey = parse_journey(raw)
    assert path.name == f"{journey.name}.yaml"
    assert journey.title and journey.description
    assert set(raw) >= {"category", "trigger", "goal", "control_share", "reentry"}  # said, not defaulted
    assert journey.control_share == (0 if journey.category == "transactional" else 0.1)


def test_the_library_covers_the_scenarios():
    journeys = {j.name: j for j in library.definitions()}
    assert set(journeys) >= {
        "welcome_series",
        "abandoned_cart",
        "browse_abandonment",
        "order_confirmation",
        "post_purchase",
        "review_request",
        "replenishment",
        "win_back",
        "birthday",
        "favourite_category_sale",
        "back_in_stock",
        "price_drop",
        "loyalty_tier_up",
        "points_expiring",
    }
    assert journeys["order_confirmation"].category == "transactional"
    assert journeys["favourite_category_sale"].category == "promotional"
    assert journeys["birthday"].trigger.offset_days == -7 and journeys["birthday"].reentry.days == 300
    assert journeys["win_back"].trigger.inactive_days == 60
    assert journeys["replenishment"].trigger.replenish_offset_days == -3
    assert "median number of days between" in journeys["replenishment"].description
    assert {journeys[n].trigger.key for n in ("back_in_stock", "price_drop")} == {"sku"}
    assert journeys["abandoned_cart"].goal.same_key and journeys["abandoned_cart"].goal.within_days == 7


def _install(ws) -> list[dict]:
    with ws.uow.session() as s:
        return library.install(s, now=ws.now())


def test_install_is_idempotent_and_keeps_what_the_shop_did(ws):
    first = _install(ws)
    assert len(first) == len(FILES) and all(j["changed"] and j["status"] == "draft" for j in first)
    with ws.uow.session() as s:
        names = {seg["name"] for seg in segment_service.list_segments(s)}
    assert {"category_viewers", "one_time_buyers_30_days"} <= names  # what the segment triggers need
    with ws.uow.session() as s:
        service.set_status(s, "abandoned_cart", "active", now=ws.now())
    again = _install(ws)
    assert not any(j["changed"] for j in again) and {j["version"] for j in again} == {1}
    assert {j["name"]: j["status"] for j in again}["abandoned_cart"] == "active"


def test_install_leaves_an_edited_segment_alone(ws):
    mine = {"name": "category_viewers", "rule": {"event": "Product Viewed", "within_days": 3, "op": "gte", "value": 5}}
    with ws.uow.session() as s:
        segment_service.save(s, mine, now=ws.now())
    _install(ws)
    with ws.uow.session() as s:
        assert segment_service.resolve_definition(s, "category_viewers").rule == mine["rule"]


def _treated(ws, name: str) -> None:
    """The ready-made journey, active, with nobody held out (the control group is random per customer id)."""
    with ws.uow.session() as s:
        service.save(s, {**library.get(name), "control_share": 0}, now=ws.now())
        service.set_status(s, name, "active", now=ws.now())


def _messages(ws) -> list[tuple]:
    with ws.engine.connect() as conn:
        return conn.execute(
            sa.select(Message.customer_id, Message.node, Message.template, Message.channels, Message.category).order_by(
                Message.id
            )
        ).all()


def _codes(ws) -> list[tuple]:
    with ws.engine.connect() as conn:
        return conn.execute(
            sa.select(PromoCode.customer_id, PromoCode.value, PromoCode.expires_at).order_by(PromoCode.created_at)
        ).all()


def _event(customer_id: str, name: str, at: datetime, **properties) -> Logged:
    kind = "identify" if name == "Identify" else "track"
    return Logged(customer_id, kind, name, at, properties)


def _stats(ws, name: str) -> dict:
    with ws.uow.session() as s:
        return service.stats(s, name)


def _pending(ws) -> list[dict]:
    with ws.uow.session() as s:
        return service.pending_approvals(s)


def _decide(ws, key: str, **kwargs) -> dict:
    with ws.uow.session() as s:
        return runtime.decide(s, key, **kwargs)


def test_abandoned_cart_end_to_end(shop):
    ws, ids = shop
    _treated(ws, "abandoned_cart")
    ann, bob, cat = ids["ann"], ids["bob"], ids["cat"]
    added = [
        _event(bob, "Product Added", T0, cart_id="k1", sku="C1"),
        _event(bob, "Product Added", T0, cart_id="k1"),
        _event(cat, "Product Added", T0, cart_id="k2"),
        _event(ann, "Product Added", T0, cart_id="k3"),
        _event(ids["dan"], "Product Added", T0, sku="no cart id"),
    ]
    assert runtime.on_events(ws.uow, added, T0)["entered"] == 3  # one per cart; no cart id, no instance
    quick = _event(ann, "Order Completed", T0 + timedelta(minutes=20), cart_id="k3", revenue=20)
    runtime.on_events(ws.uow, [quick], T0 + timedelta(minutes=20))  # within the hour: converted, never reminded
    assert runtime.run_due(ws.uow, T0 + timedelta(minutes=59)) == 0
    assert runtime.run_due(ws.uow, T0 + timedelta(hours=1)) == 2
    channels = ["email", "telegram", "sms"]
    assert _messages(ws) == [
        (bob, "reminder_1", "cart_reminder_1", channels, "triggered"),
        (cat, "reminder_1", "cart_reminder_1", channels, "triggered"),
    ]
    other_cart = _event(bob, "Order Completed", T0 + timedelta(hours=2), cart_id="zz", revenue=5)
    order = _event(bob, "Order Completed", T0 + timedelta(hours=3), cart_id="k1", revenue=55.5)
    runtime.on_events(ws.uow, [other_cart, order], T0 + timedelta(hours=3))
    assert runtime.run_due(ws.uow, T0 + timedelta(hours=25)) == 1  # cat only: bob's cart was bought
    assert _messages(ws)[2:] == [(cat, "reminder_2", "cart_reminder_2", channels, "triggered")]
    assert _codes(ws) == [(cat, 10, T0 + timedelta(hours=25, days=3))]
    stats = _stats(ws, "abandoned_cart")
    assert stats["groups"]["treated"]["entered"] == 3
    assert (stats["groups"]["treated"]["converted"], stats["groups"]["treated"]["revenue"]) == (2, 75.5)
    # the same cart again within a week: the re-entry rule keeps cat out
    assert (
        runtime.on_events(
            ws.uow, [_event(cat, "Product Added", T0 + timedelta(days=2), cart_id="k4")], T0 + timedelta(days=2)
        )["entered"]
        == 0
    )


def test_win_back_end_to_end_with_a_person_deciding_the_second_code(shop):
    ws, ids = shop
    _treated(ws, "win_back")
    bob, dan = ids["bob"], ids["dan"]
    # bob's only order was on 2024-02-10, dan's on 2024-04-01: 60 days later each enters at the day's first round
    assert runtime.run_scheduled(ws.segments, datetime(2024, 4, 9, 0, 5)) == {"win_back": 0}
    assert runtime.run_scheduled(ws.segments, datetime(2024, 4, 10, 0, 5)) == {"win_back": 1}
    assert runtime.run_scheduled(ws.segments, datetime(2024, 4, 10, 6, 0)) == {"win_back": 0}
    assert runtime.run_scheduled(ws.segments, datetime(2024, 5, 31, 0, 5)) == {"win_back": 1}
    assert runtime.run_due(ws.uow, datetime(2024, 4, 10, 9, 59)) == 0
    assert runtime.run_due(ws.uow, datetime(2024, 4, 10, 10, 0)) == 1  # 10:00 their time (UTC: no timezone)
    assert [(c, n) for c, n, *_ in _messages(ws)] == [(bob, "winback_1")]
    assert runtime.run_due(ws.uow, datetime(2024, 5, 10, 10, 0)) == 1  # 30 days on, no order: ask a person
    assert [(a["customer_id"], a["node"]) for a in _pending(ws)] == [(bob, "approve_20")]
    bob_asks = _pending(ws)[0]["key"]
    _decide(ws, bob_asks, approved=True, by="ann.admin", now=datetime(2024, 5, 11))
    assert runtime.run_due(ws.uow, datetime(2024, 5, 31, 10, 0)) == 1
    assert runtime.run_due(ws.uow, datetime(2024, 6, 30, 10, 0)) == 1
    dan_asks = [a for a in _pending(ws) if a["customer_id"] == dan]
    _decide(ws, dan_asks[0]["key"], approved=False, by="ann.admin", now=datetime(2024, 7, 1))
    assert [(c, n, t) for c, n, t, *_ in _messages(ws)] == [
        (bob, "winback_1", "winback_1"),
        (bob, "winback_2", "winback_2"),
        (dan, "winback_1", "winback_1"),
    ]
    # bob never consented to anything: his messages stop at the consent guard, and no code is issued for them
    assert [(c, pct) for c, pct, _ in _codes(ws)] == [(dan, 10)]
    stats = _stats(ws, "win_back")
    assert stats["nodes"]["done"]["here"] == {"done": 2}


def test_welcome_series_welcomes_new_profiles_only(shop):
    ws, ids = shop
    _treated(ws, "welcome_series")
    with ws.uow.session() as session:  # a new customer signs up a minute before now
        signed_up = (T0 - timedelta(minutes=1)).isoformat() + "Z"
        record(
            session,
            [
                {
                    "type": "identify",
                    "userId": "zed",
                    "timestamp": signed_up,
                    "traits": {"email": "zed@example.com", "consents": {"email": True}},
                }
            ],
            now=T0,
            limits=ws.settings.ingest,
            source="test",
        )
    move_events(ws)
    with ws.engine.connect() as conn:
        zed = conn.exec_driver_sql("SELECT id FROM customers WHERE external_id = 'zed'").scalar()
    identified = [_event(c, "Identify", T0 - timedelta(minutes=1)) for c in (zed, ids["ann"])]
    assert runtime.on_events(ws.uow, identified, T0)["entered"] == 2
    assert runtime.resolve_branches(ws.segments, T0) == 2  # ann has been a customer for 200 days: no welcome
    assert [(c, n) for c, n, *_ in _messages(ws)] == [(zed, "welcome")]
    runtime.run_due(ws.uow, T0 + timedelta(days=2))  # then 10:00 (UTC: no timezone)
    runtime.run_due(ws.uow, datetime(2024, 5, 4, 10, 0))
    runtime.run_due(ws.uow, datetime(2024, 5, 7, 10, 0))  # 3 days later: never ordered?
    runtime.resolve_branches(ws.segments, datetime(2024, 5, 7, 10, 0))
    assert [(c, t) for c, _, t, *_ in _messages(ws)] == [
        (zed, "welcome_1"),
        (zed, "welcome_bestsellers"),
        (zed, "welcome_first_order_offer"),
    ]
    assert [(c, pct) for c, pct, _ in _codes(ws)] == [(zed, 10)]


def test_no_code_for_a_customer_who_withdrew_every_consent(shop):
    """The cart's second step issues a code only to someone the reminder may still reach."""
    from boomerang.customers.models import Consent

    ws, ids = shop
    _treated(ws, "abandoned_cart")
    cat = ids["cat"]
    runtime.on_events(ws.uow, [_event(cat, "Product Added", T0, cart_id="k2")], T0)
    assert runtime.run_due(ws.uow, T0 + timedelta(hours=1)) == 1  # the first reminder
    with ws.uow.session() as s:  # cat unsubscribes from SMS, her only channel
        s.execute(sa.update(Consent).where(Consent.customer_id == cat).values(granted=False))
    assert runtime.run_due(ws.uow, T0 + timedelta(hours=25)) == 1
    assert _codes(ws) == []
    assert [node for _, node, *_ in _messages(ws)] == ["reminder_1", "reminder_2"]  # the consent guard stops it
