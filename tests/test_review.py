"""The monthly review: its numbers are those of the metric code and of the incrementality report for the month;
it goes to the owners once over a real SMTP server and a real Telegram Bot API stand-in, and never twice."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from tests.api_helpers import Api
from tests.experiments_data import load_ab_journey
from tests.metrics_data import event_frame
from tests.smtp_server import SmtpServer
from tests.telegram_server import TelegramServer
from tests.test_dashboard import _login, _user
from typer.testing import CliRunner

from boomerang.channels.smtp import SmtpChannel
from boomerang.channels.telegram import TelegramChannel
from boomerang.cli.app import app
from boomerang.config import ReviewSettings
from boomerang.events.reader import Reader
from boomerang.messaging.models import Message
from boomerang.metrics import headline
from boomerang.metrics import service as metrics
from boomerang.metrics.periods import Period
from boomerang.orchestration import incrementality, review, review_send, review_store, rounds
from boomerang.orchestration.status import summary

MAY, APRIL = date(2026, 5, 1), date(2026, 4, 1)
FUNNEL = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]


def _events() -> pd.DataFrame:
    """April: 30 orders of 40.0; May: 40 orders of 50.0 (ten customers twice), a funnel of 20 viewers losing
    customers at each step; segment entries and exits in both months; the data runs to 2 June."""
    rows: list[tuple[str, str, str, dict]] = []
    for n in range(30):
        rows.append(
            (f"c{n:05d}", "Order Completed", f"2026-04-{n % 28 + 1:02d} 10:00", {"order_id": f"a{n}", "revenue": 40.0})
        )
    for n in range(40):
        cid = f"c{n % 30:05d}"
        rows.append((cid, "Order Completed", f"2026-05-{n % 28 + 2:02d} 12:00", {"order_id": f"b{n}", "revenue": 50.0}))
    for n in range(20):  # 20 view, 12 add, 8 check out, 5 buy within the window
        cid, day = f"f{n:03d}", f"2026-05-{n + 3:02d}"
        rows.append((cid, "Product Viewed", f"{day} 09:00", {"sku": "T1", "category": "Tea"}))
        if n < 12:
            rows.append((cid, "Product Added", f"{day} 09:05", {"sku": "T1"}))
        if n < 8:
            rows.append((cid, "Checkout Started", f"{day} 09:10", {}))
        if n < 5:
            rows.append((cid, "Order Completed", f"{day} 09:20", {"order_id": f"f{n}", "revenue": 20.0}))
    segment = [("vip", "Segment Entered", "2026-04-10", 5), ("vip", "Segment Entered", "2026-05-10", 3)]
    segment += [("vip", "Segment Exited", "2026-05-12", 1), ("lapsed", "Segment Entered", "2026-04-15", 4)]
    segment += [("lapsed", "Segment Exited", "2026-05-20", 3), ("lapsed", "Segment Entered", "2026-06-01", 9)]
    for name, event, day, count in segment:
        for k in range(count):
            rows.append((f"s{k:03d}", event, f"{day} 03:00", {"segment": name, "version": 1}))
    rows.append(("c00001", "Page Viewed", "2026-06-02 08:00", {}))
    return event_frame(rows, "2026-06-02")


def _messages(session) -> None:
    """Suppressed in May: 3 by the frequency cap, 2 by quiet hours... and 1 cancelled; one in April; 4 sent."""
    plan = [
        ("suppressed", "frequency_cap: 3 messages in 7 days", "2026-05-04"),
        ("suppressed", "frequency_cap: 3 messages in 7 days", "2026-05-05"),
        ("suppressed", "frequency_cap: 2 promotional in 1 day", "2026-05-06"),
        ("suppressed", "global_control: held out of all marketing", "2026-05-07"),
        ("suppressed", "global_control: held out of all marketing", "2026-05-08"),
        ("suppressed", "campaign cancelled", "2026-05-09"),
        ("suppressed", "frequency_cap: 3 messages in 7 days", "2026-04-28"),
    ] + [("sent", None, f"2026-05-1{k}") for k in range(4)]
    for n, (status, reason, day) in enumerate(plan):
        at = datetime.fromisoformat(day + " 10:00")
        session.add(
            Message(
                key=f"review-test:{n}",
                source="journey:ab_welcome",
                customer_id=f"c{n:05d}",
                channels=["email"],
                channel="email",
                template="welcome",
                category="triggered",
                status=status,
                reason=reason,
                send_after=at,
                created_at=at,
                sent_at=at if status == "sent" else None,
            )
        )


@pytest.fixture
def shop(ws):
    load_ab_journey(ws)
    ws.log.append(_events())
    with ws.uow.session() as session:
        _messages(session)
    return ws


def test_segment_changes_read_from_the_log_s_count_say_what_the_events_say(shop, monkeypatch):
    """A month runs midnight to midnight, so the segments' changes come from the log's count per day; from the
    events (as on an engine keeping no count, or over a period starting mid-day) they are the same."""
    since, until = datetime(2026, 5, 1), datetime(2026, 6, 1)
    kept = review.segment_changes(shop.log, since=since, until=until, titles={"vip": "VIP"})
    assert kept["all"] and kept["grew"][0]["title"] == "VIP"
    monkeypatch.setattr(Reader, "segment_changes", property(lambda self: None))
    assert review.segment_changes(shop.log, since=since, until=until, titles={"vip": "VIP"}) == kept
    monkeypatch.undo()
    mid_day = review.segment_changes(shop.log, since=datetime(2026, 5, 10, 4), until=until, titles={})  # by the hour
    changes = [(s["segment"], s["start"], s["entered"], s["exited"]) for s in mid_day["all"]]
    assert changes == [("lapsed", 4, 0, 3), ("vip", 8, 0, 1)]  # vip's entries at 03:00 on the 10th came before


def _run(ws):
    return lambda name, params: metrics.run(ws.uow, ws.log, name, params)


def test_the_review_is_the_metric_code_and_the_incrementality_report_for_the_month(shop):
    r = review.build(shop.uow, shop.log, month=None, global_control_share=0.05)
    assert r["month"] == "2026-05" and r["period"]["complete"] and r["before"]["comparable"]  # the last whole month
    run = _run(shop)
    may, april = Period(MAY, date(2026, 5, 31)), Period(APRIL, date(2026, 4, 30))
    now, then = (headline.values(headline.measure(run, p)) for p in (may, april))
    assert r["kpis"] == headline.tiles(summary(shop.uow, shop.log), now, then)
    tiles = {t["label"]: t for t in r["kpis"]}
    assert tiles["Orders"]["value"] == 45 and tiles["Orders"]["change"]["before"] == 30
    assert tiles["Revenue"]["value"] == pytest.approx(40 * 50 + 5 * 20)
    assert tiles["Revenue"]["change"]["before"] == pytest.approx(30 * 40)

    funnel = metrics.run(shop.uow, shop.log, "funnel", may.params())
    assert r["funnel"]["leaks"] == funnel["leaks"][:3] and len(r["funnel"]["leaks"]) == 3
    assert [s["customers"] for s in r["funnel"]["steps"][:4]] == [20, 12, 8, 5]
    assert r["funnel"]["leaks"][0] == {"from": "Product Viewed", "to": "Product Added", "lost": 8, "drop_off": 0.4}

    with shop.uow.session() as session:
        tests = incrementality.overview(
            session, global_control_share=0.05, now=datetime(2026, 6, 1), days=31, entered_in_period=True
        )
    (journey,) = [t for t in r["tests"] if t["name"] == "ab_welcome"]
    (expected,) = [t for t in tests["tests"] if t["name"] == "ab_welcome"]
    assert journey["incremental_revenue"] == expected["comparisons"][0]["incremental_revenue"]
    assert journey["incremental_revenue"]["low"] <= journey["incremental_revenue"]["effect"]
    assert journey["verdict"] == expected["comparisons"][0]["verdict"] and journey["units"] == 2000
    assert r["attribution"]["revenue"] == tests["attribution"]["revenue"]

    grew, shrank = r["segments"]["grew"], r["segments"]["shrank"]
    assert [(s["segment"], s["start"], s["entered"], s["exited"], s["end"]) for s in grew] == [("vip", 5, 3, 1, 7)]
    assert [(s["segment"], s["start"], s["end"], s["change"]) for s in shrank] == [("lapsed", 4, 1, -3)]  # June's not

    guards = r["guards"]
    assert guards["total"] == 6 and guards["sent"] == 4
    assert [(g["guard"], g["messages"]) for g in guards["by_guard"]] == [
        ("frequency_cap", 3),
        ("global_control", 2),
        ("other", 1),
    ]
    assert guards["by_guard"][0]["reasons"][0] == {"reason": "3 messages in 7 days", "messages": 2}
    assert r["charts"]["guards"]["datasets"][0]["data"] == [3, 2, 1]
    assert r["charts"]["funnel"]["datasets"][0]["data"][:4] == [20, 12, 8, 5]
    for data, month in zip(r["charts"]["revenue"]["datasets"], (may, april)):  # as each month's own run says
        alone = metrics.run(shop.uow, shop.log, "average_order_value", {**month.params(), "interval": "day"})
        assert data["data"] == [row.get("revenue") for row in alone["series"]], month
    assert any(r["charts"]["revenue"]["datasets"][0]["data"])
    json.dumps(r)  # JSON-ready


def test_bad_months_name_the_field(shop):
    today = date(2026, 12, 7)
    for bad in ("2026-13", "May", "2026-5-1", "0000-01"):
        with pytest.raises(Exception) as caught:
            review.parse_month(bad, today=today)
        assert caught.value.errors[0]["field"] == "month"
    with pytest.raises(Exception, match="future"):
        review.parse_month("2027-01", today=today)
    runner = CliRunner()
    result = runner.invoke(app, ["--home", str(shop.settings.home), "review", "show", "--month", "2026-13"])
    assert result.exit_code == 2 and "month" in result.output
    api = Api(shop)
    answer = api.api("GET", "/review", params={"month": "2999-01"})
    assert answer.status_code == 400 and "month" in answer.text
    answer = api.api("GET", "/review", params={"month": "2026-05"})
    assert answer.status_code == 200 and answer.json()["month"] == "2026-05"
    result = runner.invoke(app, ["--home", str(shop.settings.home), "review", "show", "--month", "2026-05", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["guards"]["total"] == 6

    _user(shop, "ann", "viewer")
    _login(api.client, "ann")
    page = api.client.get("/review")  # the data's last whole month, with its charts
    assert page.status_code == 200 and "Monthly review: May 2026" in page.text
    for chart in ("review-revenue", "review-funnel-chart", "review-incremental", "review-segments-chart"):
        assert f'data-chart="{chart}-data"' in page.text
    assert 'data-guard="frequency_cap"' in page.text and 'href="/review"' in page.text
    bad = api.client.get("/review", params={"month": "2026-13"})
    assert bad.status_code == 400 and "month" in bad.text


def test_the_review_goes_to_the_owners_once(shop):
    with SmtpServer() as smtp, TelegramServer() as tg:
        shop.channels.override(
            "email",
            lambda ctx: SmtpChannel(
                SmtpChannel.Config(port=smtp.port, security="none", from_address="review@shop.example", timeout=5)
            ),
        )
        shop.channels.override(
            "telegram", lambda ctx: TelegramChannel(TelegramChannel.Config(token=tg.token, base_url=tg.url))
        )
        shop.settings.review = ReviewSettings(
            enabled=True, emails=["owner@shop.example"], telegram_chats=["4242"], day=1, hour=8
        )
        early = datetime(2026, 6, 1, 7, 0)
        assert review_send.scheduled(shop.uow, shop.log, shop.channels, shop.settings, now=early) is None  # not yet
        now = datetime(2026, 6, 1, 9, 0)
        out = review_send.scheduled(shop.uow, shop.log, shop.channels, shop.settings, now=now)
        assert out == {"month": "2026-05", "sent": 2, "failed": 0, "skipped": 0}

        (mail,) = smtp.received
        parsed = mail.parsed()
        assert mail.rcpt_tos == ["owner@shop.example"]
        assert parsed["Subject"].startswith("Monthly review, May 2026: revenue 2,100.00 (+75.0%)")
        html = parsed.get_body(("html",)).get_content()
        text = parsed.get_body(("plain",)).get_content()
        assert "<script" not in html and "<img" not in html
        assert "Product Viewed → Product Added: 8 customers lost" in html and "frequency_cap" in html
        assert "http://127.0.0.1:8600/review?month=2026-05" in html and "Biggest funnel leaks" in text
        (call,) = tg.calls_to("sendMessage")
        assert str(call.params["chat_id"]) == "4242"
        assert "Monthly review, May 2026" in call.params["text"] and "/review?month=2026-05" in call.params["text"]

        # a second worker, a later round, a crash after claiming: nothing goes twice
        again = rounds.scheduled(shop, now=now + timedelta(hours=1))["review"]
        assert again == {"month": "2026-05", "sent": 0, "failed": 0, "skipped": 2}
        shop.settings.review = ReviewSettings(
            enabled=True, emails=["owner@shop.example", "partner@shop.example"], telegram_chats=["4242"]
        )
        assert review_store.claim(shop.uow, "2026-05", "email", "partner@shop.example", now=now)  # then "crashed"
        out = review_send.scheduled(shop.uow, shop.log, shop.channels, shop.settings, now=now + timedelta(hours=2))
        assert out["sent"] == 0 and len(smtp.received) == 1 and len(tg.calls_to("sendMessage")) == 1
        with shop.uow.session() as session:
            assert review_store.sends(session, "2026-05") == [
                {"channel": "email", "status": "sending", "recipients": 1},
                {"channel": "email", "status": "sent", "recipients": 1},
                {"channel": "telegram", "status": "sent", "recipients": 1},
            ]
