"""SQLite's writers wait their turn on a file lock beside the database (db.QueuedConnection): one at a time, the
next let in when the one before commits or rolls back, and a thread that opens a second writer of its own meets
SQLite's busy timeout instead of waiting for itself."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from boomerang.db import READING, create_sql_engine


@pytest.fixture
def engine(tmp_path):
    engine = create_sql_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE steps (n INTEGER, who TEXT)")
    yield engine
    engine.dispose()


def _writer(engine, who: str, inside: threading.Event, go_on: threading.Event, fail: bool = False) -> None:
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO steps SELECT count(*), ? FROM steps", (who,))
            inside.set()
            go_on.wait(10)
            conn.exec_driver_sql("INSERT INTO steps SELECT count(*), ? FROM steps", (who,))
            if fail:
                raise RuntimeError("rolled back")
    except RuntimeError:
        pass


@pytest.mark.parametrize("first_fails", [False, True])
def test_writers_take_turns_and_a_rollback_lets_the_next_in(engine, tmp_path, first_fails):
    first_in, first_go, second_in, second_go = (threading.Event() for _ in range(4))
    first = threading.Thread(target=_writer, args=(engine, "first", first_in, first_go, first_fails))
    first.start()
    assert first_in.wait(10)
    second = threading.Thread(target=_writer, args=(engine, "second", second_in, second_go))
    second.start()
    assert not second_in.wait(0.3)  # queued behind the first, which still writes
    assert (tmp_path / "store.sqlite-writers").exists()
    first_go.set()
    assert second_in.wait(10)  # in as soon as the first is done
    second_go.set()
    first.join(10), second.join(10)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT n, who FROM steps ORDER BY rowid").all()
    expected = (
        [(0, "second"), (1, "second")] if first_fails else [(0, "first"), (1, "first"), (2, "second"), (3, "second")]
    )
    assert [tuple(r) for r in rows] == expected


def test_a_second_writer_of_the_same_thread_meets_the_busy_timeout_not_itself(engine):
    with engine.begin() as outer:
        outer.exec_driver_sql("INSERT INTO steps VALUES (1, 'outer')")
        with engine.connect() as inner:
            inner.connection.dbapi_connection.execute("PRAGMA busy_timeout=50")
            with pytest.raises(sa.exc.OperationalError, match="locked"):
                inner.exec_driver_sql("SELECT 1")
    with engine.begin() as after:  # the queue was let go: the next writer is in at once
        assert after.exec_driver_sql("SELECT count(*) FROM steps").scalar() == 1


@contextmanager
def _writer_in_another_thread(engine):
    """A writer in a thread of its own, in the middle of its transaction until the block ends."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO steps VALUES (2, 'holder')")
            holding.set()
            release.wait(10)

    writer = threading.Thread(target=hold)
    writer.start()
    assert holding.wait(10)
    try:
        yield
    finally:
        release.set()
        writer.join(10)


def test_reading_does_not_queue(engine):
    with _writer_in_another_thread(engine), engine.execution_options(**{READING: True}).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM steps").scalar() == 0  # a snapshot beside the writer


def test_a_transaction_ended_in_another_thread_leaves_the_queue_to_whoever_comes_next(engine):
    """FastAPI may close a request's session in another thread than the one that began it; the thread that began
    it still queues afterwards (here: it waits for a writer rather than meeting SQLite's 50 ms busy timeout)."""

    def write_there() -> None:
        with engine.connect() as conn:
            conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=50")
            conn.exec_driver_sql("INSERT INTO steps VALUES (3, 'queued')")
            conn.commit()

    with ThreadPoolExecutor(1) as there:  # one thread: it begins, this one ends
        conn = engine.connect()
        there.submit(conn.exec_driver_sql, "INSERT INTO steps VALUES (1, 'begun there')").result(10)
        conn.commit()
        conn.close()
        with _writer_in_another_thread(engine):
            later = there.submit(write_there)
            assert not wait([later], timeout=0.3).done  # waiting its turn, not failed on SQLite's lock
        later.result(10)
    with engine.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT n FROM steps ORDER BY rowid")] == [1, 2, 3]
