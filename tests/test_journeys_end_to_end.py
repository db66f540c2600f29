"""The abandoned cart as a shop lives it, on SQLite and PostgreSQL, with a real SMTP server on loopback:
a cart, a reminder that shows the cart's items with tracked links in both parts, a click, a second
reminder held back by the frequency cap, an order after the journey's last step that counts as its
conversion, and the held-back reminder that never goes."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi.testclient import TestClient

from boomerang.api.app import create_app
from boomerang.catalog import service as catalog
from boomerang.catalog.schemas import ProductIn
from boomerang.channels import config as channel_settings
from boomerang.config import FrequencyCap, GuardSettings
from boomerang.core.clock import FixedClock
from boomerang.events.ingest import record
from boomerang.journeys import library
from boomerang.journeys import service as journeys
from boomerang.messaging import service as templates
from boomerang.messaging.models import Message, MessageEvent
from boomerang.orchestration import rounds
from messaging_data import NOW
from smtp_server import SmtpServer

MUG = {"sku": "MUG-1", "name": "Blue enamel mug", "price": 12.5, "currency": "EUR"}
LINK = re.compile(r"https?://\S+/t/c/\S+")


def _track(ws, *messages: dict) -> None:
    """What a shop's server sends, through the inbox and the whole round (effects, log, segments, journeys)."""
    with ws.uow.session() as session:
        record(session, list(messages), now=ws.now(), limits=ws.settings.ingest, source="server")
    rounds.ingest(ws)


def _at(ws, moment) -> None:
    ws.clock.at = moment
    rounds.tick(ws)


def _messages(ws) -> list[tuple]:
    with ws.uow.session() as s:
        return s.execute(sa.select(Message.node, Message.status, Message.reason).order_by(Message.id)).all()


def test_abandoned_cart_from_the_cart_to_the_counted_order(any_ws):
    ws = any_ws
    ws.clock = FixedClock(NOW)
    ws.settings.guards = GuardSettings(global_control_share=0, caps={"all": FrequencyCap(count=1, days=7)})
    with SmtpServer() as smtp, TestClient(create_app(ws, background=False)) as web:
        with ws.uow.session() as s:
            channel_settings.save(
                s,
                "email",
                "smtp",
                {"port": smtp.port, "security": "none", "from_address": "shop@example.com"},
                secret=ws.secret,
                now=NOW,
            )
            catalog.upsert_products(
                s,
                [ProductIn(**MUG, url="https://shop.example.com/mug", image_url="https://cdn.example.com/mug.jpg")],
                now=NOW,
            )
            templates.install(s, now=NOW)
            journeys.save(s, {**library.get("abandoned_cart"), "control_share": 0}, now=NOW)
            journeys.set_status(s, "abandoned_cart", "active", now=NOW)

        _track(
            ws,
            {
                "type": "identify",
                "userId": "ann",
                "traits": {"email": "ann@example.com", "firstName": "Ann", "consents": {"email": True}},
            },
            # what a browser says of the product is not what the email shows: the catalog's name and price are
            {
                "type": "track",
                "userId": "ann",
                "event": "Product Added",
                "properties": {"cart_id": "c-1", "sku": "MUG-1", "quantity": 2},
            },
        )
        _at(ws, NOW + timedelta(minutes=59))
        assert smtp.received == []
        _at(ws, NOW + timedelta(hours=1))
        (first,) = smtp.received
        mail = first.parsed()
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        assert "- Blue enamel mug: 2 × €12.50 http://" in text  # the cart's line, its link tracked
        assert "Blue enamel mug</a>" in html and "2 × €12.50" in html
        assert "https://cdn.example.com/mug.jpg" in html
        assert "https://shop.example.com/" not in text.split("--")[0]  # every link in the text part is tracked
        click = LINK.search(text).group(0)
        answer = web.get(urlsplit(click).path + "?" + urlsplit(click).query, follow_redirects=False)
        assert answer.status_code in (302, 303, 307)
        assert answer.headers["location"].startswith("https://shop.example.com/")

        _at(ws, NOW + timedelta(hours=25))  # the code and the second reminder: the weekly cap holds it back
        assert [(node, status) for node, status, _ in _messages(ws)] == [
            ("reminder_1", "clicked"),
            ("reminder_2", "queued"),
        ]
        _track(
            ws,
            {
                "type": "track",
                "userId": "ann",
                "event": "Order Completed",
                "timestamp": (NOW + timedelta(hours=30)).isoformat() + "Z",
                "properties": {
                    "order_id": "o-1",
                    "cart_id": "c-1",
                    "total": 25,
                    "products": [{"sku": "MUG-1", "price": 12.5, "quantity": 2}],
                },
            },
        )
        _at(ws, NOW + timedelta(days=8))  # the cap has passed: the reminder would go now, but its cart was bought
        assert len(smtp.received) == 1
        (_, status, reason) = _messages(ws)[1]
        assert status == "suppressed" and reason.startswith("purpose:"), reason
        with ws.uow.session() as s:
            stats = journeys.stats(s, "abandoned_cart")
            clicks = s.scalar(
                sa.select(sa.func.count()).select_from(MessageEvent).where(MessageEvent.kind == "clicked")
            )
        assert (stats["groups"]["treated"]["converted"], stats["groups"]["treated"]["revenue"]) == (1, 25.0)
        assert clicks == 1
