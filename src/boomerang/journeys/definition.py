"""Journey definitions: a trigger, a graph of nodes, a goal, control groups; validated data (JSON or YAML).

    name: abandoned_cart
    category: triggered                     # transactional | triggered | promotional (guards' priority)
    trigger: {event: Product Added, key: cart_id}
    goal: {event: Order Completed, within_days: 7}
    start: wait
    nodes:
      wait:   {type: wait_event, event: Order Completed, same_key: true, timeout_hours: 1, next: remind, on_event: done}
      remind: {type: send, channel: email, fallback: [telegram, sms], template: cart_reminder, next: done}
      done:   {type: exit}

Errors name the path (nodes.remind.next: unknown node 'x') and the reason. An optional `layout` ({node: {x, y}},
and TRIGGER_BOX for the trigger) is where the dashboard's canvas draws the boxes: the engine ignores it, and
service.save keeps it out of the versions' comparison.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from boomerang.core.errors import ValidationFailed
from boomerang.core.vocab import CHANNELS, Category
from boomerang.segments.definition import NAME, FieldError, parse_rule

TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
RESERVED = {"approvals", "validate", "new"}
TRIGGER_BOX = "@trigger"  # the trigger's key in a layout (no node name has an @)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- triggers --------------------------------------------------------------------------------------


class EventTrigger(_Strict):
    event: str = Field(min_length=1, max_length=200)
    key: str | None = Field(default=None, description="a property: one instance per value (cart_id, order_id)")
    where: dict[str, Any] = Field(default_factory=dict, description="properties that must equal these values")


class SegmentTrigger(_Strict):
    segment: str
    on: Literal["entered", "exited"] = "entered"


class DateTrigger(_Strict):
    """A date of the customer (birthday: yearly; first_order: its anniversaries) with an offset in days."""

    date: Literal["birthday", "first_order"]
    offset_days: int = Field(default=0, ge=-60, le=60, description="-7: seven days before")


class InactivityTrigger(_Strict):
    inactive_days: int = Field(ge=1, le=3650, description="no Order Completed for this many days")


class LifecycleTrigger(_Strict):
    lifecycle: Literal["new", "active", "sleeping", "churned", "reactivated"]


class NextPurchaseTrigger(_Strict):
    next_purchase_offset_days: int = Field(ge=-60, le=60, description="days from the predicted next purchase")


class ReplenishmentTrigger(_Strict):
    """Per product: its cycle is the median gap between a customer's purchases of it (learned from every
    customer who bought it again); a customer enters, keyed by the product, `replenish_offset_days` from
    their last purchase of it plus the cycle (-3: three days before they would run out)."""

    replenish_offset_days: int = Field(ge=-60, le=60)
    min_repeats: int = Field(default=3, ge=1, description="gaps a product needs before its cycle is trusted")


class ManualTrigger(_Strict):
    manual: Literal[True]


Trigger = (
    EventTrigger
    | SegmentTrigger
    | DateTrigger
    | InactivityTrigger
    | LifecycleTrigger
    | NextPurchaseTrigger
    | ReplenishmentTrigger
    | ManualTrigger
)
TRIGGERS: dict[str, type[_Strict]] = {
    "event": EventTrigger,
    "segment": SegmentTrigger,
    "date": DateTrigger,
    "inactive_days": InactivityTrigger,
    "lifecycle": LifecycleTrigger,
    "next_purchase_offset_days": NextPurchaseTrigger,
    "replenish_offset_days": ReplenishmentTrigger,
    "manual": ManualTrigger,
}


# -- nodes -----------------------------------------------------------------------------------------


class _Node(_Strict):
    next: str | None = None

    def targets(self) -> list[str]:
        return [self.next] if self.next else []


class Wait(_Node):
    type: Literal["wait"]
    minutes: float = 0
    hours: float = 0
    days: float = 0

    @model_validator(mode="after")
    def _positive(self) -> Wait:
        if min(self.minutes, self.hours, self.days) < 0 or self.seconds <= 0:
            raise ValueError("a wait needs a positive duration (minutes, hours or days)")
        return self

    @property
    def seconds(self) -> float:
        return self.minutes * 60 + self.hours * 3600 + self.days * 86400


class WaitUntil(_Node):
    """Until the next time of day in the customer's timezone (UTC when unknown)."""

    type: Literal["wait_until"]
    time: str

    @model_validator(mode="after")
    def _time(self) -> WaitUntil:
        if not TIME.fullmatch(self.time):
            raise ValueError(f"time {self.time!r} must be HH:MM (24 hours)")
        return self


