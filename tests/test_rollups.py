"""The daily rollup stays what the log says: after appends (duplicates skipped), merges of profiles, late events,
cancellations before and after their orders, an erasure, it equals a rollup counted again from the whole log; so do
the customers' totals and the segments' changes per day."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from boomerang.events import rollups
from boomerang.events.log import EVENT_COLUMNS

EVENTS = ["Product Viewed", "Product Added", "Order Completed", "Order Cancelled", "Order Refunded", "Page Viewed"]
EVENTS += ["Segment Entered", "Segment Exited"]


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["type"] = "track"
    frame["anonymous_id"] = frame.get("anonymous_id")
    frame["received_at"] = pd.Timestamp("2025-01-01")
    frame["source"] = "test"
    frame["context"] = "{}"
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame[EVENT_COLUMNS]


def _event(i: int, customer: str | None, event: str, at: str, **props) -> dict:
    return {
        "message_id": f"m{i}",
        "event": event,
        "customer_id": customer,
        "user_id": customer,
        "timestamp": at,
        "properties": json.dumps(props),
    }


def _rollup(log) -> pd.DataFrame:
    with log.reader() as r:
        frame = r.rollup.execute()
    return frame.sort_values(["day", "customer_id", "event"], na_position="first").reset_index(drop=True)


def _recounted(log) -> pd.DataFrame:
    with log.connect() as conn:
        conn.execute("CREATE TEMP TABLE kept AS SELECT * FROM rollup_daily")
        rollups.rebuild(conn)
        frame = conn.execute("SELECT * FROM rollup_daily").df()
        conn.execute("DELETE FROM rollup_daily")
        conn.execute("INSERT INTO rollup_daily SELECT * FROM kept")
    return frame.sort_values(["day", "customer_id", "event"], na_position="first").reset_index(drop=True)


def _totals(log) -> pd.DataFrame:
    with log.reader() as r:
        frame = r.totals.execute()
    return frame.sort_values(["customer_id", "event"]).reset_index(drop=True)


def _counted(log) -> pd.DataFrame:
    """The customers' totals counted straight from the events."""
    with log.reader() as r:
        e = r.events
        e = e.filter(e.customer_id.notnull())
        frame = (
            e.group_by(["customer_id", "event"])
            .aggregate(events=e.count(), first_at=e.timestamp.min(), last_at=e.timestamp.max())
            .execute()
        )
    return frame.sort_values(["customer_id", "event"]).reset_index(drop=True)


def _segments(log) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The segments' changes per day as the log keeps them, and as counted straight from the events."""
    with log.reader() as r:
        kept = r.segment_changes.execute()
        e = r.events.filter(r.events.event.isin(["Segment Entered", "Segment Exited"]))
        e = e.mutate(day=e.timestamp.date(), segment=e.properties["segment"].str)
        e = e.filter(e.segment.notnull())
        counted = e.group_by(["day", "segment", "event"]).aggregate(events=e.count()).execute()
    keys = ["day", "segment", "event"]
    return tuple(f.sort_values(keys).reset_index(drop=True)[[*keys, "events"]] for f in (kept, counted))


def _pages(log) -> None:
    """A customer's page of events (read between their first and last time, which the totals keep) is the slice of
    all their events; the count comes from the totals."""
    with log.reader() as r:
        every = r.events.select("customer_id", "timestamp", "message_id", "event").execute()
    for customer, theirs in every.dropna(subset=["customer_id"]).groupby("customer_id"):
        theirs = theirs.sort_values(["timestamp", "message_id"], ascending=[False, True])
        for offset, limit in ((0, 1), (0, 5), (3, 5), (10, 7), (0, 500)):
            page, total = log.customer_events(customer, limit=limit, offset=offset)
            expected = theirs.iloc[offset : offset + limit]
            assert total == len(theirs), customer
            assert list(page["event"]) == list(expected["event"]), (customer, offset, limit)
            assert list(page["timestamp"]) == list(expected["timestamp"]), (customer, offset, limit)
    page, total = log.customer_events("nobody", limit=5, offset=0)
    assert total == 0 and page.empty


