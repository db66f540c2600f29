"""The dispatcher: due queued messages through the guards to their channel, in one transaction per batch.

`dispatch(ws)` claims up to `limit` queued messages whose `send_after` has come (FOR UPDATE SKIP LOCKED
on PostgreSQL, so workers share the outbox; SQLite's write lock does the same), loads what the guards
need for their customers in two queries, and for each message, in the same transaction:

    send      the channel is given the message; sent, or tried again later with exponential backoff
              (30 s * 2^attempts), failed after 5 attempts or at once when the failure is permanent
    suppress  status suppressed, reason "<guard>: <reason>"
    defer     still queued, send_after the guard's time, reason "deferred by <guard>: <reason>"

A customer's messages due together go in priority order (transactional, triggered, promotional) and
each one sent counts for the next (caps, duplicates, priority). Messages held out (a journey's control
group) are never queued, so never dispatched. Logs carry keys and channels, never an address.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import GuardSettings
from boomerang.core.clock import naive_utc
from boomerang.customers.models import CHANNELS, Consent, Customer
from boomerang.journeys import channels as registry
from boomerang.journeys.definition import CATEGORIES
from boomerang.journeys.guards import Context, Decision, Outgoing, Sent, decide, in_global_control
from boomerang.journeys.models import Message

if TYPE_CHECKING:
    from boomerang.bootstrap import Workspace

log = logging.getLogger("boomerang.dispatch")

MAX_ATTEMPTS = 5
BACKOFF_SECONDS = 30
CHUNK = 500  # ids per IN (...) list
OUTCOMES = ("sent", "suppressed", "deferred", "retrying", "failed")
ADDRESSES = ("email", "phone", "telegram_chat_id")
PROFILE = (Customer.id, Customer.merged_into_id, Customer.timezone, *(getattr(Customer, f) for f in ADDRESSES))


def dispatch(ws: Workspace, *, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Send, suppress or defer the due queued messages (at most `limit`); the count of each outcome."""
    now = naive_utc(now or ws.clock.now())
    counts = dict.fromkeys(OUTCOMES, 0)
    with ws.uow.session() as session:
        due = (sa.select(Message).where(Message.status == "queued", Message.send_after <= now)
               .order_by(Message.send_after, Message.id).limit(limit))
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:
            due = due.with_for_update(skip_locked=True)
        messages = list(session.scalars(due))
        if postgres and messages:  # a customer another worker is guarding now waits for the next round
            mine = _lock_customers(session, {m.customer_id for m in messages})
            messages = [m for m in messages if m.customer_id in mine]
        if not messages:
            return counts
        contexts = load_contexts(session, {m.customer_id for m in messages}, now, ws.settings.guards)
        for message in sorted(messages, key=lambda m: (_rank(m.category), m.send_after, m.id)):
            ctx = contexts[message.customer_id]
            outcome = _apply(session, message, ctx, decide(Outgoing.from_message(message), ctx, now), now)
            counts[outcome] += 1
    return counts


def _apply(session: Session, message: Message, ctx: Context, decision: Decision, now: datetime) -> str:
    """Carry out one decision on one message; the outcome's name."""
    if decision.action == "suppress":
        message.status, message.reason = "suppressed", f"{decision.guard}: {decision.reason}"
        message.channel = decision.channel
        return "suppressed"
    if decision.action == "defer":
        message.send_after = max(decision.until or now, now + timedelta(seconds=1))  # never due again at once
        message.reason = f"deferred by {decision.guard}: {decision.reason}"
        return "deferred"
    channel = decision.channel or ""
    message.channel, message.sent_at = channel, now
    message.attempts = (message.attempts or 0) + 1
    try:
        with session.begin_nested():  # a channel that breaks its own writes loses only them
            result = registry.channel_for(channel).send(session, message, ctx.address(channel))
    except Exception as exc:  # an unexpected error is a failed attempt, not a lost batch
        log.warning("message %s on %s: channel raised %s", message.key, channel, type(exc).__name__)
        result = registry.SendResult(ok=False, error=f"channel error ({type(exc).__name__})")
    if result.ok:
        message.status, message.reason = "sent", decision.reason or None
        ctx.recent.append(Sent(channel, message.category, message.template, message.source, now))
        return "sent"
    message.sent_at = None
    error = f"{channel}: {result.error or 'failed'}"
    if result.permanent or message.attempts >= MAX_ATTEMPTS:
        message.status = "failed"
        message.reason = f"{error} (permanent)" if result.permanent else f"{error} (after {message.attempts} attempts)"
        log.info("message %s failed on %s after %d attempts", message.key, channel, message.attempts)
        return "failed"
    message.send_after = now + timedelta(seconds=BACKOFF_SECONDS * 2 ** message.attempts)
    message.reason = f"{error} (attempt {message.attempts} of {MAX_ATTEMPTS})"
    return "retrying"


