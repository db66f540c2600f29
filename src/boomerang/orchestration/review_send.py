"""Sending the monthly review to the shop's owners: an HTML email (autoescaped, bar charts drawn in HTML: no
image, no script, no outside address) with a text part, and a short Telegram message with a link to the
dashboard's page. Each send is claimed in a committed row first (review_store.claim): once per month, channel and
recipient, whatever crashes or however many workers run. Addresses never reach the log."""

from __future__ import annotations

import html
import logging
from datetime import date, datetime
from typing import Any

from jinja2 import Environment

from boomerang.channels.base import ChannelUnavailable, Outbound
from boomerang.channels.registry import Registry
from boomerang.config import ReviewSettings, Settings
from boomerang.core.errors import BoomerangError
from boomerang.db import UnitOfWork
from boomerang.events.log import EventLog
from boomerang.orchestration import review, review_store
from boomerang.orchestration.review_mail import HTML, TEXT
from boomerang.orders.service import main_currency

log = logging.getLogger("boomerang.review")
_env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_html, _text = _env.from_string(HTML), Environment(autoescape=False).from_string(TEXT)


def due(settings: ReviewSettings, now: datetime) -> date | None:
    """The month whose review is due at `now` (its first day), or None: off, no one to send to, or not the time."""
    if not settings.enabled or not (settings.emails or settings.telegram_chats):
        return None
    if (now.day, now.hour) < (settings.day, settings.hour):
        return None
    return review.previous_month(now.date())


def recipients(settings: ReviewSettings) -> list[tuple[str, str]]:
    return [("email", a) for a in settings.emails] + [("telegram", c) for c in settings.telegram_chats]


def page_url(settings: Settings, month: str) -> str:
    return f"{settings.public_url.rstrip('/')}/review?month={month}"


def _money(value: Any) -> str:
    return "–" if value is None else f"{value:,.2f}"


def shown_change(t: dict[str, Any]) -> str:
    c = t.get("change")
    if not c or c["delta"] is None:
        return ""
    if t["kind"] == "pct":
        return f"{c['delta'] * 100:+.1f} pp"
    if c["relative"] is not None:
        return f"{c['relative'] * 100:+.1f}%"
    return f"{c['delta']:+,.1f}"


def shown_value(t: dict[str, Any]) -> str:
    v = t["value"]
    if v is None:
        return "–"
    if t["kind"] == "pct":
        return f"{v * 100:.1f}%"
    if t["kind"] == "money":
        return _money(v)
    if t["kind"] == "points":
        return f"{v:.1f}"
    return f"{v:,}"