class WaitEvent(_Node):
    """Until the customer does `event` (with the instance's key, if same_key) or the timeout passes."""

    type: Literal["wait_event"]
    event: str
    same_key: bool = False
    timeout_hours: float = Field(gt=0, le=24 * 365)
    on_event: str | None = Field(default=None, description="where to go when the event comes (next: on timeout)")

    def targets(self) -> list[str]:
        return [t for t in (self.next, self.on_event) if t]


class Branch(_Strict):
    """A segment rule evaluated for the customer at that moment (see segments)."""

    type: Literal["branch"]
    rule: dict[str, Any]
    yes: str
    no: str

    @model_validator(mode="after")
    def _rule(self) -> Branch:
        try:
            parse_rule(self.rule, "rule")
        except ValidationFailed as exc:
            raise FieldError(exc.errors[0]["field"], exc.errors[0]["reason"]) from None
        return self

    def targets(self) -> list[str]:
        return [self.yes, self.no]


class Variant(_Strict):
    name: str = Field(min_length=1, max_length=40)
    weight: float = Field(gt=0)
    next: str


class Split(_Strict):
    """A/B/n: each customer lands in one variant, always the same (a hash of customer, journey and node); once a
    `winner` is set (by a person, or by `roll_out` when its interval says so), every customer after goes there."""

    type: Literal["split"]
    variants: list[Variant] = Field(min_length=2, max_length=10)
    roll_out: bool = Field(default=False, description="send everyone to the winning variant once one is declared")
    winner: str | None = Field(default=None, description="the variant every customer gets from now on")

    @model_validator(mode="after")
    def _winner(self) -> Split:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise FieldError("variants", "variant names must differ")
        if self.winner is not None and self.winner not in names:
            raise FieldError("winner", f"no variant {self.winner!r} (one of {', '.join(names)})")
        return self

    def targets(self) -> list[str]:
        return [v.next for v in self.variants]


class Send(_Node):
    type: Literal["send"]
    channel: str
    fallback: list[str] = Field(default_factory=list, description="channels to try, in order, when unreachable")
    template: str = Field(min_length=1, max_length=200)
    when_capped: Literal["defer", "drop"] = Field(default="defer", description="over a frequency cap: later, or never")

    @model_validator(mode="after")
    def _channels(self) -> Send:
        for ch in (self.channel, *self.fallback):
            if ch not in CHANNELS:
                raise FieldError(
                    "channel" if ch == self.channel else "fallback",
                    f"unknown channel {ch!r}; use one of {', '.join(CHANNELS)}",
                )
        return self


class Loyalty(_Node):
    type: Literal["loyalty"]
    action: Literal["award_points", "promo_code"]
    points: int | None = Field(default=None, gt=0)
    discount_percent: float | None = Field(default=None, gt=0, le=100)
    valid_days: int = Field(default=14, ge=1, le=365)

    @model_validator(mode="after")
    def _amount(self) -> Loyalty:
        if self.action == "award_points" and self.points is None:
            raise ValueError("award_points needs points")
        if self.action == "promo_code" and self.discount_percent is None:
            raise ValueError("promo_code needs discount_percent")
        return self


class Approval(_Node):
    """A person approves (optionally editing the next message's template) or rejects before going on."""

    type: Literal["approval"]
    on_reject: str | None = None
    note: str = ""

    def targets(self) -> list[str]:
        return [t for t in (self.next, self.on_reject) if t]


class UpdateProfile(_Node):
    type: Literal["update_profile"]
    attribute: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,100}$")
    value: Any


class Webhook(_Node):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")


class Exit(_Strict):
    type: Literal["exit"]

    def targets(self) -> list[str]:
        return []


Node = Annotated[
    Wait | WaitUntil | WaitEvent | Branch | Split | Send | Loyalty | Approval | UpdateProfile | Webhook | Exit,
    Field(discriminator="type"),
]


class Goal(_Strict):
    """What counts as a conversion: the goal event within `within_days` of entering the journey (or of its
    last message), whether the customer is still on the path or has finished it; once per instance."""

    event: str = "Order Completed"
    within_days: float = Field(default=7, gt=0, le=365)
    counted_from: Literal["entry", "last_message"] = Field(
        default="entry", description="where the window starts: the entry, or the last message sent"
    )
    same_key: bool = False


class Reentry(_Strict):
    mode: Literal["never", "after", "always"] = "after"
    days: float | None = Field(default=30, ge=0)
    per: Literal["key", "customer"] = Field(
        default="key",
        description="for a keyed trigger (a cart, a product): re-entry and max_concurrent count each key "
        "apart, or all of the customer's entries together",
    )


class Position(_Strict):
    """Where the dashboard's canvas draws a box (its top-left corner, in pixels)."""

    x: float = Field(ge=-100_000, le=100_000)
    y: float = Field(ge=-100_000, le=100_000)


