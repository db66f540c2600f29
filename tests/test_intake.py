"""The intake beside an SQLite store (events.intake): the tracking API's accepted events wait there, out of the
operational store's write lock, until the pipeline takes them, each message id once whatever crashes."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
import sqlalchemy as sa

from api_helpers import Api
from boomerang.events import ingest, intake, schemas
from boomerang.events.intake import FileIntake
from boomerang.events.models import inbox, seen
from boomerang.events.process import process, process_next
from boomerang.orchestration import rounds
from boomerang.orchestration.status import summary

T0 = datetime(2026, 3, 2, 9, 30)


def _events(ws, *ids: str) -> list[schemas.Event]:
    messages = [
        schemas.parse_one("track", {"type": "track", "anonymousId": "v1", "event": "Product Viewed", "messageId": i})
        for i in ids
    ]
    return schemas.normalise(messages, received_at=T0, limits=ws.settings.ingest, new_id=str)


def _inbox(ws) -> list[str]:
    with ws.uow.session() as s:
        return list(s.scalars(sa.select(inbox.c.message_id).order_by(inbox.c.id)))


def _seen(ws) -> dict[str, datetime]:
    with ws.uow.session() as s:
        return dict(s.execute(sa.select(seen.c.message_id, seen.c.seen_at)).all())


def test_accepted_events_wait_in_a_file_of_their_own_then_are_taken_into_the_inbox_in_order(ws):
    assert isinstance(ws.intake, FileIntake)
    assert ws.intake.put(_events(ws, "m1", "m2", "m1"), now=T0, source="browser") == ingest.IngestResult(2, 1)
    assert (ws.settings.home / "boomerang.sqlite-intake").exists()
    assert (ws.intake.waiting(), _inbox(ws), _seen(ws)) == (2, [], {})
    assert ws.intake.put(_events(ws, "m2", "m3"), now=T0, source="browser") == ingest.IngestResult(1, 1)  # waiting

    assert process(ws.uow, ws.clock, chunk_rows=2, intake=ws.intake) == 3
    assert (ws.intake.waiting(), _inbox(ws)) == (0, ["m1", "m2", "m3"])  # processed, until they move into the log
    assert _seen(ws) == dict.fromkeys(["m1", "m2", "m3"], T0)  # seen when received, for the window
    assert ws.intake.put(_events(ws, "m3", "m4"), now=T0, source="browser") == ingest.IngestResult(1, 1)  # seen
    assert rounds.ingest(ws)["events"] == 4 and ws.intake.waiting() == 0


def test_a_chunk_found_again_after_a_crash_is_not_applied_twice(ws, monkeypatch):
    ws.intake.put(_events(ws, "m1", "m2"), now=T0, source="browser")
    with monkeypatch.context() as crash:  # processed and committed into the store, then the process died
        crash.setattr(FileIntake, "_forget", lambda self, last: None)
        assert len(process_next(ws.uow, ws.clock, chunk_rows=10, intake=ws.intake)) == 2
    ws.intake.put(_events(ws, "m3"), now=T0, source="browser")
    assert ws.intake.waiting() == 3
    taken = process_next(ws.uow, ws.clock, chunk_rows=2, intake=ws.intake)  # a chunk all seen, then one more
    assert [p.event.message_id for p in taken] == ["m3"]
    assert (ws.intake.waiting(), _inbox(ws)) == (0, ["m1", "m2", "m3"])


def test_taken_events_leave_the_intake_only_when_the_taking_transaction_commits(ws):
    ws.intake.put(_events(ws, "m1"), now=T0, source="browser")
    with pytest.raises(RuntimeError), ws.uow.session() as s:
        assert intake.take_into(s) == 1
        with s.begin_nested():  # a SAVEPOINT released: SQLAlchemy tells it as a commit, but nothing is kept yet
            pass
        assert ws.intake.waiting() == 1
        raise RuntimeError("the caller failed")
    assert (ws.intake.waiting(), _inbox(ws), _seen(ws)) == (1, [], {})
    with ws.uow.session() as s:
        assert intake.take_into(s) == 1
    assert (ws.intake.waiting(), _inbox(ws)) == (0, ["m1"])


def test_two_pipelines_at_once_keep_each_event_once(ws):
    ws.intake.put(_events(ws, *(f"m{i:03}" for i in range(300))), now=T0, source="browser")
    other = FileIntake(str(ws.intake.uow.engine.url), ws.uow)  # as another process would open it
    done: list[int] = []
    pipelines = [
        threading.Thread(target=lambda i=i: done.append(process(ws.uow, ws.clock, chunk_rows=7, intake=i)))
        for i in (ws.intake, other)
    ]
    for p in pipelines:
        p.start()
    for p in pipelines:
        p.join()
    assert sum(done) == 300 and ws.intake.waiting() == 0 and _inbox(ws) == [f"m{i:03}" for i in range(300)]


def test_the_api_accepts_while_the_store_is_being_written(ws):
    """The point of the intake: a batch is answered while the pipeline holds the operational store's write lock."""
    holding, release = threading.Event(), threading.Event()

    def pipeline() -> None:
        with ws.uow.session() as s:
            s.execute(sa.text("UPDATE event_seen_ids SET seen_at = seen_at"))  # BEGIN IMMEDIATE: the lock is held
            holding.set()
            release.wait(60)

    writer = threading.Thread(target=pipeline)
    writer.start()
    holding.wait(10)
    answers = []
    api = threading.Thread(target=lambda: answers.append(ws.intake.put(_events(ws, "m1"), now=T0, source="browser")))
    api.start()
    api.join(30)
    answered_while_held = not api.is_alive()
    release.set()
    writer.join()
    api.join()
    assert answered_while_held and answers == [ingest.IngestResult(1, 0)]


def test_a_rest_call_of_an_id_still_in_the_intake_is_a_duplicate(ws):
    ws.intake.put(_events(ws, "m1"), now=T0, source="browser")
    with ws.uow.session() as s:
        assert ingest.ingest(s, _events(ws, "m1", "m2"), now=T0, source="import") == ingest.IngestResult(1, 1)
    assert process(ws.uow, ws.clock, chunk_rows=10, intake=ws.intake) == 1 and _inbox(ws) == [
        "m2",
        "m1",
    ]  # m2 applied at once, m1 drained


def test_whoever_reads_pending_events_sees_those_in_the_intake(ws):
    api = Api(ws)
    body = {"anonymousId": "v9", "event": "Product Viewed", "messageId": "w1"}
    assert api.track("track", body, process_now=False).json()["accepted"] == 1
    assert summary(ws.uow, ws.log)["events"]["pending"] == 1
    with ws.uow.session() as s:  # a privacy export or the events debugger takes them into the inbox first
        assert intake.take_into(s) == 1
        assert s.scalar(sa.select(inbox.c.processed_at).where(inbox.c.message_id == "w1")) is None
    assert ws.intake.waiting() == 0 and summary(ws.uow, ws.log)["events"]["pending"] == 1  # left it at the commit
    assert rounds.ingest(ws)["events"] == 1
    assert summary(ws.uow, ws.log)["events"]["pending"] == 0
