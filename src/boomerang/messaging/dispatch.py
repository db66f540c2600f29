"""The dispatcher: due queued messages through the guards, composed, to their channel.

`dispatch(ws)` claims up to `limit` queued messages whose `send_after` has come (FOR UPDATE SKIP LOCKED
on PostgreSQL, so workers share the outbox; SQLite's write lock does the same), loads what the guards
and the templates need for their customers in a few queries, and decides each message:

    send      composed for the channel the guards chose; in-store channels (in-app, sandbox) deliver in
              this transaction, exactly once; for the others the message is marked `sending` and the
              transaction commits before anything leaves, then the results are written in a second one
    suppress  status suppressed, reason "<guard>: <reason>"
    defer     still queued, send_after the guard's time, reason "deferred by <guard>: <reason>"

A result: sent; rate limited (queued again after its retry_after, no attempt counted); a temporary
failure (queued again after 30 s * 2^attempts, failed after 5 attempts); a bounce or a permanent failure
(failed, or bounced); an opt-out from the provider (unsubscribed: the channel's consent is withdrawn).
A message a crashed worker left `sending` is failed after `sending_timeout_minutes`, never sent again:
nothing goes twice. A customer's messages due together go in priority order (transactional, triggered,
promotional) and each one sent counts for the next. Logs carry keys and channels, never an address.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.channels.base import ChannelUnavailable, Outbound, SendResult
from boomerang.config import GuardSettings
from boomerang.core.clock import naive_utc
from boomerang.core.vocab import ADDRESS_FIELDS, CHANNELS, rank
from boomerang.customers.models import Consent, Customer
from boomerang.messaging import tracking
from boomerang.messaging.compose import CannotCompose, Composer
from boomerang.messaging.guards import Context, Decision, Outgoing, Sent, decide, in_global_control
from boomerang.messaging.models import Message, Preference
from boomerang.messaging.preferences import FREQUENCIES

if TYPE_CHECKING:
    from boomerang.bootstrap import Workspace

log = logging.getLogger("boomerang.dispatch")

MAX_ATTEMPTS = 5
BACKOFF_SECONDS = 30
CHUNK = 500  # ids per IN (...) list
OUTCOMES = ("sent", "suppressed", "deferred", "retrying", "failed")
ADDRESSES = tuple(ADDRESS_FIELDS.values())
PROFILE = (Customer.id, Customer.merged_into_id, Customer.timezone, *(getattr(Customer, f) for f in ADDRESSES))
# a message in one of these reached (or may have reached) the customer: the guards count it
SENT = ("sending", "sent", "delivered", "opened", "clicked", "complained", "unsubscribed")
Sending = tuple[Outbound, Any]  # a composed message and the adapter that sends it


def dispatch(ws: Workspace, *, now: datetime | None = None, limit: int = 500, rounds: int = 1) -> dict[str, int]:
    """Send, suppress or defer the due queued messages, `limit` per round, for up to `rounds` rounds or until
    none is due; the count of each outcome. While one round's network sends are on their way, the next
    round is decided and composed (rendering and sending overlap); its results are written after."""
    now = naive_utc(now or ws.clock.now())
    totals = dict.fromkeys(OUTCOMES, 0)
    _fail_stale(ws, now)
    in_flight: tuple[list[Sending], Future] | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="boomerang-send") as sender:
        for _ in range(rounds):
            counts = dict.fromkeys(OUTCOMES, 0)
            with ws.uow.session() as session:
                outgoing = _decide_batch(ws, session, now, limit, counts)
            if in_flight:
                _settle_all(ws, *in_flight, now, totals)
            in_flight = (outgoing, sender.submit(deliver, ws, outgoing)) if outgoing else None
            for k, v in counts.items():
                totals[k] += v
            if not outgoing and not sum(counts.values()):
                break
        if in_flight:
            _settle_all(ws, *in_flight, now, totals)
    return totals


def _settle_all(ws: Workspace, outgoing: list[Sending], results: Future, now: datetime, totals: dict[str, int]) -> None:
    done = results.result()  # before the transaction: waiting inside it would hold SQLite's write lock
    with ws.uow.session() as session, session.no_autoflush:  # one flush for the round, at commit
        sent = {
            m.id: m
            for m in session.scalars(sa.select(Message).where(Message.id.in_([o.message_id for o, _ in outgoing])))
        }
        for (outbound, _), result in zip(outgoing, done):
            totals[settle(session, sent[outbound.message_id], result, now)] += 1


def _decide_batch(ws: Workspace, session: Session, now: datetime, limit: int, counts: dict[str, int]) -> list[Sending]:
    """The guards' decisions for a batch; in-store sends done; what is left to send, marked `sending`."""
    due = (
        sa.select(Message)
        .where(Message.status == "queued", Message.send_after <= now)
        .order_by(Message.send_after, Message.id)
        .limit(limit)
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        due = due.with_for_update(skip_locked=True)
    messages = list(session.scalars(due))
    if postgres and messages:  # a customer another worker is guarding now waits for the next round
        mine = _lock_customers(session, {m.customer_id for m in messages})
        messages = [m for m in messages if m.customer_id in mine]
    if not messages:
        return []
    contexts = load_contexts(session, {m.customer_id for m in messages}, now, ws.settings.guards)
    composer = Composer(ws, session, now=now)
    composer.prepare({m.customer_id for m in messages})
    outgoing: list[Sending] = []
    adapters: dict[str, Any] = {}  # per batch: the registry is asked once per channel
    with session.no_autoflush:  # the batch's changes are written once, at commit
        for message in sorted(messages, key=lambda m: (rank(m.category), m.send_after, m.id)):
            _decide_one(ws, session, message, contexts[message.customer_id], composer, now, counts, outgoing, adapters)
    return outgoing


def _decide_one(
    ws: Workspace,
    session: Session,
    message: Message,
    ctx: Context,
    composer: Composer,
    now: datetime,
    counts: dict[str, int],
    outgoing: list[Sending],
    adapters: dict[str, Any],
) -> None:
    """Guard, compose and (for in-store channels) send one message; a network send joins `outgoing`."""
    template = composer.template(message.template)
    decision = decide(Outgoing.from_message(message, topic=template.topic if template else None), ctx, now)
    if decision.action != "send":
        counts[_hold(message, decision, now)] += 1
        return
    channel = decision.channel or ""
    message.channel, message.sent_at, message.reason = channel, now, decision.reason or None
    message.attempts = (message.attempts or 0) + 1
    try:
        if channel not in adapters:
            adapters[channel] = ws.channels.get(session, channel)
        adapter = adapters[channel]
        outbound = composer.compose(message, channel, ctx.address(channel), sandbox=adapter.name == "sandbox")
    except (ChannelUnavailable, CannotCompose) as exc:
        failed = SendResult.failed(str(exc), permanent=isinstance(exc, CannotCompose))
        counts[settle(session, message, failed, now)] += 1
        return
    ctx.recent.append(Sent(channel, message.category, message.template, message.source, now))
    if adapter.in_store:
        counts[settle(session, message, send_one(ws, adapter, outbound, session=session), now)] += 1
    else:
        message.status = "sending"
        outgoing.append((outbound, adapter))


def _hold(message: Message, decision: Decision, now: datetime) -> str:
    """Suppress or defer one message by a guard's decision; the outcome's name."""
    if decision.action == "suppress":
        message.status, message.reason = "suppressed", f"{decision.guard}: {decision.reason}"
        message.channel = decision.channel
        return "suppressed"
    message.send_after = max(decision.until or now, now + timedelta(seconds=1))  # never due again at once
    message.reason = f"deferred by {decision.guard}: {decision.reason}"
    return "deferred"


def send_one(ws: Workspace, adapter: Any, outbound: Outbound, *, session: Session | None = None) -> SendResult:
    """One send; an adapter that raises is a failed attempt (an in-store one's writes undone), not a lost batch."""
    try:
        if session is not None:
            with session.begin_nested():
                return adapter.send(outbound)
        ws.channels.pace(outbound.channel)
        return adapter.send(outbound)
    except Exception as exc:
        log.warning("message %s on %s: channel raised %s", outbound.key, outbound.channel, type(exc).__name__)
        return SendResult.failed(f"channel error ({type(exc).__name__})")


def deliver(ws: Workspace, outgoing: list[Sending]) -> list[SendResult]:
    """Send each message with its adapter, as many at once as each adapter allows; the store is not touched
    (the next round may hold SQLite's write lock meanwhile)."""
    results: list[SendResult | None] = [None] * len(outgoing)
    by_adapter: dict[int, list[int]] = defaultdict(list)
    for i, (_, adapter) in enumerate(outgoing):
        by_adapter[id(adapter)].append(i)
    for indexes in by_adapter.values():
        adapter = outgoing[indexes[0]][1]
        with ThreadPoolExecutor(max_workers=max(1, min(adapter.concurrency, len(indexes)))) as pool:
            for i, result in zip(indexes, pool.map(lambda i: send_one(ws, adapter, outgoing[i][0]), indexes)):
                results[i] = result
    return results  # type: ignore[return-value]


def settle(session: Session, message: Message, result: SendResult, now: datetime) -> str:
    """Write what a send came to; the outcome's name."""
    channel = message.channel or ""
    if result.ok:
        message.status = "sent"
        message.provider_id = result.provider_id
        return "sent"
    error = f"{channel}: {result.error or result.status}"
    if result.status in ("bounced", "unsubscribed"):
        message.status, message.reason = "sent", error  # it left; what became of it is a delivery event
        tracking.record(session, message, result.status, at=now, detail=result.error)
        return "failed"
    message.sent_at = None
    if result.status == "rate_limited":
        message.status, message.attempts = "queued", max(0, message.attempts - 1)
        message.send_after = now + timedelta(seconds=max(result.retry_after or 1, 1))
        message.reason = f"{error} (retry after {result.retry_after or 1:g} s)"
        return "retrying"
    if result.permanent or message.attempts >= MAX_ATTEMPTS:
        message.status = "failed"
        message.reason = f"{error} (permanent)" if result.permanent else f"{error} (after {message.attempts} attempts)"
        log.info("message %s failed on %s after %d attempts", message.key, channel, message.attempts)
        return "failed"
    message.status = "queued"
    message.send_after = now + timedelta(seconds=BACKOFF_SECONDS * 2**message.attempts)
    message.reason = f"{error} (attempt {message.attempts} of {MAX_ATTEMPTS})"
    return "retrying"


def _fail_stale(ws: Workspace, now: datetime) -> None:
    """Messages a crashed worker left `sending`: their fate is unknown, so they fail rather than go twice."""
    before = now - timedelta(minutes=ws.settings.messaging.sending_timeout_minutes)
    with ws.uow.session() as session:
        session.execute(
            sa.update(Message)
            .where(Message.status == "sending", Message.sent_at < before)
            .values(status="failed", reason="interrupted while sending: not sent again, so that nothing goes twice")
        )


def load_contexts(
    session: Session, customer_ids: set[str], now: datetime, settings: GuardSettings
) -> dict[str, Context]:
    """What the guards know of each customer, in two queries: profile with consents, and recent messages.

    A profile merged into another is guarded as that one (its addresses, consents and messages; one more
    query per level of merges), and the messages of both count together: both ids share the Context.
    """
    profiles: dict[str, Any] = {}
    consents: dict[str, dict[str, bool]] = defaultdict(dict)
    todo = set(customer_ids)
    while todo:
        rows = _in_chunks(
            session,
            lambda ids: (
                sa.select(*PROFILE, Consent.channel, Consent.granted)
                .outerjoin(Consent, Consent.customer_id == Customer.id)
                .where(Customer.id.in_(ids))
            ),
            todo,
        )
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
            customer_id=cid,
            found=profile is not None,
            settings=settings,
            consents=consents.get(cid, {}),
            addresses={f: getattr(profile, f) for f in ADDRESSES} if profile else {},
            timezone=profile.timezone if profile else None,
            global_control=in_global_control(cid, settings.global_control_share),
        )
    for pref in _in_chunks(
        session,
        lambda ids: sa.select(Preference.customer_id, Preference.topics_off, Preference.frequency).where(
            Preference.customer_id.in_(ids)
        ),
        set(contexts),
    ):
        ctx = contexts[pref.customer_id]
        ctx.topics_off, ctx.frequency_days = frozenset(pref.topics_off or ()), FREQUENCIES.get(pref.frequency)
    since = now - timedelta(hours=max(settings.longest_window, max(d for d in FREQUENCIES.values() if d) * 24))
    recent = _in_chunks(
        session,
        lambda ids: sa.select(
            Message.customer_id, Message.channel, Message.category, Message.template, Message.source, Message.sent_at
        ).where(
            Message.customer_id.in_(ids),
            Message.status.in_(SENT),
            Message.sent_at > since,
            Message.channel.in_(CHANNELS),
        ),
        set(profiles) | set(customer_ids),
    )
    for customer_id, channel, category, template, source, sent_at in recent:
        ctx = contexts.get(_follow(profiles, customer_id))
        if ctx is not None:
            ctx.recent.append(Sent(channel, category, template, source, sent_at))
    return {cid: contexts[live[cid]] for cid in customer_ids}


def _lock_customers(session: Session, customer_ids: set[str]) -> set[str]:
    """PostgreSQL: the customers this transaction may guard, so that two workers never count caps apart."""
    rows = session.execute(
        sa.text(
            "SELECT cid FROM unnest(CAST(:ids AS text[])) AS cid "
            "WHERE pg_try_advisory_xact_lock(hashtextextended('boomerang.dispatch:' || cid, 0))"
        ),
        {"ids": sorted(customer_ids)},
    )
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
        rows += session.execute(query(ordered[start : start + CHUNK])).all()
    return rows
