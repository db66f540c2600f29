"""The dispatcher on a real store: queued messages through the guards to the fake channel, exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from boomerang.channels.base import SendResult
from boomerang.channels.fake import FakeChannel
from boomerang.channels.models import FakeChannelLog
from boomerang.config import FrequencyCap, GuardSettings
from boomerang.customers.models import Consent, Customer
from boomerang.messaging import service as templates
from boomerang.messaging.guards import in_global_control
from boomerang.messaging.models import Message

NOW = datetime(2026, 3, 10, 12, 0)  # noon UTC: daytime where the timezone is unknown
PG_CUSTOMERS = 100
NOTHING = {"sent": 0, "suppressed": 0, "deferred": 0, "retrying": 0, "failed": 0}


@pytest.fixture
def store(ws):
    ws.settings.guards = GuardSettings(global_control_share=0)
    return ws


def add_customer(session, cid, *, consents=("email",), email="x", phone=None, telegram=None, tz=None, merged_into=None):
    session.add(
        Customer(
            id=cid,
            email=f"{cid}@example.com" if email == "x" else email,
            phone=phone,
            telegram_chat_id=telegram,
            timezone=tz,
            attributes={},
            merged_into_id=merged_into,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    session.flush()
    for channel in consents:
        granted = not channel.startswith("-")
        session.add(
            Consent(customer_id=cid, channel=channel.lstrip("-"), granted=granted, source="test", updated_at=NOW)
        )


def queue(
    session,
    key,
    cid,
    *,
    channels=("email",),
    template=None,
    category="triggered",
    when_capped="defer",
    send_after=NOW,
    status="queued",
    sent_at=None,
    channel=None,
):
    session.add(
        Message(
            key=key,
            source="journey:test",
            instance_id=None,
            node="n",
            customer_id=cid,
            channels=list(channels),
            channel=channel,
            template=template or f"t_{key}",
            category=category,
            when_capped=when_capped,
            status=status,
            send_after=send_after,
            attempts=0,
            created_at=send_after,
            sent_at=sent_at,
        )
    )


def messages(ws) -> dict[str, Message]:
    with ws.uow.session() as session:
        return {m.key: m for m in session.scalars(sa.select(Message))}


def log_of(ws) -> list[tuple[str, str, str | None]]:
    with ws.uow.session() as session:
        rows = session.scalars(sa.select(FakeChannelLog).order_by(FakeChannelLog.id))
        return [(r.message_key, r.channel, r.address) for r in rows]


def test_send_suppress_defer_and_fallback(store):
    with store.uow.session() as s:
        add_customer(s, "ann")
        add_customer(s, "bob", consents=())
        add_customer(s, "kei", tz="Asia/Tokyo")  # noon UTC is 21:00 in Tokyo
        add_customer(s, "dan", consents=("-email", "telegram", "sms"), phone="+380501234567")  # no telegram id
        add_customer(s, "eve")
        queue(s, "m_ann", "ann")
        queue(s, "m_bob", "bob")
        queue(s, "m_kei", "kei", category="promotional")
        queue(s, "m_dan", "dan", channels=("email", "telegram", "sms"))
        queue(s, "m_eve_control", "eve", status="held_out")
        queue(s, "m_eve_later", "eve", send_after=NOW + timedelta(minutes=1))
    assert store.dispatcher.dispatch(now=NOW) == {**NOTHING, "sent": 2, "suppressed": 1, "deferred": 1}
    got = messages(store)
    assert (got["m_ann"].status, got["m_ann"].channel, got["m_ann"].sent_at, got["m_ann"].reason) == (
        "sent",
        "email",
        NOW,
        None,
    )
    assert (got["m_bob"].status, got["m_bob"].reason) == ("suppressed", "consent: email: no consent")
    assert (got["m_kei"].status, got["m_kei"].send_after) == ("queued", datetime(2026, 3, 11, 0, 0))
    assert got["m_kei"].reason == "deferred by quiet_hours: 21:00 in Asia/Tokyo is within 21:00-09:00"
    assert (got["m_dan"].status, got["m_dan"].channel) == ("sent", "sms")
    assert got["m_dan"].reason == "email: consent withdrawn; telegram: no telegram_chat_id"
    assert (got["m_eve_control"].status, got["m_eve_later"].status) == ("held_out", "queued")
    assert log_of(store) == [("m_ann", "email", "ann@example.com"), ("m_dan", "sms", "+380501234567")]
    # morning in Tokyo and in UTC: the deferred message goes; the held-out one never does
    assert store.dispatcher.dispatch(now=datetime(2026, 3, 11, 9, 0)) == {**NOTHING, "sent": 2}
    assert [k for k, _, _ in log_of(store)] == ["m_ann", "m_dan", "m_eve_later", "m_kei"]
    assert messages(store)["m_eve_control"].status == "held_out"


def test_running_twice_sends_nothing_twice(store):
    with store.uow.session() as s:
        for i in range(30):
            add_customer(s, f"c{i}")
            queue(s, f"m{i}", f"c{i}", send_after=NOW - timedelta(seconds=i))
    assert store.dispatcher.dispatch(now=NOW, limit=20)["sent"] == 20  # the oldest first
    assert store.dispatcher.dispatch(now=NOW, limit=20)["sent"] == 10
    assert store.dispatcher.dispatch(now=NOW) == NOTHING
    assert store.dispatcher.dispatch(now=NOW + timedelta(days=2)) == NOTHING
    assert Counter(k for k, _, _ in log_of(store)) == {f"m{i}": 1 for i in range(30)}


def test_a_batch_counts_its_own_sends_and_goes_in_priority_order(store):
    store.settings.guards = GuardSettings(global_control_share=0, caps={"all": FrequencyCap(count=2, days=7)})
    with store.uow.session() as s:
        add_customer(s, "ann")
        queue(s, "promo", "ann", category="promotional", send_after=NOW - timedelta(hours=3))  # due first...
        queue(s, "cart", "ann", template="cart", send_after=NOW - timedelta(hours=2))
        queue(s, "cart_again", "ann", template="cart", send_after=NOW - timedelta(hours=1))
        queue(s, "receipt", "ann", category="transactional", send_after=NOW)
        queue(s, "winback", "ann", template="winback")
        queue(s, "drop_me", "ann", template="other", when_capped="drop")
    assert store.dispatcher.dispatch(now=NOW) == {**NOTHING, "sent": 3, "suppressed": 2, "deferred": 1}
    got = messages(store)
    assert [k for k, _, _ in log_of(store)] == ["receipt", "cart", "winback"]  # transactional, then by due time
    assert got["cart_again"].reason.startswith("duplicate: cart sent by email at 2026-03-10 12:00")
    assert got["drop_me"].reason == "frequency: 2 of 2 in 7 days (all) (dropped)"
    assert (got["promo"].status, got["promo"].send_after) == ("queued", NOW + timedelta(hours=24))
    assert got["promo"].reason.startswith("deferred by priority: transactional t_receipt sent at 2026-03-10 12:00")


def test_messages_sent_before_count_for_caps(store):
    with store.uow.session() as s:
        add_customer(s, "ann", consents=("email", "sms"), phone="+15550001")
        queue(
            s,
            "old1",
            "ann",
            channels=("sms",),
            status="sent",
            channel="sms",
            sent_at=NOW - timedelta(days=6),
            send_after=NOW - timedelta(days=6),
        )
        queue(
            s,
            "old2",
            "ann",
            channels=("sms",),
            status="sent",
            channel="sms",
            sent_at=NOW - timedelta(days=2),
            send_after=NOW - timedelta(days=2),
        )
        queue(s, "new", "ann", channels=("sms", "email"))
    assert store.dispatcher.dispatch(now=NOW) == {**NOTHING, "deferred": 1}  # sms: 2 in 7 days, the default cap
    got = messages(store)["new"]
    assert got.send_after == NOW + timedelta(days=1)
    assert got.reason == "deferred by frequency: 2 of 2 in 7 days (sms)"
    assert store.dispatcher.dispatch(now=NOW + timedelta(days=1))["sent"] == 1


class Failing:
    """A provider that is down: a network channel, so each attempt is marked sending, then settled."""

    name, in_store, concurrency = "failing", False, 1

    def __init__(self, permanent=False):
        self.permanent = permanent

    def close(self):
        pass

    def send(self, message):
        return SendResult.failed("provider down", permanent=self.permanent)


def a_template(session, name):
    templates.save(
        session, {"name": name, "locales": {"en": {"subject": "Hello", "text": "Hi {{ first_name }}"}}}, now=NOW
    )


def test_a_failing_channel_is_retried_with_backoff_then_fails(store, monkeypatch):
    store.channels.override("email", lambda ctx: Failing())
    with store.uow.session() as s:
        a_template(s, "t_m")
        add_customer(s, "ann")
        queue(s, "m", "ann")
    at = NOW
    for attempt in range(1, 5):
        assert store.dispatcher.dispatch(now=at) == {**NOTHING, "retrying": 1}
        got = messages(store)["m"]
        assert (got.status, got.attempts, got.sent_at) == ("queued", attempt, None)
        assert got.send_after == at + timedelta(seconds=30 * 2**attempt)
        assert got.reason == f"email: provider down (attempt {attempt} of 5)"
        assert store.dispatcher.dispatch(now=got.send_after - timedelta(seconds=1)) == NOTHING  # not due yet
        at = got.send_after
    assert store.dispatcher.dispatch(now=at) == {**NOTHING, "failed": 1}
    got = messages(store)["m"]
    assert (got.status, got.attempts, got.reason) == ("failed", 5, "email: provider down (after 5 attempts)")
    assert store.dispatcher.dispatch(now=at + timedelta(days=1)) == NOTHING


def test_a_permanent_failure_fails_at_once(store, monkeypatch):
    store.channels.override("email", lambda ctx: Failing(permanent=True))
    with store.uow.session() as s:
        a_template(s, "t_m")
        add_customer(s, "ann")
        queue(s, "m", "ann")
    assert store.dispatcher.dispatch(now=NOW) == {**NOTHING, "failed": 1}
    assert messages(store)["m"].reason == "email: provider down (permanent)"


def test_a_channel_that_raises_loses_only_its_own_message(store, monkeypatch):
    class Broken(FakeChannel):
        def send(self, message):
            super().send(message)  # written, then rolled back with the attempt
            raise RuntimeError("secret-token-in-url")

    store.channels.override("sms", lambda ctx: Broken(None, ctx))
    with store.uow.session() as s:
        add_customer(s, "ann")
        add_customer(s, "bob", consents=("sms",), phone="+15550002")
        queue(s, "m_ann", "ann")
        queue(s, "m_bob", "bob", channels=("sms",))
    assert store.dispatcher.dispatch(now=NOW) == {**NOTHING, "sent": 1, "retrying": 1}
    assert log_of(store) == [("m_ann", "email", "ann@example.com")]
    assert messages(store)["m_bob"].reason == "sms: channel error (RuntimeError) (attempt 1 of 5)"


def test_global_control_and_merged_profiles(ws):
    held = next(f"g{i}" for i in range(1000) if in_global_control(f"g{i}", 0.05))
    with ws.uow.session() as s:
        add_customer(s, held)
        add_customer(s, "target", email="t@example.com")
        add_customer(s, "source", consents=(), email=None, merged_into="target")
        queue(s, "promo", held, category="promotional")
        queue(s, "receipt", held, category="transactional")
        queue(s, "to_source", "source")
    assert ws.dispatcher.dispatch(now=NOW) == {**NOTHING, "sent": 2, "suppressed": 1}
    got = messages(ws)
    assert got["promo"].reason == "global_control: customer in the global control group"
    assert got["to_source"].status == "sent"
    assert ("to_source", "email", "t@example.com") in log_of(ws)


def test_the_worker_tick_dispatches(store):
    from boomerang.orchestration.rounds import tick

    with store.uow.session() as s:
        add_customer(s, "ann")
        queue(s, "m", "ann")
    assert tick(store, NOW)["sent"] == 1


def test_two_workers_on_postgresql_send_every_message_exactly_once(pg_ws):
    pg_ws.settings.guards = GuardSettings(global_control_share=0, caps={"all": FrequencyCap(count=1, days=7)})
    with pg_ws.uow.session() as s:
        for i in range(PG_CUSTOMERS):
            add_customer(s, f"c{i:03d}")
            for j in range(3):  # one fits the cap: the others are deferred, even when the other worker has them
                queue(s, f"m{i:03d}_{j}", f"c{i:03d}", send_after=NOW - timedelta(seconds=3 * (PG_CUSTOMERS - i) - j))
    due = sa.select(sa.func.count()).select_from(Message).where(Message.status == "queued", Message.send_after <= NOW)
    totals, errors, start, lock = Counter(), [], threading.Barrier(2), threading.Lock()

    def work():
        try:
            start.wait()
            while True:
                counts = pg_ws.dispatcher.dispatch(now=NOW, limit=2)  # a customer's messages split
                with lock:
                    totals.update(counts)
                if not sum(counts.values()):
                    with pg_ws.engine.connect() as conn:
                        if not conn.execute(due).scalar_one():
                            return
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert (totals["sent"], totals["deferred"]) == (PG_CUSTOMERS, 2 * PG_CUSTOMERS)
    sent = Counter(k for k, _, _ in log_of(pg_ws))
    assert len(sent) == PG_CUSTOMERS and set(sent.values()) == {1}
    assert Counter(k.split("_")[0] for k in sent) == {f"m{i:03d}": 1 for i in range(PG_CUSTOMERS)}  # one per customer
    assert {m.status for m in messages(pg_ws).values()} == {"sent", "queued"}
