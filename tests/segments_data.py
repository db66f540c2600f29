"""A small shop for the segment tests, loaded through the real ingestion path (identify and track).

Now is 2024-05-01 12:00 UTC. Who is who:
- ann: email+consent, Kyiv, birthday 05-04, VIP tag; 3 orders (last 2024-04-20); viewed Coffee 3 times this week
- bob: email without consent, Lviv; one order 2024-02-10 (82 days ago); viewed Coffee twice this week, added to cart
- cat: phone+SMS consent, Kyiv, birthday 11-30; no order; viewed Coffee 4 times this week, then Order Completed? no
- dan: Telegram; one order 2024-03-31 (31 days ago), age attribute 41
- eve: anonymous-looking profile with only an external id; nothing else
"""

from __future__ import annotations

from datetime import datetime, timedelta

from boomerang.core.clock import FixedClock
from boomerang.events.ingest import record
from boomerang.orchestration.rounds import move_events

NOW = datetime(2024, 5, 1, 12, 0)

PEOPLE = {
    "ann": {
        "email": "ann@example.com",
        "city": "Kyiv",
        "birthday": "1990-05-04",
        "tags": ["vip", "coffee"],
        "consents": {"email": True},
    },
    "bob": {"email": "bob@example.com", "city": "Lviv", "consents": {"email": False}},
    "cat": {"phone": "+380501112233", "city": "Kyiv", "birthday": "1985-11-30", "consents": {"sms": True}},
    "dan": {"first_name": "Dan", "age": 41, "telegram_chat_id": "5550001", "consents": {"telegram": True}},
    "eve": {},
}


RULES = [  # a rule and who, by user id, it finds now
    ({"attribute": "city", "op": "eq", "value": "Kyiv"}, {"ann", "cat"}),
    ({"attribute": "city", "op": "not_exists"}, {"dan", "eve"}),
    ({"attribute": "email", "op": "ends_with", "value": "@example.com"}, {"ann", "bob"}),
    ({"attribute": "attributes.age", "op": "gte", "value": 40}, {"dan"}),
    ({"attribute": "attributes.tags", "op": "contains", "value": "vip", "type": "list"}, {"ann"}),
    (
        {
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "starts_with", "value": "Coffee"}],
            "within_days": 7,
            "op": "gte",
            "value": 3,
        },
        {"ann", "cat"},
    ),
    ({"not": {"event": "Order Completed", "within_days": 60}}, {"bob", "cat", "eve"}),
    ({"event": "Order Completed", "op": "eq", "value": 0}, {"cat", "eve"}),
    ({"event": "Order Completed", "measure": "sum", "property": "revenue", "op": "gte", "value": 150}, {"ann", "dan"}),
    ({"event": "Order Completed", "measure": "last", "op": "more_than_days_ago", "value": 30}, {"bob", "dan"}),
    ({"event": "Order Completed", "between": ["2024-02-01", "2024-02-29"]}, {"bob"}),
    ({"anniversary": "birthday", "within_next_days": 7}, {"ann"}),
    ({"reachable": "email"}, {"ann"}),
    ({"reachable": "sms"}, {"cat"}),
    ({"any": [{"reachable": "telegram"}, {"attribute": "city", "op": "eq", "value": "Lviv"}]}, {"bob", "dan"}),
    ({"all": [{"attribute": "city", "op": "eq", "value": "Kyiv"}, {"not": {"event": "Order Completed"}}]}, {"cat"}),
    ({"bucket": [0, 100]}, {"ann", "bob", "cat", "dan", "eve"}),
    # event conditions side by side: one scan of the log (compile._fold), each test as alone
    (
        {
            "all": [
                {
                    "event": "Product Viewed",
                    "where": [{"property": "category", "op": "starts_with", "value": "Coffee"}],
                },
                {"event": "Product Viewed", "within_days": 7, "op": "gte", "value": 3},
                {"not": {"event": "Order Completed", "within_days": 60}},
            ]
        },
        {"cat"},
    ),
    (
        {
            "any": [
                {"event": "Order Completed", "measure": "sum", "property": "revenue", "op": "gte", "value": 150},
                {"event": "Product Added", "within_days": 7},
            ]
        },
        {"ann", "bob", "dan"},
    ),
    ({"all": [{"event": "Order Completed", "op": "eq", "value": 0}, {"not": {"event": "Product Viewed"}}]}, {"eve"}),
    (
        {
            "all": [
                {"event": "Order Completed", "measure": "last", "op": "more_than_days_ago", "value": 30},
                {"not": {"event": "Order Completed", "measure": "last", "op": "more_than_days_ago", "value": 90}},
                {"event": "Order Completed", "measure": "max", "property": "revenue", "op": "lt", "value": 100},
            ]
        },
        {"bob"},
    ),
    (
        {
            "all": [
                {"event": "Product Viewed", "per": "category", "within_days": 7, "op": "gte", "value": 3},
                {"not": {"event": "Order Completed", "within_days": 7}},
            ]
        },
        {"ann", "cat"},
    ),
    ({"event": "Product Viewed", "per": "category", "op": "lt", "value": 3}, {"dan", "eve"}),
]


def _at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat() + "Z"


def _order(user: str, oid: str, days_ago: float, revenue: float) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": _at(days_ago),
        "properties": {"order_id": oid, "revenue": revenue, "currency": "USD"},
    }


def _view(user: str, days_ago: float, category: str) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": "Product Viewed",
        "timestamp": _at(days_ago),
        "properties": {"sku": "C1", "category": category},
    }


def messages() -> list[dict]:
    out = [{"type": "identify", "userId": u, "timestamp": _at(200), "traits": traits} for u, traits in PEOPLE.items()]
    out += [
        _order("ann", "a1", 120, 50.0),
        _order("ann", "a2", 60, 70.0),
        _order("ann", "a3", 11, 30.0),
        _order("bob", "b1", 81.5, 40.0),
        _order("dan", "d1", 30.5, 200.0),
    ]
    out += [_view("ann", d, "Coffee > Beans") for d in (1, 2, 3)]
    out += [_view("bob", d, "Coffee > Beans") for d in (1, 2)] + [_view("bob", 10, "Coffee > Beans")]
    out += [_view("cat", d, "Coffee") for d in (0.5, 1, 4, 6)]
    out += [
        {"type": "track", "userId": "bob", "event": "Product Added", "timestamp": _at(1), "properties": {"sku": "C1"}}
    ]
    # a Kyiv customer of the past: ann's twin who was only seen after now does not exist yet
    return out


def load(ws) -> dict[str, str]:
    """Load the shop; returns user id -> customer id."""
    ws.clock = FixedClock(NOW)
    with ws.uow.session() as session:
        record(session, messages(), now=NOW, limits=ws.settings.ingest, source="test")
    move_events(ws)
    with ws.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT external_id, id FROM customers").all()
    return dict(rows)
