"""No message sent twice on client retries (issue 14.2), on SQLite and PostgreSQL: a message id is a
duplicate for the whole deduplication window, whichever way it comes again, and is forgotten after it;
and, independently, an event starts a journey once however often it is delivered (two workers included)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from api_helpers import Api
from boomerang.bootstrap import open_workspace
from boomerang.channels.models import FakeChannelLog
from boomerang.config import IngestSettings
from boomerang.core.clock import FixedClock
from boomerang.events import ingest, intake, schemas
from boomerang.events.models import seen
from boomerang.events.schemas import Logged
from boomerang.journeys import library, runtime
from boomerang.journeys import models as m
from boomerang.journeys import service as journeys
from boomerang.messaging import service as templates
from boomerang.messaging.models import Message
from boomerang.orchestration import rounds

T0 = datetime(2026, 3, 2, 12, 0)
ANN = {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com", "consents": {"email": True}}}
ORDER = {
    "event": "Order Completed",
    "userId": "ann",
    "messageId": "ajs-order-o1",
    "properties": {"order_id": "o1", "total": 25, "products": [{"sku": "MUG-1", "price": 12.5, "quantity": 2}]},
}


@pytest.fixture
def shop(any_ws):
    return _open_shop(any_ws)


def _open_shop(ws):
    """A shop with the ready-made templates, the order confirmation journey on and Ann, who may be emailed."""
    ws.clock = FixedClock(T0)
    with ws.uow.session() as s:
        templates.install(s, now=T0)
        journeys.save(s, library.get("order_confirmation"), now=T0)
        journeys.set_status(s, "order_confirmation", "active", now=T0)
        ingest.record(s, [ANN], now=T0, limits=ws.settings.ingest, source="server")
    return ws


def _later(ws, **delta) -> None:
    ws.clock.at = ws.clock.at + timedelta(**delta)


def _round(ws) -> None:
    """What the pipeline does every moment: effects, the log, journeys, then due messages."""
    rounds.ingest(ws)
    rounds.tick(ws)


def _count(ws, query) -> int:
    with ws.uow.session() as s:
        return s.scalar(query)


def _sent(ws) -> int:
    return _count(ws, sa.select(sa.func.count()).select_from(FakeChannelLog))


def _confirmations(ws) -> int:
    return _count(ws, sa.select(sa.func.count()).where(Message.template == "order_confirmation"))


def _instances(ws) -> int:
    return _count(ws, sa.select(sa.func.count()).select_from(m.Instance))


def _seen_ids(ws) -> set[str]:
    with ws.uow.session() as s:
        return set(s.scalars(sa.select(seen.c.message_id)))


def _ann(ws) -> str:
    with ws.uow.session() as s:
        return s.scalar(sa.text("SELECT customer_id FROM identities WHERE kind = 'user' AND value = 'ann'"))


def _orders(ws, copies: int = 1) -> list[schemas.Event]:
    """ORDER, checked as the REST calls and importers have it, `copies` times."""
    message = schemas.parse_one("track", {**ORDER, "type": "track"})
    return schemas.normalise([message] * copies, received_at=ws.now(), limits=ws.settings.ingest, new_id=str)


def _order_event(ws, message_id: str = "evt-1", order_id: str = "o1") -> Logged:
    return Logged(_ann(ws), "track", "Order Completed", T0, {"order_id": order_id, "total": 25}, message_id)


def test_an_order_sent_again_later_is_a_duplicate_and_confirmed_once(shop):
    ws, api = shop, Api(shop)
    first = api.track("track", ORDER, server=True, process_now=False)
    assert first.json() == {"success": True, "accepted": 1, "duplicates": 0}
    _round(ws)  # processed, flushed into the log, the journey started and its email sent
    assert _sent(ws) == 1
    with ws.uow.session() as s:
        assert s.scalar(sa.text("SELECT count(*) FROM event_inbox")) == 0  # the inbox has forgotten it

    for wait in ({"seconds": 6}, {"hours": 1}):
        _later(ws, **wait)
        again = api.track("track", ORDER, server=True, process_now=False)
        assert again.status_code == 200
        assert again.json() == {"success": True, "accepted": 0, "duplicates": 1}
        _round(ws)

    assert (_sent(ws), _confirmations(ws), _instances(ws)) == (1, 1, 1)
    assert api.events("SELECT count(*) FROM events WHERE event = 'Order Completed'") == [(1,)]


def test_rest_calls_and_imports_share_the_window_with_the_tracking_api(shop):
    ws, api = shop, Api(shop)
    api.track("track", ORDER, server=True)
    _later(ws, minutes=5)
    with ws.uow.session() as s:
        assert ingest.ingest(s, _orders(ws, copies=2), now=ws.now(), source="import") == ingest.IngestResult(0, 2)
    assert api.track("track", {**ORDER, "messageId": "ajs-order-o1-b"}, server=True).json()["accepted"] == 1


def test_after_the_window_the_round_forgets_the_id_in_chunks(shop):
    ws = shop
    ws.settings.ingest = IngestSettings(dedup_window_hours=24, dedup_prune_chunk_rows=2)
    api = Api(ws)
    for i in range(5):
        api.track("track", {**ORDER, "messageId": f"old-{i}"}, server=True)
    _later(ws, hours=23)
    api.track("track", {**ORDER, "messageId": "recent"}, server=True)
    _later(ws, hours=1, seconds=1)  # the first five are past the window, the last is not

    assert api.track("track", {**ORDER, "messageId": "old-0"}, server=True).json()["duplicates"] == 1  # not yet pruned
    assert rounds.forget_seen(ws) == 6  # the five and the shop's identify, two per transaction
    assert _seen_ids(ws) == {"recent"}
    assert rounds.forget_seen(ws) == 0
    assert api.track("track", {**ORDER, "messageId": "old-0"}, server=True).json()["accepted"] == 1
    assert api.track("track", {**ORDER, "messageId": "recent"}, server=True).json()["duplicates"] == 1


def test_two_requests_with_the_same_id_at_once_accept_it_once_on_postgres(pg_ws):
    """The second request waits for the first one's transaction, then counts a duplicate (not two acceptances)."""
    ws, other = pg_ws, open_workspace(pg_ws.settings)
    results: list[ingest.IngestResult] = []
    with ws.uow.session() as first:
        assert intake.accept(first, _orders(ws), now=T0, source="server").accepted == 1
        second = threading.Thread(target=lambda: results.append(_accept_in(other, _orders(other))))
        second.start()
        second.join(0.5)
        assert second.is_alive()  # waiting on the first request's uncommitted id
    second.join(10)
    other.engine.dispose()
    assert results == [ingest.IngestResult(accepted=0, duplicates=1)]
    assert _seen_ids(ws) == {ORDER["messageId"]}


