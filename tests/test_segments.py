"""Segments: rules, validation, members as of a date, explain, membership diffs and live updates."""

from __future__ import annotations

import pytest

import segments_data
from boomerang.core.errors import ValidationFailed
from boomerang.orchestration.rounds import move_events
from boomerang.segments import membership, service
from boomerang.segments.definition import parse_definition


@pytest.fixture
def shop(ws):
    ids = segments_data.load(ws)
    return ws, ids


def _members(ws, ids, rule, as_of=None) -> set[str]:
    frame = ws.segments.members({"name": "probe", "rule": rule}, as_of=as_of)
    names = {v: k for k, v in ids.items()}
    return {names[c] for c in frame["customer_id"]}


@pytest.mark.parametrize("rule, expected", segments_data.RULES)
def test_rules(shop, rule, expected):
    ws, ids = shop
    assert _members(ws, ids, rule) == expected


def test_buckets_split_everyone_once(shop):
    ws, ids = shop
    halves = [_members(ws, ids, {"bucket": b, "salt": "ab"}) for b in ([0, 50], [50, 100])]
    assert halves[0] | halves[1] == set(ids) and not halves[0] & halves[1]


def test_as_of_a_past_date(shop):
    ws, ids = shop
    rule = {"event": "Order Completed", "within_days": 30}
    assert _members(ws, ids, rule) == {"ann"}
    assert _members(ws, ids, rule, as_of="2024-02-15") == {"bob"}  # b1 on 2024-02-10
    assert _members(ws, ids, {"event": "Order Completed", "op": "eq", "value": 0}, as_of="2023-12-31") == set(ids)


def test_traits_rfm_live_as_of_and_stored(shop):
    ws, ids = shop
    with pytest.raises(ValidationFailed, match="rfm traits"):
        ws.segments.members({"name": "x", "rule": {"trait": "rfm_group", "op": "exists"}})
    assert _members(ws, ids, {"trait": "frequency", "op": "gte", "value": 2}, as_of="2024-04-30") == {"ann"}
    from boomerang.metrics import service as metrics

    metrics.store_traits(ws.uow, ws.log, "rfm", {"date_to": "2024-04-30"}, now=ws.now())
    assert _members(ws, ids, {"trait": "frequency", "op": "gte", "value": 3}) == {"ann"}
    assert _members(ws, ids, {"trait": "monetary", "op": "top_percent", "value": 34}) == {"dan"}


@pytest.mark.parametrize(
    "raw, field, reason",
    [
        (
            {"name": "x", "rule": {"attribute": "shoe_size", "op": "eq", "value": 1}},
            "rule.attribute",
            "unknown profile field",
        ),
        ({"name": "x", "rule": {"attribute": "city", "op": "gt", "value": 1}}, "rule", "does not fit a string"),
        (
            {"name": "x", "rule": {"event": "Order Completed", "between": ["2024-03-01", "2024-02-01"]}},
            "rule",
            "impossible window",
        ),
        (
            {"name": "x", "rule": {"all": [{"event": "A"}, {"trait": "rfm_group", "op": "in", "value": "x"}]}},
            "rule.all[1]",
            "non-empty list",
        ),
        ({"name": "x", "rule": {"event": "A", "within": 3}}, "rule.within", "Extra inputs"),
        ({"name": "x", "rule": {"foo": 1}}, "rule", "exactly one of"),
        ({"name": "Bad Name", "rule": {"event": "A"}}, "name", "lower-case"),
        ({"name": "x", "rule": {"event": "A", "measure": "sum", "op": "gt", "value": 1}}, "rule", "needs the property"),
    ],
)
def test_validation_names_the_field(raw, field, reason):
    with pytest.raises(ValidationFailed) as info:
        parse_definition(raw)
    error = info.value.errors[0]
    assert error["field"].startswith(field) and reason in error["reason"], error


