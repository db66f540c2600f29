"""The rounds `boomerang serve` and `boomerang worker` run, calling into the domains in order:

    catalog    products back in stock or cheaper become events of the customers interested in them
    events     accepted events get their effects (profiles, orders), then move into the log
    segments   live membership of the customers just seen; its Segment Entered/Exited move into the log too
    journeys   every event just logged reaches the journeys: triggers, goals, waits (the same round)
    timers     due waits and answered branches move their instances on
    campaigns  scheduled campaigns whose time came queue their messages
    dispatch   due messages go through the guards to their channels

and, every few minutes, what moves with time alone: segments with rolling windows (in the pipeline, in a
thread of their own, so that events keep moving meanwhile), birthdays,
silences, predicted purchases, the monthly review to the owners (`scheduled`); and message ids seen longer ago than the deduplication
window are forgotten (`forget_seen`); recommendations are trained again when their model is old
(`train_recommendations`, in a thread of its own). Each step commits its own work: a crash anywhere loses nothing
(the inbox, the outbox and the instances keep it) and repeats nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from boomerang.config import Settings
from boomerang.core.clock import Clock, naive_utc
from boomerang.db import UnitOfWork
from boomerang.events import dedup, effects
from boomerang.events.flush import flush, process_and_move
from boomerang.events.intake import Intake
from boomerang.events.log import EventLog
from boomerang.events.schemas import Logged
from boomerang.journeys import rollout, runtime
from boomerang.loyalty import bonuses, codes_redeem, tiers
from boomerang.loyalty import service as loyalty
from boomerang.messaging import campaigns
from boomerang.messaging.dispatch import Dispatcher
from boomerang.orchestration import catalog_signals, loyalty_traits, reco_training, review_send
from boomerang.segments import membership
from boomerang.segments.evaluate import Evaluator


class Runtime(Protocol):
    """What the rounds work with (the composition root's workspace is one)."""

    settings: Settings
    clock: Clock
    uow: UnitOfWork
    intake: Intake
    log: EventLog
    segments: Evaluator
    dispatcher: Dispatcher


def signal_catalog_changes(rt: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Products back in stock or cheaper since the last round, as `Back In Stock` and `Price Dropped` events of
    the customers interested in them, into the inbox: the next flush logs them and journeys start from them."""
    now = now or naive_utc(rt.clock.now())
    days = rt.settings.catalog.interest_days
    return catalog_signals.fan_out(rt.uow, rt.log, now=now, interest_days=days)


def move_events(rt: Runtime) -> list[Logged]:
    """Process what the tracking API accepted, then move everything processed into the log."""
    limits = rt.settings.ingest
    return process_and_move(
        rt.uow,
        rt.clock,
        rt.log,
        chunk_rows=limits.process_chunk_rows,
        move_rows=limits.flush_chunk_rows,
        intake=rt.intake,
    )


def react(rt: Runtime, logged: list[Logged], now: datetime | None = None) -> dict[str, Any]:
    """What events just logged change: live segment membership, whose entries and exits are logged at once,
    then journeys (triggers, goals, waits) for all of them."""
    now = now or naive_utc(rt.clock.now())
    segments = membership.update_customers(rt.segments, membership.touched_by(logged))
    if segments:
        logged = logged + flush(rt.uow, rt.log, chunk_rows=rt.settings.ingest.flush_chunk_rows)
    return {"segments": segments, "journeys": runtime.on_events(rt.uow, logged, now)}


def ingest(rt: Runtime) -> dict[str, Any]:
    """Accepted events all the way to the journeys they reach."""
    logged = move_events(rt)
    return {"events": len(logged), **react(rt, logged)}


def tick(rt: Runtime, now: datetime | None = None, *, limit: int = 500, batch: int = 1000) -> dict[str, int]:
    """Due timers and branches, campaigns whose time came, then due messages: until done for now (or `limit`
    rounds of each), `batch` instances per transaction."""
    now = now or naive_utc(rt.clock.now())
    out = {"woken": 0, "branched": 0, "campaigns": campaigns.start_due(rt.segments, now=now)}
    for _ in range(limit):
        woken = runtime.run_due(rt.uow, now, limit=batch)
        branched = runtime.resolve_branches(rt.segments, now, limit=batch)
        out["woken"] += woken
        out["branched"] += branched
        if not woken and not branched:
            break
    for k, v in rt.dispatcher.dispatch(now=now, rounds=limit).items():
        out[k] = out.get(k, 0) + v
    return out


def scheduled(rt: Runtime, now: datetime | None = None, *, segments_apart: bool = False) -> dict[str, Any]:
    """What moves with time alone: points and tiers, then segments with rolling windows or traits (loyalty's
    stored just before), and dates and silences that start journeys. `segments_apart`: the segments are
    recomputed in a thread of their own (membership.Refresher), so that the pipeline goes on moving events."""
    now = now or naive_utc(rt.clock.now())
    settings = rt.settings.loyalty
    out = {
        "loyalty": loyalty.expire(rt.uow, now),  # pending points become spendable, lots and holds expire
        "code_holds": codes_redeem.release_expired(rt.uow, now),  # promo code holds past their time give uses back
        "birthdays": bonuses.birthdays(rt.uow, now, settings=settings),  # the earn rules' birthday bonus
        "tiers": tiers.review_round(  # down after the grace; points about to expire announced (events, next flush)
            rt.uow, now, spending=effects.order_spending, emit=effects.log_loyalty_notices, settings=settings
        ),
        "loyalty_traits": loyalty_traits.store(rt.uow, rt.log, now=now, settings=settings),
        # a split asking for it goes to its winner once the intervals name one (a new version of its journey)
        "split_winners": rollout.roll_out(
            rt.uow, global_control_share=rt.settings.guards.global_control_share, now=now
        ),
    }
    done = {
        "segments": _refresh_segments(rt, apart=segments_apart),
        "journeys": runtime.run_scheduled(rt.segments, now),
        **out,
    }
    # last: the month before's review to the owners, once (orchestration.review_send), when it is due
    done["review"] = review_send.scheduled(rt.uow, rt.log, rt.dispatcher.channels, rt.settings, now=now)
    return done


def _refresh_segments(rt: Runtime, *, apart: bool) -> list[dict[str, Any]] | str:
    if not apart:
        return membership.refresh(rt.segments, only_expiring=True)
    started = membership.refresher(rt.segments).start(rt.segments)
    return "recomputing in the background" if started else "the recompute before is still running"


def train_recommendations(rt: Runtime, now: datetime | None = None) -> bool:
    """Start training the recommendations in a thread when the model is missing or old; whether one started."""
    now = now or naive_utc(rt.clock.now())
    settings, path = rt.settings.recommendations, rt.settings.reco_model_path
    if not reco_training.due(path, now=now, every_hours=settings.train_every_hours):
        return False
    return reco_training.trainer(path).start(rt.log, path, now=now, history_days=settings.history_days)


def forget_seen(rt: Runtime, now: datetime | None = None) -> int:
    """Forget the message ids seen before the deduplication window, a chunk per transaction; returns how many."""
    now = now or naive_utc(rt.clock.now())
    limits = rt.settings.ingest
    before = now - timedelta(hours=limits.dedup_window_hours)
    return dedup.forget(rt.uow, before=before, chunk_rows=limits.dedup_prune_chunk_rows)
