"""The dispatcher: due queued messages through the guards, composed, to their channel.

`Dispatcher.dispatch` claims up to `limit` queued messages whose `send_after` has come (FOR UPDATE SKIP LOCKED
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

A test send (`send_now`) queues one transactional message and takes the same path, alone.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.channels.base import ChannelUnavailable, Outbound, SendResult
from boomerang.channels.registry import Registry
from boomerang.config import Settings
from boomerang.core.vocab import rank
from boomerang.db import UnitOfWork
from boomerang.messaging import outbox, tracking
from boomerang.messaging.compose import CannotCompose, Composer
from boomerang.messaging.contexts import load_contexts
from boomerang.messaging.guards import Context, Decision, Outgoing, Sent, decide
from boomerang.messaging.links import Links
from boomerang.messaging.models import Message
from boomerang.messaging.picks import Recommend
from boomerang.messaging.reasons import trigger_gone

log = logging.getLogger("boomerang.dispatch")

MAX_ATTEMPTS = 5
BACKOFF_SECONDS = 30
OUTCOMES = ("sent", "suppressed", "deferred", "retrying", "failed")
Sending = tuple[Outbound, Any]  # a composed message and the adapter that sends it
# Asked just before messages leave: why some of them have lost their reason (message id -> why).
ReasonCheck = Callable[[Session, list[Message]], dict[int, str]]


@dataclass(frozen=True)
class Dispatcher:
    uow: UnitOfWork
    channels: Registry
    links: Links
    settings: Settings  # read at each round: its guards and messaging settings may be changed meanwhile
    reasons: tuple[ReasonCheck, ...] = ()  # each domain that queues messages says when their reason is gone
    # (beside messaging's own: the triggering cart or product changed, see reasons.trigger_gone)
    recommend: Recommend | None = None  # the recommendations templates show; None: the shop's best sellers

    def dispatch(self, *, now: datetime, limit: int = 500, rounds: int = 1) -> dict[str, int]:
        """Send, suppress or defer the due queued messages, `limit` per round, for up to `rounds` rounds or until
        none is due; the count of each outcome. While one round's network sends are on their way, the next
        round is decided and composed (rendering and sending overlap); its results are written after."""
        totals = dict.fromkeys(OUTCOMES, 0)
        self._fail_stale(now)
        in_flight: tuple[list[Sending], Future] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="boomerang-send") as sender:
            for _ in range(rounds):
                counts = dict.fromkeys(OUTCOMES, 0)
                with self.uow.session() as session:
                    outgoing = self._decide_batch(session, self._due(session, now, limit), now, counts)
                if in_flight:  # awaited before the transaction: waiting inside it would hold SQLite's write lock
                    self._settle_all(in_flight[0], in_flight[1].result(), now, totals)
                in_flight = (outgoing, sender.submit(self.deliver, outgoing)) if outgoing else None
                for k, v in counts.items():
                    totals[k] += v
                if not outgoing and not sum(counts.values()):
                    break
            if in_flight:
                self._settle_all(in_flight[0], in_flight[1].result(), now, totals)
        return totals

    def send_now(self, row: dict, *, now: datetime) -> Message:
        """Queue one message and take it through the dispatcher's path at once (a test send); the message
        as it came out of it."""
        with self.uow.session() as session:
            outbox.queue(session, [row])
            message = session.scalar(sa.select(Message).where(Message.key == row["key"]))
            outgoing = self._decide_batch(session, [message], now, dict.fromkeys(OUTCOMES, 0))
        if outgoing:
            self._settle_all(outgoing, self.deliver(outgoing), now, dict.fromkeys(OUTCOMES, 0))
        with self.uow.session() as session:
            return session.scalar(sa.select(Message).where(Message.key == row["key"]))

    def _due(self, session: Session, now: datetime, limit: int) -> list[Message]:
        """Up to `limit` queued messages whose time has come, claimed by this worker."""
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
        return messages

    def _settle_all(
        self, outgoing: list[Sending], done: list[SendResult], now: datetime, totals: dict[str, int]
    ) -> None:
        with self.uow.session() as session, session.no_autoflush:  # one flush for the round, at commit
            sent = {
                m.id: m
                for m in session.scalars(sa.select(Message).where(Message.id.in_([o.message_id for o, _ in outgoing])))
            }
            for (outbound, _), result in zip(outgoing, done):
                totals[settle(session, sent[outbound.message_id], result, now)] += 1

    def _decide_batch(
        self, session: Session, messages: list[Message], now: datetime, counts: dict[str, int]
    ) -> list[Sending]:
        """The guards' decisions for a batch; in-store sends done; what is left to send, marked `sending`."""
        if not messages:
            return []
        contexts = load_contexts(session, {m.customer_id for m in messages}, now, self.settings.guards)
        composer = Composer(session, self.links, self.settings.messaging, now=now, recommend=self.recommend)
        composer.prepare({m.customer_id for m in messages})
        gone = {k: v for check in (*self.reasons, trigger_gone) for k, v in check(session, messages).items()}
        outgoing: list[Sending] = []
        adapters: dict[str, Any] = {}  # per batch: the registry is asked once per channel
        with session.no_autoflush:  # the batch's changes are written once, at commit
            for message in sorted(messages, key=lambda m: (rank(m.category), m.send_after, m.id)):
                self._decide_one(
                    session,
                    message,
                    contexts[message.customer_id],
                    composer,
                    now,
                    counts,
                    outgoing,
                    adapters,
                    gone.get(message.id),
                )
        return outgoing

    def _decide_one(
        self,
        session: Session,
        message: Message,
        ctx: Context,
        composer: Composer,
        now: datetime,
        counts: dict[str, int],
        outgoing: list[Sending],
        adapters: dict[str, Any],
        gone: str | None = None,
    ) -> None:
        """Guard, compose and (for in-store channels) send one message; a network send joins `outgoing`."""
        template = composer.template(message.template)
        topic = template.topic if template else None
        decision = decide(Outgoing.from_message(message, topic=topic, gone=gone), ctx, now)
        if decision.action != "send":
            counts[_hold(message, decision, now)] += 1
            return
        channel = decision.channel or ""
        message.channel, message.sent_at, message.reason = channel, now, decision.reason or None
        message.attempts = (message.attempts or 0) + 1
        try:
            if channel not in adapters:
                adapters[channel] = self.channels.get(session, channel)
            adapter = adapters[channel]
            outbound = composer.compose(message, channel, ctx.address(channel), sandbox=adapter.name == "sandbox")
        except (ChannelUnavailable, CannotCompose) as exc:
            failed = SendResult.failed(str(exc), permanent=isinstance(exc, CannotCompose))
            counts[settle(session, message, failed, now)] += 1
            return
        ctx.recent.append(Sent(channel, message.category, message.template, message.source, now))
        if adapter.in_store:
            counts[settle(session, message, self.send_one(adapter, outbound, session=session), now)] += 1
        else:
            message.status = "sending"
            outgoing.append((outbound, adapter))

    def send_one(self, adapter: Any, outbound: Outbound, *, session: Session | None = None) -> SendResult:
        """One send; an adapter that raises is a failed attempt (an in-store one's writes undone), not a lost
        batch."""
        try:
            if session is not None:
                with session.begin_nested():
                    return adapter.send(outbound)
            self.channels.pace(outbound.channel)
            return adapter.send(outbound)
        except Exception as exc:
            log.warning("message %s on %s: channel raised %s", outbound.key, outbound.channel, type(exc).__name__)
            return SendResult.failed(f"channel error ({type(exc).__name__})")

    def deliver(self, outgoing: list[Sending]) -> list[SendResult]:
        """Send each message with its adapter, as many at once as each adapter allows; the store is not touched
        (the next round may hold SQLite's write lock meanwhile)."""
        results: list[SendResult | None] = [None] * len(outgoing)
        by_adapter: dict[int, list[int]] = defaultdict(list)
        for i, (_, adapter) in enumerate(outgoing):
            by_adapter[id(adapter)].append(i)
        for indexes in by_adapter.values():
            adapter = outgoing[indexes[0]][1]
            with ThreadPoolExecutor(max_workers=max(1, min(adapter.concurrency, len(indexes)))) as pool:
                for i, result in zip(indexes, pool.map(lambda i: self.send_one(adapter, outgoing[i][0]), indexes)):
                    results[i] = result
        return results  # type: ignore[return-value]

    def _fail_stale(self, now: datetime) -> None:
        """Messages a crashed worker left `sending`: their fate is unknown, so they fail rather than go twice."""
        before = now - timedelta(minutes=self.settings.messaging.sending_timeout_minutes)
        with self.uow.session() as session:
            session.execute(
                sa.update(Message)
                .where(Message.status == "sending", Message.sent_at < before)
                .values(status="failed", reason="interrupted while sending: not sent again, so that nothing goes twice")
            )


def _hold(message: Message, decision: Decision, now: datetime) -> str:
    """Suppress or defer one message by a guard's decision; the outcome's name."""
    if decision.action == "suppress":
        message.status, message.reason = "suppressed", f"{decision.guard}: {decision.reason}"
        message.channel = decision.channel
        return "suppressed"
    message.send_after = max(decision.until or now, now + timedelta(seconds=1))  # never due again at once
    message.reason = f"deferred by {decision.guard}: {decision.reason}"
    return "deferred"


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
