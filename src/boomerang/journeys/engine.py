"""The journey interpreter: `step(journey, state, input, now) -> (state, commands)`, pure.

State is plain JSON-able data kept with the instance; commands say what the worker must do (send,
award points, ask a person, evaluate a branch...). Nothing here reads a clock, a database or the
network, so every path is tested by feeding inputs, and the worker can replay a step after a crash:
each command carries an idempotency key made of the instance, the node and its visit number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from boomerang.core.buckets import bucket, pick
from boomerang.core.localtime import next_local_time
from boomerang.journeys.definition import (
    Approval,
    Branch,
    Exit,
    Journey,
    Loyalty,
    Send,
    Split,
    UpdateProfile,
    Variant,
    Wait,
    WaitEvent,
    WaitUntil,
    Webhook,
)

# -- inputs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    instance_id: str
    customer_id: str
    key: str | None = None
    control: bool = False  # held out: goes through the journey, is sent nothing
    timezone: str | None = None
    trigger: dict[str, Any] | None = None  # the event that started it: {"event", "key", "properties"}
    test: bool = False  # a test run for one customer: never held out, not counted in the journey's results
    speed: float = 1  # a test run's waits are this many times shorter


@dataclass(frozen=True)
class Wake:
    """A timer came due."""


@dataclass(frozen=True)
class Happened:
    event: str
    key: str | None = None
    revenue: float = 0.0


@dataclass(frozen=True)
class Decided:
    approved: bool
    template: str | None = None  # the approver's choice of template for the next message
    by: str = ""


@dataclass(frozen=True)
class Evaluated:
    result: bool


Input = Start | Wake | Happened | Decided | Evaluated

# -- commands --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    node: str
    key: str  # idempotency: instance, node, visit


@dataclass(frozen=True)
class SendMessage(Command):
    channels: tuple[str, ...]  # the first reachable one is used
    template: str
    held_out: bool  # the journey's control group: logged, not sent
    category: str  # transactional, triggered, promotional
    when_capped: str  # defer or drop


@dataclass(frozen=True)
class LoyaltyAction(Command):
    action: str
    points: int | None
    discount_percent: float | None
    valid_days: int
    held_out: bool


@dataclass(frozen=True)
class SetAttribute(Command):
    attribute: str
    value: Any


@dataclass(frozen=True)
class CallWebhook(Command):
    url: str
    held_out: bool


@dataclass(frozen=True)
class Evaluate(Command):
    rule: dict[str, Any]


@dataclass(frozen=True)
class AskApproval(Command):
    note: str


@dataclass(frozen=True)
class Converted(Command):
    revenue: float
    last_message: str | None  # the idempotency key of the last message sent before the goal


TIMES = ("entered_at", "wake_at", "last_message_at")  # kept as ISO text in the stored state


@dataclass
class State:
    """An instance's progress; `to_data` / `from_data` keep it as JSON in the store."""

    instance_id: str
    customer_id: str
    key: str | None
    control: bool
    timezone: str | None
    entered_at: datetime
    node: str
    status: str = "running"  # running, waiting, approval, evaluating, done
    wake_at: datetime | None = None
    waiting_for: str | None = None  # the event a wait_event waits for
    outcome: str | None = None  # converted, exited, rejected, expired
    visits: dict[str, int] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)
    template: str | None = None  # an approver's replacement for the next message's template
    last_message: str | None = None
    last_message_at: datetime | None = None
    path: list[str] = field(default_factory=list)  # nodes visited, in order
    trigger: dict[str, Any] | None = None  # the event that started it, for its messages' templates
    test: bool = False  # a test run: its messages go, nothing counts in the journey's results
    speed: float = 1  # > 1 in a test run: every wait that many times shorter

    def to_data(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        for k in TIMES:
            data[k] = data[k].isoformat() if data[k] else None
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> State:
        values = dict(data)
        for k in TIMES:
            values[k] = datetime.fromisoformat(values[k]) if values.get(k) else None
        return cls(**values)


def admits(
    journey: Journey, running: list[State], entered: dict[str | None, datetime], key: str | None, now: datetime
) -> bool:
    """Whether a customer may enter `journey` now for `key`, given their unfinished instances of it and when
    they last entered it, per key (None: entries without one). Never twice at once for one key (one cart,
    one order); where the trigger is keyed and re-entry counts per key, the concurrency limit and re-entry
    count that key's instances only (a second product back in stock the same day enters)."""
    running = [s for s in running if s.status != "done"]
    if key is not None and any(s.key == key for s in running):
        return False
    if key is not None and journey.reentry.per == "key":
        running = [s for s in running if s.key == key]
        last = entered.get(key)
    else:
        last = max(entered.values(), default=None)
    if len(running) >= journey.max_concurrent:
        return False
    rule = journey.reentry
    if rule.mode == "always" or last is None:
        return True
    return rule.mode != "never" and now - last >= timedelta(days=rule.days or 0)


def in_control(journey: Journey, customer_id: str) -> bool:
    """Whether the customer is in the journey's control group: stable for a customer and a journey."""
    return bucket(f"{journey.name}:control:{customer_id}") < journey.control_share


def reached_goal(journey: Journey, state: State, event: Happened, now: datetime) -> bool:
    """Whether `event` is the journey's goal, inside its window (from entry or from the last message)."""
    goal = journey.goal
    if not goal or event.event != goal.event or (goal.same_key and event.key != state.key):
        return False
    since = state.last_message_at if goal.counted_from == "last_message" and state.last_message_at else state.entered_at
    return now <= since + timedelta(days=goal.within_days)


def _after(state: State, now: datetime, wait: timedelta) -> datetime:
    """When a wait ends: a test run (`speed` > 1) waits that many times less (1 hour at 60: a minute)."""
    return now + wait / state.speed


def step(journey: Journey, state: State | None, event: Input, now: datetime) -> tuple[State, list[Command]]:
    """The instance's next state and what to do, given what happened at `now`."""
    commands: list[Command] = []
    if isinstance(event, Start):
        state = State(
            instance_id=event.instance_id,
            customer_id=event.customer_id,
            key=event.key,
            control=event.control,
            timezone=event.timezone,
            entered_at=now,
            node=journey.start,
            trigger=event.trigger,
            test=event.test,
            speed=event.speed,
        )
        return _run(journey, state, journey.start, now, commands)
    assert state is not None, "only Start begins an instance"
    if isinstance(event, Happened) and state.outcome != "converted" and reached_goal(journey, state, event, now):
        # the window outlives the path: an order after the last step still counts, once per instance
        commands.append(Converted(state.node, f"{state.instance_id}:goal", event.revenue, state.last_message))
        if state.status == "done":
            state.outcome = "converted"
            return state, commands
        return _end(state, "converted"), commands
    if state.status == "done":
        return state, commands
    if isinstance(event, Happened):
        node = journey.nodes[state.node]
        if (
            state.status == "waiting"
            and isinstance(node, WaitEvent)
            and event.event == node.event
            and (not node.same_key or event.key == state.key)
        ):
            return _run(journey, state, node.on_event or node.next, now, commands)
        return state, commands
    if isinstance(event, Wake):
        if state.status == "waiting" and state.wake_at is not None and state.wake_at <= now:
            return _run(journey, state, journey.nodes[state.node].next, now, commands)
        if (
            state.status != "done"
            and journey.goal
            and now > state.entered_at + timedelta(days=journey.goal.within_days * 10)
        ):
            return _end(state, "expired"), commands  # stuck (an approval nobody gave): give up eventually
        return state, commands
    if isinstance(event, Decided) and state.status == "approval":
        node = journey.nodes[state.node]
        assert isinstance(node, Approval)
        if event.approved:
            state.template = event.template
            return _run(journey, state, node.next, now, commands)
        if node.on_reject:
            return _run(journey, state, node.on_reject, now, commands)
        return _end(state, "rejected"), commands
    if isinstance(event, Evaluated) and state.status == "evaluating":
        node = journey.nodes[state.node]
        assert isinstance(node, Branch)
        return _run(journey, state, node.yes if event.result else node.no, now, commands)
    return state, commands


def _end(state: State, outcome: str) -> State:
    state.status, state.outcome, state.wake_at, state.waiting_for = "done", outcome, None, None
    return state


def _run(
    journey: Journey, state: State, node_id: str | None, now: datetime, commands: list[Command]
) -> tuple[State, list[Command]]:
    """Walk from `node_id` through the nodes that act at once, until one waits or the journey ends."""
    while True:
        if node_id is None:
            return _end(state, "exited"), commands
        node = journey.nodes[node_id]
        visit = state.visits.get(node_id, 0) + 1
        state.visits[node_id] = visit
        state.node, state.status, state.wake_at, state.waiting_for = node_id, "running", None, None
        state.path.append(node_id)
        key = f"{state.instance_id}:{node_id}:{visit}"
        if isinstance(node, Exit):
            return _end(state, "exited"), commands
        if isinstance(node, Wait):
            state.status, state.wake_at = "waiting", _after(state, now, timedelta(seconds=node.seconds))
            return state, commands
        if isinstance(node, WaitUntil):
            wait = next_local_time(now, node.time, state.timezone) - now
            state.status, state.wake_at = "waiting", _after(state, now, wait)
            return state, commands
        if isinstance(node, WaitEvent):
            state.status, state.waiting_for = "waiting", node.event
            state.wake_at = _after(state, now, timedelta(hours=node.timeout_hours))
            return state, commands
        if isinstance(node, Branch):
            state.status = "evaluating"
            commands.append(Evaluate(node_id, key, node.rule))
            return state, commands
        if isinstance(node, Approval):
            state.status = "approval"
            commands.append(AskApproval(node_id, key, node.note))
            return state, commands
        if isinstance(node, Split):
            variant = choose(node, state.customer_id, f"{journey.name}:{node_id}")
            state.variants[node_id] = variant.name
            node_id = variant.next
            continue
        if isinstance(node, Send):
            template, state.template = state.template or node.template, None
            commands.append(
                SendMessage(
                    node_id,
                    key,
                    (node.channel, *node.fallback),
                    template,
                    state.control,
                    journey.category,
                    node.when_capped,
                )
            )
            state.last_message, state.last_message_at = key, now
        elif isinstance(node, Loyalty):
            commands.append(
                LoyaltyAction(
                    node_id, key, node.action, node.points, node.discount_percent, node.valid_days, state.control
                )
            )
        elif isinstance(node, UpdateProfile):
            commands.append(SetAttribute(node_id, key, node.attribute, node.value))
        elif isinstance(node, Webhook):
            commands.append(CallWebhook(node_id, key, node.url, state.control))
        node_id = node.next


def choose(split: Split, customer_id: str, salt: str) -> Variant:
    """The customer's variant: the winner once there is one; until then stable, in proportion to the weights."""
    if split.winner is not None:
        return next(v for v in split.variants if v.name == split.winner)
    return pick(split.variants, [v.weight for v in split.variants], f"{salt}:{customer_id}")
