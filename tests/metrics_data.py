"""A hand-made shop small enough to check every metric by hand (the expected values are in test_metrics.py)."""

from __future__ import annotations

import json

import pandas as pd

from boomerang.events.log import EVENT_COLUMNS

ORDERS = [  # customer, order id, time, properties beyond the order id
    ("A", "o1", "2024-01-05 10:00", {"revenue": 100.0, "total": 110.0}),
    ("A", "o2", "2024-01-20 12:00", {"revenue": 50.0}),
    ("A", "o3", "2024-03-10 09:00", {"revenue": 30.0}),
    ("B", "o4", "2024-01-10 08:00", {"revenue": 40.0}),
    ("B", "o5", "2024-04-15 18:00", {"revenue": 60.0}),
    ("C", "o6", "2024-02-01 10:00", {"revenue": 20.0}),  # cancelled the next day
    ("C", "o7", "2024-02-03 10:00", {"revenue": 10.0}),
    ("D", "o8", "2024-03-01 15:00", {"total": 80.0}),  # no revenue: its total counts
]
OTHER = [  # customer, event, time, properties
    ("C", "Order Cancelled", "2024-02-02 10:00", {"order_id": "o6"}),
    ("B", "Order Refunded", "2024-04-20 10:00", {"order_id": "o5", "total": 25.0}),
    ("A", "NPS Survey Answered", "2024-02-01 10:00", {"score": 10}),
    ("B", "NPS Survey Answered", "2024-02-10 10:00", {"score": 9}),
    ("C", "NPS Survey Answered", "2024-03-01 10:00", {"score": 5}),
    ("D", "NPS Survey Answered", "2024-03-05 10:00", {"score": 7}),
    ("A", "Product Viewed", "2024-01-04 09:00", {"sku": "T1", "category": "Tea > Green"}),
    ("A", "Product Added", "2024-01-04 09:05", {"sku": "T1"}),
    ("A", "Checkout Started", "2024-01-05 09:00", {}),
    ("B", "Product Viewed", "2024-01-09 09:00", {"sku": "C1", "category": "Coffee"}),
    ("B", "Product Added", "2024-01-09 09:10", {"sku": "C1"}),
    ("B", "Checkout Started", "2024-01-30 09:00", {}),  # three weeks later: outside the 7-day window
    ("C", "Product Viewed", "2024-01-31 09:00", {"sku": "T2", "category": "Tea > Black"}),
    ("E", "Product Viewed", "2024-03-20 09:00", {"sku": "C2", "category": "Coffee"}),
    ("A", "Page Viewed", "2024-04-30 20:00", {}),
]
CONSENTS = [  # customer, channel, granted, at
    ("A", "email", True, "2024-01-01"),
    ("A", "email", False, "2024-01-20"),
    ("B", "email", True, "2024-01-01"),
    ("B", "email", True, "2024-02-01"),
    ("C", "sms", True, "2024-02-01"),
]


def event_frame(rows: list[tuple], received_at: str) -> pd.DataFrame:
    """(customer_id, event, "YYYY-MM-DD HH:MM", properties) rows in the event log's columns; properties as JSON."""
    frame = pd.DataFrame(
        {
            "message_id": [f"m{i}" for i in range(len(rows))],
            "type": "track",
            "event": [r[1] for r in rows],
            "customer_id": [r[0] for r in rows],
            "anonymous_id": pd.Series([None] * len(rows), dtype="string"),
            "user_id": [r[0] for r in rows],
            "timestamp": pd.to_datetime([r[2] for r in rows]),
            "received_at": pd.Timestamp(received_at),
            "source": "test",
            "properties": [json.dumps(r[3]) for r in rows],
            "context": "{}",
        }
    )
    return frame[EVENT_COLUMNS]


def events() -> pd.DataFrame:
    """The shop's events in the event log's columns; properties as JSON text."""
    rows = [(c, "Order Completed", at, {"order_id": oid, **props}) for c, oid, at, props in ORDERS] + OTHER
    return event_frame(rows, "2024-05-01")


def consents() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [c[0] for c in CONSENTS],
            "channel": [c[1] for c in CONSENTS],
            "granted": [c[2] for c in CONSENTS],
            "at": pd.to_datetime([c[3] for c in CONSENTS]),
        }
    )