def load_contexts(session: Session, customer_ids: set[str], now: datetime,
                  settings: GuardSettings) -> dict[str, Context]:
    """What the guards know of each customer, in two queries: profile with consents, and recent messages.

    A profile merged into another is guarded as that one (its addresses, consents and messages; one more
    query per level of merges), and the messages of both count together: both ids share the Context.
    """
    profiles: dict[str, Any] = {}
    consents: dict[str, dict[str, bool]] = defaultdict(dict)
    todo = set(customer_ids)
    while todo:
        rows = _in_chunks(session, lambda ids: sa.select(*PROFILE, Consent.channel, Consent.granted)
                          .outerjoin(Consent, Consent.customer_id == Customer.id).where(Customer.id.in_(ids)), todo)
        for row in rows:
            profiles[row.id] = row
            if row.channel is not None:
                consents[row.id][row.channel] = bool(row.granted)
        todo = {r.merged_into_id for r in rows if r.merged_into_id and r.merged_into_id not in profiles}
    live = {cid: _follow(profiles, cid) for cid in customer_ids}
    contexts: dict[str, Context] = {}
    for cid in set(live.values()):
        profile = profiles.get(cid)
        contexts[cid] = Context(
            customer_id=cid, found=profile is not None, settings=settings, consents=consents.get(cid, {}),
            addresses={f: getattr(profile, f) for f in ADDRESSES} if profile else {},
            timezone=profile.timezone if profile else None,
            global_control=in_global_control(cid, settings.global_control_share))
    since = now - timedelta(hours=settings.longest_window)
    recent = _in_chunks(session, lambda ids: sa.select(
        Message.customer_id, Message.channel, Message.category, Message.template, Message.source, Message.sent_at)
        .where(Message.customer_id.in_(ids), Message.status == "sent", Message.sent_at > since,
               Message.channel.in_(CHANNELS)), set(profiles) | set(customer_ids))
    for customer_id, channel, category, template, source, sent_at in recent:
        ctx = contexts.get(_follow(profiles, customer_id))
        if ctx is not None:
            ctx.recent.append(Sent(channel, category, template, source, sent_at))
    return {cid: contexts[live[cid]] for cid in customer_ids}


def _lock_customers(session: Session, customer_ids: set[str]) -> set[str]:
    """PostgreSQL: the customers this transaction may guard, so that two workers never count caps apart."""
    rows = session.execute(sa.text(
        "SELECT cid FROM unnest(CAST(:ids AS text[])) AS cid "
        "WHERE pg_try_advisory_xact_lock(hashtextextended('boomerang.dispatch:' || cid, 0))"),
        {"ids": sorted(customer_ids)})
    return {cid for (cid,) in rows}


def _follow(profiles: dict[str, Any], cid: str) -> str:
    """The live profile's id for `cid` (itself when not merged or not found)."""
    seen = set()
    while cid in profiles and profiles[cid].merged_into_id and cid not in seen:
        seen.add(cid)
        cid = profiles[cid].merged_into_id
    return cid


def _in_chunks(session: Session, query: Callable[[list[str]], sa.Select], ids: set[str]) -> list[sa.Row]:
    """Rows of `query(ids)` for any number of ids, CHUNK at a time (bind parameters are limited)."""
    ordered, rows = sorted(ids), []
    for start in range(0, len(ordered), CHUNK):
        rows += session.execute(query(ordered[start:start + CHUNK])).all()
    return rows


def _rank(category: str) -> int:
    return CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES)
