"""What a journey would have done over a stretch of the shop's history, without doing any of it.

`simulate` replays the event log between two dates, in time order, through the pure interpreter
(engine.step) with an in-memory clock: events start instances (triggers.matching) and reach the
running ones (goals, waits); dates, silences and predicted purchases are evaluated once per day
(triggers.scheduled_rule, as of that day, like run_scheduled); a segment trigger reads the log's
`Segment Entered`/`Exited` events, or, when the log has none for that segment in the window, the
segment's daily membership as of each midnight; branches are segment rules evaluated as of the
simulated moment, one query per journey node and moment for all the customers there. Nothing is
written to the operational store: no instances, messages, approvals, conversions or codes.

The journeys already active are replayed beside it over the same history, so the report gives the
messages a customer would get from this journey alone and from all of them together, and the guards
(consent, caps, quiet hours) are applied to every message in time order with the simulated history
of sends, counting what each guard would suppress or defer.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import GuardSettings
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers.models import Customer
from boomerang.events.log import EventLog
from boomerang.events.schemas import Logged
from boomerang.journeys import library
from boomerang.journeys import models as m
from boomerang.journeys.definition import (
    EventTrigger,
    Journey,
    LifecycleTrigger,
    SegmentTrigger,
    WaitEvent,
    parse_journey,
)
from boomerang.journeys.engine import (
    AskApproval,
    CallWebhook,
    Command,
    Converted,
    Decided,
    Evaluate,
    Evaluated,
    Input,
    LoyaltyAction,
    SendMessage,
    SetAttribute,
    Start,
    State,
    Wake,
    admits,
    in_control,
    step,
)
from boomerang.journeys.service import definition_of
from boomerang.journeys.simulate_report import report
from boomerang.journeys.triggers import happened, matching, scheduled_rule
from boomerang.metrics.lifecycle import EVENT as LIFECYCLE_EVENT
from boomerang.segments import library as segment_library
from boomerang.segments.definition import ENTERED, EXITED
from boomerang.segments.evaluate import Evaluator
from boomerang.segments.models import Segment

BRANCH_LAG = timedelta(seconds=1)  # the live worker answers after the flush: the event that led here counts
SAMPLE = 20


@dataclass
class Planned:
    """A message a simulated instance asked for."""

    at: datetime
    journey: str
    customer_id: str
    key: str
    node: str
    channels: tuple[str, ...]
    template: str
    category: str
    when_capped: str
    held_out: bool


@dataclass
class Run:
    """One journey's instances over the replay."""

    journey: Journey
    approve: bool | None
    states: dict[str, State] = field(default_factory=dict)
    by_customer: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    last_entry: dict[str, dict[str | None, datetime]] = field(default_factory=lambda: defaultdict(dict))  # per key
    entered: list[tuple[str, datetime, bool]] = field(default_factory=list)  # customer, when, control
    messages: list[Planned] = field(default_factory=list)
    conversions: list[tuple[str, float, bool]] = field(default_factory=list)  # customer, revenue, control
    counts: Counter = field(default_factory=Counter)  # approvals, codes, points, webhooks, profile updates

    @property
    def name(self) -> str:
        return self.journey.name