def test_versions_and_references(shop):
    ws, _ = shop
    now = ws.now()
    with ws.uow.session() as s:
        first = service.save(s, {"name": "kyiv", "rule": {"attribute": "city", "op": "eq", "value": "Kyiv"}}, now=now)
    assert first["version"] == 1 and first["triggers"] == ["profile"]
    with ws.uow.session() as s:
        again = service.save(s, {"name": "kyiv", "rule": {"attribute": "city", "op": "eq", "value": "Kyiv"}}, now=now)
    assert again["version"] == 1 and not again["changed"]
    with ws.uow.session() as s:
        changed = service.save(
            s, {"name": "kyiv", "rule": {"attribute": "city", "op": "in", "value": ["Kyiv", "Kiev"]}}, now=now
        )
    assert changed["version"] == 2 and changed["changed"]
    with pytest.raises(ValidationFailed, match="does not exist"), ws.uow.session() as s:
        service.save(s, {"name": "y", "rule": {"segment": "nowhere"}}, now=now)
    with ws.uow.session() as s:
        service.save(
            s, {"name": "kyiv_buyers", "rule": {"all": [{"segment": "kyiv"}, {"event": "Order Completed"}]}}, now=now
        )
    with pytest.raises(ValidationFailed, match="cycle"), ws.uow.session() as s:
        service.save(s, {"name": "kyiv", "rule": {"segment": "kyiv_buyers"}}, now=now)
    with pytest.raises(ValidationFailed, match="used by kyiv_buyers"), ws.uow.session() as s:
        service.delete(s, "kyiv")


def test_explain_gives_every_condition_with_its_value(shop):
    ws, ids = shop
    with ws.uow.session() as s:
        service.save(
            s,
            {
                "name": "coffee_no_buy",
                "rule": {
                    "all": [
                        {
                            "event": "Product Viewed",
                            "where": [{"property": "category", "op": "starts_with", "value": "Coffee"}],
                            "within_days": 7,
                            "op": "gte",
                            "value": 3,
                        },
                        {"not": {"event": "Order Completed", "within_days": 7}},
                    ]
                },
            },
            now=ws.now(),
        )
    cat = ws.segments.explain("coffee_no_buy", ids["cat"])
    assert cat["member"] is True
    views, no_order = cat["rule"]["children"]
    assert views["value"] == 4 and views["passed"] and "in the last 7 days" in views["condition"]
    assert no_order["op"] == "not" and no_order["children"][0]["value"] == 0
    bob = ws.segments.explain("coffee_no_buy", ids["bob"])
    assert bob["member"] is False and bob["rule"]["children"][0]["value"] == 2


def test_refresh_records_entries_and_exits_once(shop):
    ws, ids = shop
    with ws.uow.session() as s:
        service.save(
            s, {"name": "recent_buyers", "rule": {"event": "Order Completed", "within_days": 30}}, now=ws.now()
        )
    first = membership.refresh(ws.segments)
    assert first[0]["size"] == 1 and first[0]["entered"] == 1
    assert membership.refresh(ws.segments)[0]["entered"] == 0
    from boomerang.core.clock import FixedClock

    ws.clock = FixedClock(segments_data.NOW.replace(month=6, day=1))
    later = membership.refresh(ws.segments)
    assert later[0]["size"] == 0 and later[0]["exited"] == 1
    move_events(ws)
    with ws.log.connect() as conn:
        rows = conn.execute(
            "SELECT event, customer_id FROM events WHERE source = 'segments' ORDER BY timestamp"
        ).fetchall()
    assert rows == [("Segment Entered", ids["ann"]), ("Segment Exited", ids["ann"])]
    with ws.uow.session() as s:
        assert [h["size"] for h in service.history(s, "recent_buyers")] == [1, 1, 0]


def test_live_update_touches_only_the_segments_that_mention_the_event(shop):
    ws, ids = shop
    with ws.uow.session() as s:
        service.save(s, {"name": "buyers", "rule": {"event": "Order Completed"}}, now=ws.now())
        service.save(s, {"name": "kyiv", "rule": {"attribute": "city", "op": "eq", "value": "Kyiv"}}, now=ws.now())
    membership.refresh(ws.segments)
    from boomerang.events.ingest import record

    move_events(ws)  # the Segment Entered events of the refresh
    with ws.uow.session() as session:
        record(
            session,
            [
                {
                    "type": "track",
                    "userId": "cat",
                    "event": "Order Completed",
                    "timestamp": "2024-05-01T11:00:00Z",
                    "properties": {"order_id": "c1", "revenue": 5},
                }
            ],
            now=segments_data.NOW,
            limits=ws.settings.ingest,
            source="test",
        )
    logged = move_events(ws)
    touched = membership.touched_by(logged)
    assert touched == {ids["cat"]: {"Order Completed"}}
    changes = membership.update_customers(ws.segments, touched)
    assert changes == [{"name": "buyers", "entered": 1, "exited": 0}]
    with ws.uow.session() as s:
        assert membership.current(s, "buyers")["members"] == 4