class Journey(_Strict):
    name: str
    title: str = ""
    description: str = ""
    category: Category = "triggered"
    purpose: Literal["first_purchase", "repeat_purchase", "reactivation", "loyalty", "feedback"] | None = Field(
        default=None,
        description="the business goal in the segment x goal x channel matrix (read from goal and "
        "trigger when not given)",
    )
    trigger: Trigger
    goal: Goal | None = Goal()
    control_share: float = Field(default=0.10, ge=0, lt=1, description="held out: enter, are sent nothing")
    reentry: Reentry = Reentry()
    max_concurrent: int = Field(
        default=1, ge=1, le=100, description="instances per customer (per key with reentry.per: key) at once"
    )
    start: str
    nodes: dict[str, Node] = Field(min_length=1)
    layout: dict[str, Position] = Field(
        default_factory=dict,
        max_length=1000,
        description="the canvas's positions of the nodes (and of the trigger, TRIGGER_BOX); the engine ignores it",
    )

    @model_validator(mode="after")
    def _graph(self) -> Journey:
        if not NAME.fullmatch(self.name):
            raise FieldError("name", "name must be lower-case letters, digits and _ (starting with a letter)")
        if self.name in RESERVED:
            raise FieldError("name", f"{self.name!r} is reserved (a path of the API and the dashboard)")
        if self.start not in self.nodes:
            raise FieldError("start", f"unknown node {self.start!r}")
        for node_id, node in self.nodes.items():
            for target in node.targets():
                if target not in self.nodes:
                    raise FieldError(f"nodes.{node_id}", f"unknown node {target!r}")
            if not isinstance(node, Exit) and not node.targets():
                raise FieldError(f"nodes.{node_id}", "needs next (end a path with a node of type exit)")
        reached, todo = set(), [self.start]
        while todo:
            current = todo.pop()
            if current not in reached:
                reached.add(current)
                todo += self.nodes[current].targets()
        unreachable = sorted(set(self.nodes) - reached)
        if unreachable:
            raise FieldError("nodes", f"never reached from start: {', '.join(unreachable)}")
        self._no_instant_loop()
        return self

    def _no_instant_loop(self) -> None:
        """A cycle must pass a node that waits, or a customer would loop forever in one step."""
        waiting = (Wait, WaitUntil, WaitEvent, Approval)

        def visit(node_id: str, path: list[str]) -> None:
            if node_id in path:
                raise FieldError("nodes", f"loop without waiting: {' -> '.join([*path, node_id])}")
            node = self.nodes[node_id]
            if isinstance(node, waiting):
                return
            for target in node.targets():
                visit(target, [*path, node_id])

        visit(self.start, [])
        for _node_id, node in self.nodes.items():
            if isinstance(node, waiting):
                for target in node.targets():
                    visit(target, [])

    @property
    def marketing(self) -> bool:
        return self.category != "transactional"


_JOURNEY = TypeAdapter(Journey)
NODE_TYPES = {
    "wait",
    "wait_until",
    "wait_event",
    "branch",
    "split",
    "send",
    "loyalty",
    "approval",
    "update_profile",
    "webhook",
    "exit",
}


def parse_journey(raw: Any) -> Journey:
    """A journey from plain data; errors name the field (nodes.remind.channel) and the reason."""
    if not isinstance(raw, dict):
        raise ValidationFailed(
            [{"field": "journey", "reason": "a journey is an object with name, trigger, start, nodes"}]
        )
    trigger = raw.get("trigger")
    kinds = [k for k in TRIGGERS if isinstance(trigger, dict) and k in trigger]
    if len(kinds) != 1:
        raise ValidationFailed(
            [{"field": "trigger", "reason": f"a trigger needs exactly one of {', '.join(TRIGGERS)}"}]
        )
    try:
        TRIGGERS[kinds[0]].model_validate(trigger)
        return _JOURNEY.validate_python(raw)
    except ValidationError as exc:
        prefix = ["trigger"] if exc.title != "Journey" else []
        raise ValidationFailed([_error(e, prefix) for e in exc.errors(include_url=False)]) from None


def _error(e: dict, prefix: list[str]) -> dict[str, str]:
    cause = e.get("ctx", {}).get("error")
    # unions name the member they tried (nodes.w.send.channel): keep the path a user wrote
    loc = prefix + [str(p) for p in e["loc"] if str(p) not in NODE_TYPES and not str(p).endswith("Trigger")]
    loc += [cause.field] if isinstance(cause, FieldError) else []
    return {"field": ".".join(loc) or "journey", "reason": e["msg"].removeprefix("Value error, ")}