def _same(log) -> None:
    kept, again = _rollup(log), _recounted(log)
    assert len(kept) and len(kept) == len(again)
    pd.testing.assert_frame_equal(kept, again, check_dtype=False, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(_totals(log), _counted(log), check_dtype=False)
    pd.testing.assert_frame_equal(*_segments(log), check_dtype=False)
    _pages(log)


def test_appends_and_duplicates_count_once(ws):
    ws.log.append(
        _frame(
            [
                _event(1, "a", "Order Completed", "2024-01-05 10:00", order_id="o1", revenue=100.0, total=110.0),
                _event(2, "a", "Order Completed", "2024-01-05 18:00", order_id="o2", total=20.0),
                _event(3, None, "Product Viewed", "2024-01-05 11:00", category="Tea"),
                _event(4, "b", "Product Viewed", "2024-01-06 11:00", value="7.5"),
            ]
        )
    )
    again = _frame(
        [
            _event(1, "a", "Order Completed", "2024-01-05 10:00", order_id="o1", revenue=100.0),  # a duplicate
            _event(5, None, "Product Viewed", "2024-01-05 09:00"),
        ]
    )
    assert ws.log.append(again) == 1
    rows = _rollup(ws.log).set_index(["customer_id", "event"])
    order = rows.loc[("a", "Order Completed")]
    assert order["events"] == 2 and order["value"] == 120.0 and order["cancelled"] == 0
    assert str(order["first_at"]) == "2024-01-05 10:00:00" and str(order["last_at"]) == "2024-01-05 18:00:00"
    assert rows.loc[("b", "Product Viewed")]["value"] == 7.5  # a number given as text reads as metrics read it
    anonymous = _rollup(ws.log)
    anonymous = anonymous[anonymous.customer_id.isna()].iloc[0]
    assert anonymous["events"] == 2 and str(anonymous["first_at"]) == "2024-01-05 09:00:00"
    _same(ws.log)


def test_cancellations_before_and_after_their_orders(ws):
    ws.log.append(
        _frame(
            [
                _event(1, "a", "Order Completed", "2024-02-01 10:00", order_id="o1", revenue=30.0),
                _event(2, "b", "Order Cancelled", "2024-02-01 09:00", order_id="o2"),  # before its order arrives
            ]
        )
    )
    ws.log.append(
        _frame(
            [
                _event(3, "b", "Order Completed", "2024-01-31 10:00", order_id="o2", revenue=40.0),
                _event(4, "a", "Order Cancelled", "2024-02-02 10:00", order_id="o1"),
                _event(5, "a", "Order Cancelled", "2024-02-03 10:00", order_id="o1"),  # twice: counted once
                _event(6, "c", "Order Completed", "2024-02-03 10:00", order_id="o3", revenue=5.0),
                _event(7, "c", "Order Cancelled", "2024-02-03 11:00", order_id="o3"),  # in the same batch
            ]
        )
    )
    ws.log.append(_frame([_event(8, "a", "Order Cancelled", "2024-02-04 10:00", order_id="o1")]))  # again, later
    rows = _rollup(ws.log)
    orders = rows[rows.event == "Order Completed"].set_index("customer_id")
    assert orders["cancelled"].to_dict() == {"a": 1, "b": 1, "c": 1}
    assert orders["cancelled_value"].to_dict() == {"a": 30.0, "b": 40.0, "c": 5.0}
    _same(ws.log)


def test_merges_move_rows_and_chains_follow_the_log(ws):
    ws.log.append(
        _frame(
            [
                _event(1, "anon1", "Product Viewed", "2024-03-01 10:00"),
                _event(2, "known", "Product Viewed", "2024-03-01 12:00"),
                _event(3, "anon2", "Order Completed", "2024-03-02 10:00", order_id="o1", revenue=9.0),
            ]
        )
    )
    ws.log.append(
        _frame([_event(4, "anon1", "Product Viewed", "2024-03-01 08:00")]),
        merges=[("anon1", "known"), ("anon2", "anon3"), ("anon3", "known"), ("x", "y")],
    )
    rows = _rollup(ws.log)
    assert set(rows.customer_id) == {"known"}
    viewed = rows[rows.event == "Product Viewed"].iloc[0]
    assert viewed["events"] == 3 and str(viewed["first_at"]) == "2024-03-01 08:00:00"
    _same(ws.log)


def test_erasure_recounts_what_it_moves(ws):
    ws.log.append(
        _frame(
            [
                _event(1, "gone", "Order Completed", "2024-04-01 10:00", order_id="o1", revenue=12.0, email="x@y"),
                _event(2, "gone", "Product Viewed", "2024-04-02 10:00"),
                _event(3, "stays", "Product Viewed", "2024-04-02 11:00"),
                _event(4, "gone", "Segment Entered", "2024-04-02 12:00", segment="vip"),
                _event(5, "stays", "Segment Entered", "2024-04-02 13:00", segment="vip"),
            ]
        )
    )
    assert _segments(ws.log)[0]["events"].tolist() == [2]
    ws.log.erase_customers(["gone"], "erased-1", user_ids=["gone"])
    assert _segments(ws.log)[0]["events"].tolist() == [2]  # an erased event keeps its segment (allow-listed)
    rows = _rollup(ws.log)
    assert set(rows.customer_id) == {"erased-1", "stays"}
    assert rows[rows.event == "Order Completed"].iloc[0]["value"] == 12.0
    _same(ws.log)


def test_random_histories_match_a_recount(ws):
    rng = random.Random(7)
    customers = [f"c{i}" for i in range(8)] + [None]
    n = 0
    for _ in range(6):
        rows = []
        for _ in range(40):
            n += 1
            event = rng.choice(EVENTS)
            day = f"2024-0{rng.randint(1, 3)}-{rng.randint(10, 28)} {rng.randint(0, 23):02d}:00"
            props = {"order_id": f"o{rng.randint(1, 25)}"} if event.startswith("Order") else {}
            if event.startswith("Segment") and rng.random() < 0.9:  # one without its segment is not counted
                props["segment"] = rng.choice(["vip", "sleeping", "new"])
            if rng.random() < 0.7:
                props["revenue" if rng.random() < 0.5 else "total"] = round(rng.random() * 100, 2)
            rows.append(
                _event(n if rng.random() < 0.9 else rng.randint(1, n), rng.choice(customers), event, day, **props)
            )
        merges = [(rng.choice(customers[:-1]), rng.choice(customers[:-1])) for _ in range(rng.randint(0, 3))]
        ws.log.append(_frame(rows), merges=[(a, b) for a, b in merges if a != b])
    _same(ws.log)
    ws.log.erase_customers(["c1", "c2"], "erased-9", user_ids=["c3"])
    _same(ws.log)


@pytest.mark.parametrize("rows", [0, 1])
def test_rebuild_returns_the_rows_it_counted(ws, rows):
    if rows:
        ws.log.append(_frame([_event(1, "a", "Page Viewed", "2024-01-01 00:00")]))
    with ws.log.connect() as conn:
        assert rollups.rebuild(conn) == rows


def test_the_summary_reads_the_rollup_and_says_what_the_events_say(ws):
    assert ws.log.summary() == {"total": 0, "by_event": {}, "first": None, "last": None}
    ws.log.append(
        _frame(
            [
                _event(1, "a", "Page Viewed", "2024-01-01 08:00"),
                _event(2, None, "Page Viewed", "2024-01-03 09:30"),
                _event(3, "b", "Order Completed", "2023-12-31 23:59", order_id="o1"),
            ]
        )
    )
    with ws.log.reader() as r:
        e = r.events
        raw = e.group_by("event").aggregate(n=e.count()).execute()
        span = e.aggregate(first=e.timestamp.min(), last=e.timestamp.max()).execute().iloc[0]
    summary = ws.log.summary()
    assert summary["by_event"] == dict(zip(raw["event"], raw["n"])) == {"Page Viewed": 2, "Order Completed": 1}
    assert summary["total"] == 3 and (summary["first"], summary["last"]) == (span["first"], span["last"])


def test_the_migration_fills_the_rollup_of_an_existing_log(ws):
    from boomerang.bootstrap import upgrade_log

    ws.log.append(
        _frame(
            [
                _event(1, "a", "Order Completed", "2024-01-05 10:00", order_id="o1", revenue=10.0),
                _event(2, "a", "Order Cancelled", "2024-01-06 10:00", order_id="o1"),
                _event(3, None, "Page Viewed", "2024-01-05 11:00"),
                _event(4, "a", "Segment Entered", "2024-01-05 12:00", segment="vip"),
            ]
        )
    )
    expected, totals = _rollup(ws.log), _totals(ws.log)
    assert len(totals) == 3
    with ws.log.connect() as conn:  # the log as revision e0002 left it
        for table in (rollups.TABLE, rollups.CANCELLED, rollups.TOTALS, rollups.SEGMENTS):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE alembic_version SET version_num = 'e0002'")
    upgrade_log(str(ws.log.path))
    pd.testing.assert_frame_equal(_rollup(ws.log), expected)
    pd.testing.assert_frame_equal(_totals(ws.log), totals)
    pd.testing.assert_frame_equal(*_segments(ws.log), check_dtype=False)
    assert len(_segments(ws.log)[0]) == 1
    assert ws.log.revision() == "e0005"
