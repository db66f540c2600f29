"""The guards over simulated messages, as the dispatcher would apply them: each message of every simulated
journey, in time order (priority order among those due together), goes to guards.decide with the
customer's profile and consents as they are now and the history of the simulated sends before it;
what each guard suppresses or defers is counted, and a deferred message is tried again when the guard
said (within the window). Channels always succeed here: no delivery failures are simulated."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from boomerang.config import GuardSettings
from boomerang.core.vocab import rank
from boomerang.db import UnitOfWork
from boomerang.messaging.dispatch import load_contexts
from boomerang.messaging.guards import Outgoing, Sent, decide

MAX_TRIES = 20  # a message deferred this many times is counted as still deferred
WEEK = timedelta(days=7)


def apply_guards(
    uow: UnitOfWork, settings: GuardSettings, messages: list, *, start: datetime, end: datetime
) -> dict[str, Any]:
    """Journey name (and "*" for all) -> {sent, by_channel, suppressed: {guard: n}, deferred: {guard: n},
    deferred_past_end, sent_per_customer_week}; counts are messages (one deferred twice by the same guard
    counts once). `messages`: Planned messages of simulate, none held out."""
    with uow.session() as session:  # reads profiles and consents only
        contexts = load_contexts(session, {msg.customer_id for msg in messages}, start, settings)
    for ctx in contexts.values():
        ctx.recent.clear()  # the history is the simulated one: every journey here is replayed from the start
    window = timedelta(hours=settings.longest_window)
    seq = itertools.count()
    queue = [(msg.at, rank(msg.category), next(seq), msg, 0) for msg in messages]
    heapq.heapify(queue)
    out: dict[str, dict[str, Any]] = defaultdict(_empty)
    sent_at: dict[str, list] = defaultdict(list)
    deferred_by: dict[str, set[str]] = defaultdict(set)  # message key -> guards that held it
    while queue:
        now, _, _, msg, tries = heapq.heappop(queue)
        ctx = contexts[msg.customer_id]
        ctx.recent[:] = [s for s in ctx.recent if s.sent_at > now - window]
        source = f"journey:{msg.journey}"
        decision = decide(
            Outgoing(msg.customer_id, msg.channels, msg.template, msg.category, msg.when_capped, source, msg.key),
            ctx,
            now,
        )
        counts = (out[msg.journey], out["*"])
        if decision.action == "send":
            ctx.recent.append(Sent(decision.channel or "", msg.category, msg.template, source, now))
            sent_at[msg.journey].append(_Sent(msg.customer_id, now))
            for c in counts:
                c["sent"] += 1
                c["by_channel"][decision.channel or "-"] += 1
        elif decision.action == "suppress":
            for c in counts:
                c["suppressed"][decision.guard] += 1
        else:
            if decision.guard not in deferred_by[msg.key]:
                deferred_by[msg.key].add(decision.guard)
                for c in counts:
                    c["deferred"][decision.guard] += 1
            until = max(decision.until or now, now + timedelta(seconds=1))
            if until < end and tries < MAX_TRIES:
                heapq.heappush(queue, (until, rank(msg.category), next(seq), msg, tries + 1))
            else:
                for c in counts:
                    c["deferred_past_end"] += 1
    result = {}
    for name, c in out.items():
        sends = sent_at[name] if name != "*" else [s for v in sent_at.values() for s in v]
        result[name] = {
            "sent": c["sent"],
            "by_channel": dict(sorted(c["by_channel"].items())),
            "suppressed": dict(sorted(c["suppressed"].items())),
            "deferred": dict(sorted(c["deferred"].items())),
            "deferred_past_end": c["deferred_past_end"],
            "sent_per_customer_week": weekly(sends, start, {s.customer_id for s in sends}),
        }
    return result


def weekly(messages: list, start: datetime, customers: set[str]) -> dict[str, Any]:
    """Messages per customer per week (7-day weeks from the first day), over the weeks in which a
    customer gets at least one: mean, 95th percentile (nearest rank) and max."""
    counts = Counter((msg.customer_id, (msg.at - start) // WEEK) for msg in messages if msg.customer_id in customers)
    if not counts:
        return {"customers": 0, "weeks": 0, "mean": 0.0, "p95": 0, "max": 0}
    values = np.array(sorted(counts.values()))
    return {
        "customers": len({c for c, _ in counts}),
        "weeks": len(counts),
        "mean": round(float(values.mean()), 3),
        "p95": int(np.percentile(values, 95, method="inverted_cdf")),
        "max": int(values.max()),
    }


class _Sent:
    __slots__ = ("customer_id", "at")

    def __init__(self, customer_id: str, at: datetime) -> None:
        self.customer_id, self.at = customer_id, at


def _empty() -> dict[str, Any]:
    return {"sent": 0, "by_channel": Counter(), "suppressed": Counter(), "deferred": Counter(), "deferred_past_end": 0}
