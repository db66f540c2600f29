"""The guards, one rule at a time and in their order: pure functions of a message, a customer and a time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from boomerang.config import FrequencyCap, GuardSettings, Settings
from boomerang.messaging import guards
from boomerang.messaging.guards import GUARDS, Context, Outgoing, Sent, decide, in_global_control

NOON = datetime(2026, 3, 10, 12, 0)  # a Tuesday, naive UTC
ALL_CHANNELS = {"email": True, "sms": True, "telegram": True, "webpush": True, "inapp": True}


def msg(channels=("email",), template="promo_a", category="promotional", when_capped="defer", gone=None) -> Outgoing:
    return Outgoing("c1", tuple(channels), template, category, when_capped, "journey:j", "i1:n:1", gone=gone)


def ctx(*, consents=None, recent=(), tz=None, control=False, settings=None, **addresses) -> Context:
    addresses = {"email": "a@example.com", "phone": "+380501234567", "telegram_chat_id": "42", **addresses}
    return Context(
        "c1",
        addresses,
        tz,
        dict(ALL_CHANNELS if consents is None else consents),
        control,
        list(recent),
        settings or GuardSettings(),
    )


def sent(hours_ago: float, channel="email", category="promotional", template="other") -> Sent:
    return Sent(channel, category, template, "journey:x", NOON - timedelta(hours=hours_ago))


def test_the_order_is_data():
    assert [name for name, _ in GUARDS] == [
        "purpose",
        "consent",
        "preferences",
        "global_control",
        "duplicate",
        "priority",
        "frequency",
        "quiet_hours",
    ]


def test_a_message_whose_reason_is_gone_is_suppressed_unless_transactional():
    gone = "the journey's goal was met"
    decision = decide(msg(gone=gone), ctx(), NOON)
    assert (decision.action, decision.guard, decision.reason) == ("suppress", "purpose", gone)
    assert decide(msg(gone=gone, category="transactional"), ctx(), NOON).action == "send"


def test_a_message_that_passes_every_rule_is_sent_on_the_first_channel():
    d = decide(msg(("email", "sms")), ctx(), NOON)
    assert (d.action, d.channel, d.guard, d.reason, d.until) == ("send", "email", "", "", None)


# -- consent ---------------------------------------------------------------------------------------


def test_fallback_to_the_first_channel_with_consent_and_an_address():
    d = decide(
        msg(("email", "telegram", "sms")),
        ctx(consents={"email": False, "sms": True, "telegram": True}, telegram_chat_id=None),
        NOON,
    )
    assert (d.action, d.channel) == ("send", "sms")
    assert d.reason == "email: consent withdrawn; telegram: no telegram_chat_id"


def test_no_reachable_channel_is_suppressed_naming_what_each_lacks():
    d = decide(msg(("email", "sms", "telegram")), ctx(consents={"email": True, "sms": False}, email=None), NOON)
    assert (d.action, d.guard, d.channel) == ("suppress", "consent", None)
    assert d.reason == "email: no email; sms: consent withdrawn; telegram: no consent"


def test_webpush_and_inapp_need_consent_only():
    d = decide(msg(("webpush",)), ctx(consents={"webpush": True}, email=None, phone=None, telegram_chat_id=None), NOON)
    assert (d.action, d.channel) == ("send", "webpush")
    assert decide(msg(("inapp",)), ctx(consents={}), NOON).reason == "inapp: no consent"


def test_a_webhook_is_not_a_customer_channel_and_needs_no_consent():
    d = decide(msg(("webhook",), template="https://example.com/h", category="transactional"), ctx(consents={}), NOON)
    assert (d.action, d.channel) == ("send", "webhook")


def test_unknown_customer():
    c = ctx()
    c.found = False
    d = decide(msg(), c, NOON)
    assert (d.action, d.guard, d.reason) == ("suppress", "consent", "customer not found")


# -- global control --------------------------------------------------------------------------------


def test_global_control_holds_out_marketing_only():
    d = decide(msg(category="triggered"), ctx(control=True), NOON)
    assert (d.action, d.guard, d.channel) == ("suppress", "global_control", "email")
    assert decide(msg(category="transactional"), ctx(control=True), NOON).action == "send"


def test_global_control_membership_is_stable_and_about_the_share():
    ids = [f"cus_{i}" for i in range(20000)]
    share = sum(in_global_control(i, 0.05) for i in ids) / len(ids)
    assert 0.04 < share < 0.06
    assert [in_global_control(i, 0.05) for i in ids[:200]] == [in_global_control(i, 0.05) for i in ids[:200]]
    assert not any(in_global_control(i, 0) for i in ids[:1000])
    assert {i for i in ids if in_global_control(i, 0.05)} <= {i for i in ids if in_global_control(i, 0.10)}


def test_consent_comes_before_global_control():
    d = decide(msg(), ctx(consents={}, control=True), NOON)
    assert d.guard == "consent"


# -- duplicate -------------------------------------------------------------------------------------


def test_the_same_template_within_a_day_on_any_channel_is_suppressed():
    d = decide(msg(("email",), template="promo_a"), ctx(recent=[sent(23, channel="sms", template="promo_a")]), NOON)
    assert (d.action, d.guard) == ("suppress", "duplicate")
    assert "promo_a sent by sms at 2026-03-09 13:00" in d.reason
    assert decide(msg(template="promo_a"), ctx(recent=[sent(25, template="promo_a")]), NOON).action == "send"


def test_transactional_templates_repeat():
    recent = [sent(1, category="transactional", template="receipt")]
    assert decide(msg(template="receipt", category="transactional"), ctx(recent=recent), NOON).action == "send"


# -- priority --------------------------------------------------------------------------------------


def test_promotional_waits_out_the_gap_after_a_triggered_message():
    recent = [sent(30, category="triggered"), sent(5, category="triggered", template="cart")]
    d = decide(msg(), ctx(recent=recent), NOON)
    assert (d.action, d.guard, d.until) == ("defer", "priority", NOON + timedelta(hours=19))
    assert "triggered cart" in d.reason


def test_priority_after_transactional_and_dropping():
    recent = [sent(2, category="transactional", template="receipt")]
    d = decide(msg(when_capped="drop"), ctx(recent=recent), NOON)
    assert (d.action, d.guard, d.until) == ("suppress", "priority", None)
    assert d.reason.endswith("(dropped)")


def test_triggered_and_transactional_are_not_deferred_by_priority():
    recent = [sent(2, category="transactional", template="receipt")]
    assert decide(msg(category="triggered"), ctx(recent=recent), NOON).action == "send"
    assert decide(msg(), ctx(recent=[sent(2, category="promotional")]), NOON).action == "send"


# -- frequency -------------------------------------------------------------------------------------


def test_over_the_channel_cap_defers_until_the_oldest_counted_message_leaves_the_window():
    settings = GuardSettings(caps={"email": FrequencyCap(count=2, days=7)})
    recent = [sent(24 * 6), sent(24 * 2), sent(24 * 8)]  # the 8-day-old one is out of the window
    d = decide(msg(), ctx(recent=recent, settings=settings), NOON)
    assert (d.action, d.guard) == ("defer", "frequency")
    assert d.until == NOON - timedelta(days=6) + timedelta(days=7)
    assert d.reason == "2 of 2 in 7 days (email)"


def test_the_cap_frees_when_enough_messages_have_left_not_only_the_oldest():
    settings = GuardSettings(caps={"all": FrequencyCap(count=2, days=7)})
    recent = [sent(24 * 6, channel="sms"), sent(24 * 4), sent(24 * 1, channel="telegram")]  # 3 in, cap 2
    d = decide(msg(), ctx(recent=recent, settings=settings), NOON)
    assert d.until == NOON - timedelta(days=4) + timedelta(days=7)  # then only one is left
    assert d.reason == "3 of 2 in 7 days (all)"


def test_caps_count_per_channel_and_across_channels():
    settings = GuardSettings(caps={"all": FrequencyCap(count=3, days=7), "sms": FrequencyCap(count=1, days=7)})
    one_sms = [sent(48, channel="sms")]
    assert decide(msg(("email",)), ctx(recent=one_sms, settings=settings), NOON).action == "send"
    assert decide(msg(("sms",)), ctx(recent=one_sms, settings=settings), NOON).guard == "frequency"
    three = [sent(48, channel="sms"), sent(30, channel="telegram"), sent(50, channel="webpush")]
    assert decide(msg(("email",)), ctx(recent=three, settings=settings), NOON).guard == "frequency"


def test_the_cap_of_the_fallback_channel_is_the_one_that_counts():
    settings = GuardSettings(caps={"sms": FrequencyCap(count=1, days=7)})
    d = decide(
        msg(("email", "sms")), ctx(consents={"sms": True}, recent=[sent(48, channel="sms")], settings=settings), NOON
    )
    assert (d.action, d.guard, d.channel) == ("defer", "frequency", "sms")


def test_both_caps_over_defers_to_the_later_time():
    settings = GuardSettings(caps={"all": FrequencyCap(count=1, days=1), "email": FrequencyCap(count=1, days=7)})
    d = decide(msg(), ctx(recent=[sent(10)], settings=settings), NOON)
    assert d.until == NOON - timedelta(hours=10) + timedelta(days=7)


def test_transactional_messages_are_exempt_and_not_counted():
    settings = GuardSettings(caps={"all": FrequencyCap(count=1, days=7)})
    receipts = [sent(48, category="transactional", template=f"r{i}") for i in range(5)]
    assert decide(msg(category="triggered"), ctx(recent=receipts, settings=settings), NOON).action == "send"
    promos = [sent(48, template="p")]
    assert decide(msg(category="transactional"), ctx(recent=promos, settings=settings), NOON).action == "send"


def test_over_the_cap_with_drop_is_suppressed():
    settings = GuardSettings(caps={"all": FrequencyCap(count=1, days=7)})
    d = decide(msg(category="triggered", when_capped="drop"), ctx(recent=[sent(48)], settings=settings), NOON)
    assert (d.action, d.guard, d.until) == ("suppress", "frequency", None)


def test_the_default_caps():
    caps = GuardSettings().caps
    assert (caps["all"].count, caps["all"].days, caps["sms"].count) == (3, 7, 2)
    recent = [sent(24 * i, channel=ch) for i, ch in ((1, "sms"), (2, "telegram"), (3, "webpush"))]
    assert decide(msg(("email",)), ctx(recent=recent), NOON).guard == "frequency"


# -- quiet hours -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tz, now, until",
    [
        (None, datetime(2026, 3, 10, 22, 30), datetime(2026, 3, 11, 9, 0)),  # unknown: UTC
        ("Not/AZone", datetime(2026, 3, 10, 3, 0), datetime(2026, 3, 10, 9, 0)),  # invalid: UTC
        ("America", datetime(2026, 3, 10, 3, 0), datetime(2026, 3, 10, 9, 0)),  # a folder, not a zone: UTC
        ("Europe/Kyiv", datetime(2026, 3, 10, 19, 30), datetime(2026, 3, 11, 7, 0)),  # 21:30 local, UTC+2
        ("America/New_York", datetime(2026, 3, 10, 12, 0), datetime(2026, 3, 10, 13, 0)),  # 08:00 EDT
        ("Asia/Tokyo", datetime(2026, 3, 10, 14, 0), datetime(2026, 3, 11, 0, 0)),  # 23:00 local
        ("America/New_York", datetime(2026, 3, 8, 6, 0), datetime(2026, 3, 8, 13, 0)),  # 01:00 EST, 09:00 is EDT
    ],
)
def test_marketing_at_night_waits_for_the_local_morning(tz, now, until):
    d = decide(msg(), ctx(tz=tz), now)
    assert (d.action, d.guard, d.until) == ("defer", "quiet_hours", until)
    assert d.until > now


@pytest.mark.parametrize(
    "tz, now",
    [
        ("Europe/Kyiv", datetime(2026, 3, 10, 7, 0)),  # 09:00 local: allowed again
        ("Asia/Tokyo", datetime(2026, 3, 10, 11, 59)),  # 20:59 local
        ("Not/AZone", datetime(2026, 3, 10, 20, 0)),
    ],
)
def test_daytime_is_allowed(tz, now):
    assert decide(msg(), ctx(tz=tz), now).action == "send"


def test_transactional_is_sent_at_night():
    assert decide(msg(category="transactional"), ctx(tz="Europe/Kyiv"), datetime(2026, 3, 10, 1, 0)).action == "send"


def test_a_quiet_window_within_one_day_and_none_at_all():
    day_window = GuardSettings(quiet_start="13:00", quiet_end="15:00")
    d = decide(msg(), ctx(settings=day_window), datetime(2026, 3, 10, 14, 0))
    assert d.until == datetime(2026, 3, 10, 15, 0)
    assert decide(msg(), ctx(settings=day_window), datetime(2026, 3, 10, 23, 0)).action == "send"
    off = GuardSettings(quiet_start="00:00", quiet_end="00:00")
    assert decide(msg(), ctx(settings=off), datetime(2026, 3, 10, 3, 0)).action == "send"


# -- the order -------------------------------------------------------------------------------------


def test_the_first_rule_that_objects_decides():
    settings = GuardSettings(caps={"all": FrequencyCap(count=1, days=7)})
    night = datetime(2026, 3, 10, 23, 0)
    recent = [Sent("email", "triggered", "promo_a", "journey:x", night - timedelta(hours=1))]
    assert decide(msg(), ctx(recent=recent, settings=settings), night).guard == "duplicate"
    assert decide(msg(template="b"), ctx(recent=recent, settings=settings), night).guard == "priority"
    triggered = msg(template="b", category="triggered")
    assert decide(triggered, ctx(recent=recent, settings=settings), night).guard == "frequency"
    assert decide(triggered, ctx(recent=[], settings=settings), night).guard == "quiet_hours"


def test_reordering_the_list_reorders_the_rules(monkeypatch):
    night = datetime(2026, 3, 10, 23, 0)
    recent = [Sent("email", "promotional", "promo_a", "journey:x", night - timedelta(hours=1))]
    assert decide(msg(), ctx(recent=recent), night).guard == "duplicate"
    monkeypatch.setattr(guards, "GUARDS", [GUARDS[1], GUARDS[7], GUARDS[4]])
    assert decide(msg(), ctx(recent=recent), night).guard == "quiet_hours"


def test_outgoing_from_a_message_row_and_settings_from_the_environment(monkeypatch):
    from boomerang.messaging.models import Message

    row = Message(
        key="k",
        source="campaign:x",
        customer_id="c9",
        channels=["sms", "email"],
        template="t",
        category="triggered",
        when_capped="drop",
    )
    assert Outgoing.from_message(row) == Outgoing("c9", ("sms", "email"), "t", "triggered", "drop", "campaign:x", "k")
    monkeypatch.setenv("BOOMERANG_GUARDS__GLOBAL_CONTROL_SHARE", "0.1")
    monkeypatch.setenv("BOOMERANG_GUARDS__CAPS", '{"all": {"count": 5, "days": 3}}')
    s = Settings().guards
    assert (s.global_control_share, s.caps["all"].count, s.quiet_start, s.longest_window) == (0.1, 5, "21:00", 72)


def test_a_message_about_a_cart_or_product_loses_its_reason_when_they_change():
    from types import SimpleNamespace as Row

    from boomerang.messaging.reasons import _why

    cart = {"event": "Product Added", "key": "cart_id", "properties": {"cart_id": "c1"}}
    assert _why(cart, Row(order_id=None, lines=[{"sku": "A", "quantity": 1}]), None) is None
    assert _why(cart, Row(order_id="o-1", lines=[{"sku": "A", "quantity": 1}]), None) == "the cart was bought"
    assert _why(cart, Row(order_id=None, lines=[]), None) == "the cart is empty"
    back = {"event": "Back In Stock", "key": "sku", "properties": {"sku": "A"}}
    assert _why(back, None, Row(in_stock=True, price=10)) is None
    assert _why(back, None, Row(in_stock=False, price=10)) == "the product is out of stock again"
    drop = {"event": "Price Dropped", "key": "sku", "properties": {"sku": "A", "price": 8, "old_price": 10}}
    assert _why(drop, None, Row(in_stock=True, price=8)) is None
    assert _why(drop, None, Row(in_stock=True, price=9)) == "the price went back up"
