"""What the recommendation tests track: orders as Segment messages."""

from __future__ import annotations

from datetime import datetime


def order(n: int, user: str, at: datetime, skus: list[str]) -> dict:
    """Order Completed number `n` (order `O{n}`) of `user` at `at`: one of each sku at 10."""
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": at.isoformat(),
        "messageId": f"o-{n}",
        "properties": {
            "order_id": f"O{n}",
            "revenue": 20.0,
            "products": [{"sku": s, "price": 10.0, "quantity": 1} for s in skus],
        },
    }