class Simulator:
    """The replay: an in-memory clock, timers in a heap, branches answered per moment."""

    def __init__(
        self,
        segments: Evaluator,
        runs: list[Run],
        *,
        start: datetime,
        end: datetime,
        tick: timedelta | None,
        timezones: dict[str, str],
    ) -> None:
        self.segments, self.runs, self.start, self.end, self.tick = segments, runs, start, end, tick
        self.timers: list[tuple[datetime, int, int, str, datetime]] = []  # fire at, seq, run, instance, wake_at
        self.branches: dict[datetime, list[tuple[int, str]]] = defaultdict(list)  # moment -> (run, instance)
        self.seq = itertools.count()
        self.timezones = timezones
        self.synced = False
        self.queries = 0

    # -- the clock -----------------------------------------------------------------------------

    def due(self, moment: datetime) -> datetime:
        """When the worker would act on something due at `moment`: then, or at its next tick."""
        if self.tick is None:
            return moment
        ticks = -((self.start - moment) // self.tick)  # ceil
        return self.start + ticks * self.tick

    def advance_to(self, moment: datetime, *, final: bool = False) -> None:
        """Fire the timers due by `moment` and answer the branches reached before it, in time order. The
        branches reached at one moment are answered once the clock moves on (or at the end, `final`):
        after the timers and events of that moment, so that one query answers all of them."""
        while True:
            branch_at = min((t for t in self.branches if t < moment or (final and t <= moment)), default=None)
            timer_at = self.timers[0][0] if self.timers and self.timers[0][0] <= moment else None
            if branch_at is None and timer_at is None:
                return
            if branch_at is not None and (timer_at is None or branch_at < timer_at):
                self.answer_branches(branch_at)
                continue
            _, _, r, instance_id, wake_at = heapq.heappop(self.timers)
            state = self.runs[r].states[instance_id]
            if state.status == "waiting" and state.wake_at == wake_at:
                self.feed(r, instance_id, Wake(), timer_at)

    # -- instances -----------------------------------------------------------------------------

    def enter(self, r: int, customer_id: str, now: datetime, key: str | None = None) -> str | None:
        """runtime.enter's rules (same key, concurrency, re-entry, control group), in memory."""
        run = self.runs[r]
        journey = run.journey
        running = [run.states[i] for i in run.by_customer.get(customer_id, ())]
        if not admits(journey, running, run.last_entry[customer_id], key, now):
            return None
        control = in_control(journey, customer_id)
        instance_id = f"sim{next(self.seq)}"
        start = Start(instance_id, customer_id, key=key, control=control, timezone=self.timezones.get(customer_id))
        state, commands = step(journey, None, start, now)
        run.states[instance_id] = state
        run.by_customer[customer_id].append(instance_id)
        run.last_entry[customer_id][key] = now
        run.entered.append((customer_id, now, control))
        self.after(r, state, commands, now)
        return instance_id

    def feed(self, r: int, instance_id: str, event: Input, now: datetime) -> None:
        run = self.runs[r]
        state, commands = step(run.journey, run.states[instance_id], event, now)
        run.states[instance_id] = state
        self.after(r, state, commands, now)

    def after(self, r: int, state: State, commands: list[Command], now: datetime) -> None:
        """Keep what the step asked for; set its timer."""
        run = self.runs[r]
        for c in commands:
            if isinstance(c, SendMessage):
                run.messages.append(
                    Planned(
                        now,
                        run.name,
                        state.customer_id,
                        c.key,
                        c.node,
                        c.channels,
                        c.template,
                        c.category,
                        c.when_capped,
                        c.held_out,
                    )
                )
            elif isinstance(c, Converted):
                run.conversions.append((state.customer_id, c.revenue, state.control))
            elif isinstance(c, Evaluate):
                self.branches[self.due(now)].append((r, state.instance_id))
            elif isinstance(c, AskApproval):
                run.counts["approvals_asked"] += 1
            elif isinstance(c, LoyaltyAction) and not c.held_out:
                if c.action == "promo_code":
                    run.counts["promo_codes"] += 1
                else:
                    run.counts["points"] += c.points or 0
            elif isinstance(c, SetAttribute):
                run.counts["profile_updates"] += 1
            elif isinstance(c, CallWebhook) and not c.held_out:
                run.counts["webhooks"] += 1
        if state.status == "waiting" and state.wake_at is not None:
            heapq.heappush(self.timers, (self.due(state.wake_at), next(self.seq), r, state.instance_id, state.wake_at))
        if state.status == "approval" and run.approve is not None:
            run.counts["approvals_approved" if run.approve else "approvals_rejected"] += 1
            self.feed(r, state.instance_id, Decided(run.approve, by="simulation"), now)

    def answer_branches(self, moment: datetime) -> None:
        """One segment query per journey node for every instance at a branch at `moment`."""
        waiting = self.branches.pop(moment)
        groups: dict[tuple[int, str], list[str]] = defaultdict(list)
        for r, instance_id in waiting:
            state = self.runs[r].states[instance_id]
            if state.status == "evaluating":
                groups[(r, state.node)].append(instance_id)
        self.sync()
        for (r, node), instance_ids in groups.items():
            run = self.runs[r]
            customers = sorted({run.states[i].customer_id for i in instance_ids})
            found = set(
                self.segments.members(
                    {"name": "branch", "rule": run.journey.nodes[node].rule},
                    as_of=moment + BRANCH_LAG,
                    only=customers,
                    sync=False,
                )["customer_id"]
            )
            self.queries += 1
            for i in instance_ids:
                if run.states[i].status == "evaluating" and run.states[i].node == node:
                    self.feed(r, i, Evaluated(run.states[i].customer_id in found), moment)

    # -- what starts instances -----------------------------------------------------------------

    def on_event(self, event: Logged, now: datetime) -> None:
        """runtime.on_events for one event: it reaches the customer's instances, then starts journeys."""
        customer_id = event.customer_id
        for r, run in enumerate(self.runs):
            if customer_id in run.by_customer:  # converted instances need no more looking at; finished ones
                run.by_customer[customer_id] = [  # can still meet their goal
                    i for i in run.by_customer[customer_id] if run.states[i].outcome != "converted"
                ]
            for instance_id in list(run.by_customer.get(customer_id, ())):
                arrived = happened(run.journey, event)
                if arrived is not None:
                    self.feed(r, instance_id, arrived, now)
            found, key = matching(run.journey, event)
            if found:
                self.enter(r, customer_id, now, key=key)

    def members(self, segment: str | dict[str, Any], moment: datetime) -> list[str]:
        """Members of a saved segment (by name) or of a definition ({name, rule}) as of `moment`."""
        self.sync()
        self.queries += 1
        return list(self.segments.members(segment, as_of=moment, sync=False)["customer_id"])

    def sync(self) -> None:
        """Copy the profiles beside the log once (what every segment query does; no journey state)."""
        if not self.synced:
            self.segments.sync()
            self.synced = True


def simulate(
    segments: Evaluator,
    guards: GuardSettings,
    name_or_definition: str | dict[str, Any] | Journey,
    *,
    date_from: date,
    date_to: date,
    step: timedelta | None = None,
    approve: bool | None = None,
    together: bool = True,
    manual: Iterable[tuple[str, datetime]] = (),
    sample: int = SAMPLE,
) -> dict[str, Any]:
    """Replay the history from the start of `date_from` to the end of `date_to` through the journey
    (by name: the saved one, else the ready-made one; or a definition), beside the active journeys.

    step: None acts on every timer and branch at its own moment (a segment query, ~0.3 s, per branch node
    and moment someone reaches it); a timedelta acts on them at the worker's ticks (date_from's midnight
    + k * step): timings move to the tick, and one query per node and tick answers everyone there.
    approve: None leaves approvals pending; True or False answers every one at once.
    manual: (customer id, moment) pairs entering the journey as service.enter_manually would (nothing in
    the log starts a manual journey).
    """
    if step is not None and step <= timedelta(0):
        raise ValidationFailed([{"field": "step", "reason": "step must be a positive duration"}])
    if date_to < date_from:
        raise ValidationFailed([{"field": "date_to", "reason": f"{date_to} is before date_from {date_from}"}])
    with segments.uow.session() as session:  # everything the replay reads from the store, at once
        journey = _resolve(session, name_or_definition)
        runs = [Run(journey, approve)]
        if together:
            runs += [Run(j, None) for j in _active(session) if j.name != journey.name]
        segment_days = _segment_triggers(session, runs)
        timezones = _timezones(session)
    start = datetime.combine(date_from, datetime.min.time())
    end = datetime.combine(date_to + timedelta(days=1), datetime.min.time())
    sim = Simulator(segments, runs, start=start, end=end, tick=step, timezones=timezones)
    events = _events(segments.log, runs, start, end)
    for r in list(segment_days):  # the log's membership events when it has some, else daily membership
        name = runs[r].journey.trigger.segment
        if any(e.event in (ENTERED, EXITED) and e.properties.get("segment") == name for e in events):
            del segment_days[r]
    manual_entries = sorted(manual, key=lambda p: p[1])
    previous: dict[int, set[str]] = {}
    cursor, m_cursor, day = 0, 0, start
    while day < end:
        sim.advance_to(day)
        _daily(sim, runs, day, segment_days, previous)
        next_day = day + timedelta(days=1)
        while cursor < len(events) and events[cursor].timestamp < next_day:
            event = events[cursor]
            cursor += 1
            sim.advance_to(event.timestamp)
            sim.on_event(event, event.timestamp)
        while m_cursor < len(manual_entries) and manual_entries[m_cursor][1] < next_day:
            customer_id, at = manual_entries[m_cursor]
            m_cursor += 1
            if at >= start:
                sim.advance_to(at)
                sim.enter(0, customer_id, at)
        day = next_day
    sim.advance_to(end - timedelta(microseconds=1), final=True)
    return report(uow=segments.uow, guards=guards, sim=sim, start=start, end=end, tick=step, sample=sample)


# -- inputs ----------------------------------------------------------------------------------------


def _resolve(session: Session, given: str | dict[str, Any] | Journey) -> Journey:
    if isinstance(given, Journey):
        return given
    if isinstance(given, dict):
        return parse_journey(given)
    definition = session.scalar(sa.select(m.Journey.definition).where(m.Journey.name == given))
    if definition is not None:
        return parse_journey(definition)
    try:
        return parse_journey(library.get(given))
    except KeyError:
        raise NotFound(f"no journey named {given!r}, saved or ready-made", field="journey") from None


def _active(session: Session) -> list[Journey]:
    rows = list(session.scalars(sa.select(m.Journey).where(m.Journey.status == "active").order_by(m.Journey.name)))
    return [definition_of(session, row.id, row.version) for row in rows]


def _timezones(session: Session) -> dict[str, str]:
    return dict(session.execute(sa.select(Customer.id, Customer.timezone).where(Customer.timezone.is_not(None))).all())


def _segment_triggers(session: Session, runs: list[Run]) -> dict[int, Any]:
    """run -> the segment its trigger follows (its saved name, or the ready-made definition)."""
    out: dict[int, Any] = {}
    known = set(session.scalars(sa.select(Segment.name)))
    ready = {d.name: d for d in segment_library.definitions()}
    for r, run in enumerate(runs):
        trigger = run.journey.trigger
        if isinstance(trigger, SegmentTrigger):
            if trigger.segment in known:
                out[r] = trigger.segment
            elif trigger.segment in ready:  # not installed yet: the ready-made one
                out[r] = {"name": trigger.segment, "rule": ready[trigger.segment].rule}
    return out


def _events(log: EventLog, runs: list[Run], start: datetime, end: datetime) -> list[Logged]:
    """The log's events that can start, move or convert an instance of these journeys, in time order."""
    names: set[str] = set()
    for run in runs:
        j = run.journey
        if isinstance(j.trigger, EventTrigger):
            names.add(j.trigger.event)
        elif isinstance(j.trigger, SegmentTrigger):
            names.update((ENTERED, EXITED))
        elif isinstance(j.trigger, LifecycleTrigger):
            names.add(LIFECYCLE_EVENT)
        names.update(n.event for n in j.nodes.values() if isinstance(n, WaitEvent))
        if j.goal:
            names.add(j.goal.event)
    if not names:
        return []
    with log.reader() as r:
        e = r.events
        rows = (
            e.filter(e.customer_id.notnull(), e.timestamp >= start, e.timestamp < end, e.event.isin(sorted(names)))
            .order_by(["timestamp", "received_at", "message_id"])
            .select("customer_id", "type", "event", "timestamp", properties=e.properties.cast(str))
            .execute()
        )
    return [
        Logged(c, t, name, ts.to_pydatetime(), orjson.loads(p) if p else {})
        for c, t, name, ts, p in zip(
            rows["customer_id"], rows["type"], rows["event"], rows["timestamp"], rows["properties"]
        )
    ]


def _daily(
    sim: Simulator, runs: list[Run], day: datetime, segment_days: dict[int, Any], previous: dict[int, set[str]]
) -> None:
    """At midnight: scheduled triggers (like run_scheduled) and segments followed by their daily membership."""
    for r, run in enumerate(runs):
        plan = scheduled_rule(run.journey.trigger, day)
        if plan is not None:
            rule, moment = plan
            for customer_id in sim.members({"name": "trigger", "rule": rule}, moment):
                sim.enter(r, customer_id, day)
        segment = segment_days.get(r)
        if segment is not None:
            members = set(sim.members(segment, day))
            if r in previous:  # the first midnight is the baseline: those already in do not enter
                trigger = run.journey.trigger
                moved = members - previous[r] if trigger.on == "entered" else previous[r] - members
                for customer_id in sorted(moved):
                    sim.enter(r, customer_id, day)
            previous[r] = members