@pytest.mark.parametrize("listed", [1000, 0])  # the customers whose clock runs ahead named in the SQL, or selected
def test_conditions_over_all_time_read_the_customers_totals_and_answer_as_the_log(shop, monkeypatch, listed):
    import ibis

    from boomerang.events.ingest import record
    from boomerang.segments import compile

    monkeypatch.setattr(compile, "LATE_LIMIT", listed)
    ws, ids = shop
    ahead = {"type": "track", "userId": "ann", "event": "Order Completed", "properties": {"order_id": "a4"}}
    with ws.uow.session() as session:  # a client's clock an hour fast: as of now, ann's fourth order has not happened
        record(
            session,
            [{**ahead, "timestamp": (segments_data.NOW.replace(hour=13)).isoformat() + "Z"}],
            now=segments_data.NOW,
            limits=ws.settings.ingest,
            source="test",
        )
    move_events(ws)
    rules = {
        "orders": ({"event": "Order Completed", "op": "eq", "value": 3}, {"ann"}),
        "last": (
            {"event": "Order Completed", "measure": "last", "op": "more_than_days_ago", "value": 10},
            {"ann", "bob", "dan"},
        ),
        "first": (
            {"event": "Order Completed", "measure": "first", "op": "within_last_days", "value": 90},
            {"bob", "dan"},
        ),
        "both": (
            {"all": [{"event": "Order Completed", "op": "eq", "value": 1}, {"not": {"event": "Product Viewed"}}]},
            {"dan"},
        ),
    }
    for name, (rule, expected) in rules.items():
        with ws.segments.compiler() as c:
            assert "rollup_customer" in ibis.to_sql(c.members(parse_definition({"name": name, "rule": rule}).tree))
        assert _members(ws, ids, rule) == expected, name
        assert _members(ws, ids, rule, as_of=segments_data.NOW) == expected, name  # a moment given: the log alone
    frame = ws.segments.members({"name": "ann", "rule": rules["orders"][0]}, only=[ids["ann"], ids["bob"]])
    assert list(frame["customer_id"]) == [ids["ann"]]


def test_a_recompute_writes_only_what_still_differs_when_another_process_wrote_first(shop):
    from sqlalchemy import func, select

    from boomerang.segments.models import Segment, SegmentMember

    ws, ids = shop
    with ws.uow.session() as s:
        service.save(s, {"name": "buyers", "rule": {"event": "Order Completed"}}, now=ws.now())
    assert membership.refresh(ws.segments)[0]["size"] == 3  # ann, bob, dan
    with ws.uow.session() as s:
        segment = s.scalar(select(Segment).where(Segment.name == "buyers"))
        s.expunge(segment)
    # differences found on members read before someone else wrote: only what still differs is written
    assert membership._write(ws.uow, segment, [ids["cat"]], [ids["eve"]], scope=None, at=ws.now()) == (1, 0, 4)
    assert membership._write(ws.uow, segment, [ids["cat"]], [ids["dan"]], scope=None, at=ws.now()) == (0, 1, 3)
    with ws.uow.session() as s:
        members = s.scalar(select(func.count()).where(SegmentMember.segment_id == segment.id))
        assert members == 3 and s.get(Segment, segment.id).size == 3
    move_events(ws)
    with ws.log.connect() as conn:
        entered = conn.execute(
            "SELECT count(*) FROM events WHERE event = 'Segment Entered' AND customer_id = ?", [ids["cat"]]
        ).fetchone()[0]
    assert entered == 1