def _bars(rows: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """Rows with a bar width in percent of the largest magnitude (the email's charts)."""
    top = max((abs(v) for _, v in rows), default=0) or 1
    return [{"label": k, "value": v, "width": max(1, round(abs(v) / top * 100))} for k, v in rows]


def context(r: dict[str, Any], *, url: str, currency: str | None = None) -> dict[str, Any]:
    """What the email's templates show."""
    kpis = [
        {
            "label": t["label"],
            "value": shown_value(t),
            "change": shown_change(t),
            "good": (t.get("change") or {}).get("good"),
        }
        for t in r["kpis"]
        if t.get("change") is not None or t["label"] != "Customers"
    ]
    tests = [t for t in r["tests"] if t["incremental_revenue"]]
    return {
        "r": r,
        "url": url,
        "currency": currency or "",
        "kpis": kpis,
        "funnel": _bars([(s["step"], s["customers"]) for s in r["funnel"]["steps"]]),
        "tests": [
            {**t, "bar": b}
            for t, b in zip(tests, _bars([(t["title"], t["incremental_revenue"]["effect"]) for t in tests]))
        ],
        "untested": [t for t in r["tests"] if not t["incremental_revenue"]],
        "segments": _bars([(s["title"], s["change"]) for s in r["segments"]["grew"] + r["segments"]["shrank"]]),
        "guards": _bars([(g["guard"], g["messages"]) for g in r["guards"]["by_guard"]]),
        "money": _money,
    }


def email(r: dict[str, Any], *, url: str, currency: str | None = None) -> tuple[str, str, str]:
    """(subject, text, html) of the review's email."""
    ctx = context(r, url=url, currency=currency)
    revenue = next((t for t in r["kpis"] if t["label"] == "Revenue"), None)
    subject = f"Monthly review, {r['period']['label']}"
    if revenue and revenue["value"] is not None:
        subject += f": revenue {shown_value(revenue)}{' ' + currency if currency else ''}"
        if shown_change(revenue):
            subject += f" ({shown_change(revenue)})"
    return subject, _text.render(**ctx), _html.render(**ctx)


def telegram(r: dict[str, Any], *, url: str, currency: str | None = None) -> str:
    """The short Telegram summary (Telegram HTML, every value escaped)."""
    e = html.escape
    lines = [f"<b>Monthly review, {e(r['period']['label'])}</b>"]
    for t in r["kpis"]:
        if t["label"] in ("Revenue", "Orders", "New customers", "Retention rate"):
            lines.append(f"{e(t['label'])}: {e(shown_value(t))} {e(shown_change(t))}".rstrip())
    for leak in r["funnel"]["leaks"][:1]:
        lines.append(f"Biggest leak: {e(leak['from'])} → {e(leak['to'])}, {leak['lost']:,} lost")
    winners = [t for t in r["tests"] if t["verdict"] == "better"]
    if winners:
        lines.append("Working: " + ", ".join(e(t["title"]) for t in winners))
    lines.append(f"Suppressed by the guards: {r['guards']['total']:,}")
    lines.append(f'<a href="{e(url, quote=True)}">Open the review</a>')
    return "\n".join(lines)


def send(
    uow: UnitOfWork,
    log_: EventLog,
    channels: Registry,
    settings: Settings,
    *,
    month: date,
    now: datetime,
    currency: str | None = None,
) -> dict[str, Any]:
    """Send the review of `month` to every owner who has not had it yet; what happened, per outcome."""
    key = month.strftime("%Y-%m")
    waiting = review_store.pending(uow, key, recipients(settings.review))
    out: dict[str, Any] = {
        "month": key,
        "sent": 0,
        "failed": 0,
        "skipped": len(recipients(settings.review)) - len(waiting),
    }
    if not waiting:
        return out
    r = review.build(uow, log_, month=month, global_control_share=settings.guards.global_control_share)
    if currency is None:
        with uow.session() as session:
            currency = main_currency(session)
    url = page_url(settings, key)
    subject, text, body = email(r, url=url, currency=currency)
    short = telegram(r, url=url, currency=currency)
    for channel, address in waiting:
        if not review_store.claim(uow, key, channel, address, now=now):
            out["skipped"] += 1
            continue
        message = Outbound(
            key=f"review:{key}:{channel}:{review_store.recipient_key(address)[:16]}",
            message_id=0,
            customer_id="owner",
            channel=channel,
            to=address,
            text=text if channel == "email" else short,
            subject=subject if channel == "email" else None,
            html=body if channel == "email" else None,
        )
        try:
            with uow.session() as session:
                adapter = channels.get(session, channel)
            result = adapter.send(message)
            status, error, provider = (
                ("sent" if result.ok else "refused" if result.permanent else "failed"),
                result.error,
                result.provider_id,
            )
        except (ChannelUnavailable, BoomerangError) as exc:
            status, error, provider = "failed", str(exc), None
        except Exception as exc:  # noqa: BLE001 - a transport's surprise: recorded, retried at the next round
            status, error, provider = "failed", type(exc).__name__, None
        review_store.settle(uow, key, channel, address, status=status, error=error, provider_id=provider, now=now)
        out["sent" if status == "sent" else "failed"] += 1
        if status != "sent":
            log.warning("the monthly review for %s did not go by %s: %s", key, channel, error)
    return out


def scheduled(uow: UnitOfWork, log_: EventLog, channels: Registry, settings: Settings, *, now: datetime) -> dict | None:
    """The review of the month before, when it is due and someone has not had it yet; None when not due."""
    month = due(settings.review, now)
    if month is None:
        return None
    try:
        return send(uow, log_, channels, settings, month=month, now=now)
    except BoomerangError as exc:  # an empty log, say: tried again at the next round
        return {"month": month.strftime("%Y-%m"), "error": exc.message}