def _accept_in(ws, events) -> ingest.IngestResult:
    with ws.uow.session() as session:
        return intake.accept(session, events, now=T0, source="server")


def test_one_instance_per_triggering_event_whatever_delivers_it(shop):
    ws = shop
    order = _order_event(ws)
    assert runtime.on_events(ws.uow, [order, order], T0) == {"entered": 1, "advanced": 0}
    assert runtime.on_events(ws.uow, [order], T0 + timedelta(days=3))["entered"] == 0  # a replay, an import
    assert (_instances(ws), _confirmations(ws)) == (1, 1)
    with ws.uow.session() as s:
        assert s.scalar(sa.select(m.Instance.trigger_event_id)) == "evt-1"
    # the journey lets every order in (re-entry: always): another event of the same order is another entry
    assert runtime.on_events(ws.uow, [_order_event(ws, "evt-2")], T0)["entered"] == 1


def test_an_instance_another_worker_started_first_is_left_out_with_its_messages(shop):
    """A worker that had not seen the other's instance when it started its own: the unique index keeps one,
    and the loser's messages are not queued (on SQLite the write lock orders the workers; this is the loser)."""
    ws = shop
    order = _order_event(ws)
    runtime.on_events(ws.uow, [order], T0)
    with ws.uow.session() as s:
        runner = runtime.Runner(s, T0)
        row = journeys.get(s, "order_confirmation")
        assert runner.start(row, order.customer_id, "o1", event_id=order.message_id) is not None  # not known here
        assert runner.finish() == 1
    assert (_instances(ws), _confirmations(ws)) == (1, 1)


def test_two_workers_handed_the_same_event_start_one_instance_on_postgres(pg_ws):
    """Two PostgreSQL transactions that both passed the check: the second waits for the first, then finds the
    (journey, event) taken and queues nothing."""
    ws = _open_shop(pg_ws)
    order = _order_event(ws)
    other = open_workspace(ws.settings)
    with ws.uow.session() as first, other.uow.session() as second:
        runners = [runtime.Runner(session, T0) for session in (first, second)]
        for runner in runners:
            row = journeys.get(runner.session, "order_confirmation")
            runner.know_events([order.message_id], [row.id])  # neither sees the other's instance
            assert runner.start(row, order.customer_id, "o1", event_id=order.message_id) is not None
        assert runners[0].finish() == 0
        left_out: list[int] = []
        waiting = threading.Thread(target=lambda: left_out.append(runners[1].finish()))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive()  # blocked on the first worker's uncommitted instance
        first.commit()
        waiting.join(10)
    other.engine.dispose()
    assert left_out == [1]
    assert (_instances(ws), _confirmations(ws)) == (1, 1)


def test_two_workers_racing_on_many_events_start_each_once_on_postgres(pg_ws):
    ws = _open_shop(pg_ws)
    orders = [_order_event(ws, f"evt-{i}", f"o{i}") for i in range(60)]
    workers = [open_workspace(ws.settings) for _ in range(2)]
    start, counts, errors = threading.Barrier(2), [], []

    def work(worker) -> None:
        try:
            start.wait()
            counts.append(runtime.on_events(worker.uow, orders, T0)["entered"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker in workers:
        worker.engine.dispose()
    assert not errors and sum(counts) == 60
    assert (_instances(ws), _confirmations(ws)) == (60, 60)
