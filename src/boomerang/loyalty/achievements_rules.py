"""Achievements as data, and the pure arithmetic of progress towards them (no store, no clock).

An achievement awards a badge and points once, when a customer's events meet its condition:

- `count` matching events (`event`, with `where` property filters), ever or `within_days` of each other
  ("3 orders in 90 days"): the events counted are told apart by `once_per` (a property such as `order_id`, so the
  same order sent twice counts once), else by their message id, so a retried batch never counts twice;
- or `count` distinct values of the property `distinct` among matching events ("tried 3 categories":
  `products.category` of `Order Completed`).

Property paths use dots and look into lists (`products.category` reads every product's category); a `where` value
of `"*"` asks only that the property be there, strings compare without regard to case. `$identify` as the event
matches identify calls (their traits are the properties), e.g. `telegram_chat_id` present: a Telegram link.
`valid_from` / `valid_until` make a time-limited mission: only events inside count.

The progress of one customer towards one achievement is a small JSON `state`, bounded by the target: the keys
counted so far (never more than `count`: reaching it earns), the distinct values (the same), or for a window the
`2 * count` most recent (time, key) pairs, so that an event arriving late is checked exactly against every kept
neighbour. Only an event older than all those kept can be missed, and by then the customer has had `2 * count`
newer matching events without meeting the rule."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from boomerang.core.clock import naive_utc
from boomerang.core.errors import ValidationFailed

IDENTIFY = "$identify"  # the event name that matches identify calls
PRESENT = "*"  # a `where` value: the property is there, whatever its value
MAX_COUNT = 500
MAX_VALUE = 100  # characters of a distinct value kept
KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,59}$"
Scalar = str | int | float | bool


class Condition(BaseModel):
    """What a customer has to do."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1, max_length=200, description='an event name, or "$identify"')
    where: dict[str, Scalar] = Field(default_factory=dict, description='property path -> value ("*": present)')
    count: int = Field(default=1, ge=1, le=MAX_COUNT, description="how many events (or distinct values)")
    distinct: str | None = Field(default=None, min_length=1, max_length=200, description="count distinct values")
    within_days: int | None = Field(default=None, ge=1, le=3650, description="all of them within this many days")
    once_per: str | None = Field(default=None, min_length=1, max_length=200, description="count once per value")

    @field_validator("where")
    @classmethod
    def _paths(cls, where: dict[str, Scalar]) -> dict[str, Scalar]:
        if len(where) > 10:
            raise ValueError("at most 10 property filters")
        for path, value in where.items():
            if not path or len(path) > 200:
                raise ValueError("a property path has 1 to 200 characters")
            if isinstance(value, str) and len(value) > 200:
                raise ValueError(f"the value of {path} is longer than 200 characters")
        return where

    @field_validator("within_days", "once_per")
    @classmethod
    def _not_with_distinct(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("distinct"):
            hint = ": use valid_from and valid_until for a period" if info.field_name == "within_days" else ""
            raise ValueError(f"cannot go with distinct{hint}")
        return value


class Definition(BaseModel):
    """An achievement: its badge, the points it awards once, its condition and when it is on."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN, description="a-z, 0-9, _ and -, up to 60")
    title: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    badge: str = Field(default="🏅", min_length=1, max_length=16, description="an emoji or a short label")
    points: int = Field(default=0, ge=0, le=1_000_000)
    active: bool = False
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    condition: Condition

    @field_validator("title", "badge")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("must not be blank")
        return text.strip()

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _utc(cls, moment: datetime | None, info: ValidationInfo) -> datetime | None:
        moment = naive_utc(moment) if moment is not None and moment.tzinfo else moment
        start = info.data.get("valid_from")
        if info.field_name == "valid_until" and moment is not None and start is not None and moment <= start:
            raise ValueError("must be after valid_from")
        return moment


def parse(spec: Any) -> Definition:
    """A definition from plain data (a file, a form, a request); ValidationFailed naming each bad field."""
    if not isinstance(spec, dict):
        raise ValidationFailed([{"field": "body", "reason": "must be a mapping of an achievement's fields"}])
    try:
        return Definition.model_validate(spec)
    except ValidationError as exc:
        raise ValidationFailed.of(exc) from None


CONDITION_FIELDS = ("event", "where", "count", "distinct", "within_days", "once_per")


def from_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A definition from flat fields as a form or command-line options give them (text; blank means unset;
    `where` as `path=value` pairs, a line or a comma apart), for `parse` to check."""
    spec: dict[str, Any] = {"condition": {}}
    for name, value in fields.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        value = value.strip() if isinstance(value, str) else value
        if name == "where":
            value = _pairs(value) if isinstance(value, str) else value
        (spec["condition"] if name in CONDITION_FIELDS else spec)[name] = value
    return spec


def _pairs(text: str) -> dict[str, str]:
    pairs = {}
    for item in (part.strip() for line in text.splitlines() for part in line.split(",")):
        path, sep, value = item.partition("=")
        if not item:
            continue
        if not sep or not path.strip() or not value.strip():
            raise ValidationFailed([{"field": "condition.where", "reason": f"'{item}' is not path=value"}])
        pairs[path.strip()] = value.strip()
    return pairs


def compact(condition: Condition) -> dict[str, Any]:
    """A condition as stored and shown: what is set (the count always)."""
    out = condition.model_dump(mode="json", exclude_none=True)
    return out if out.get("where") else {k: v for k, v in out.items() if k != "where"}


def describe(condition: dict[str, Any]) -> str:
    """A condition in words: '3 x Order Completed within 90 days', '3 distinct products.category of Order
    Completed'."""
    c = Condition.model_validate(condition)
    what = f"{c.count} distinct {c.distinct} of" if c.distinct else f"{c.count} x"
    where = ", ".join(f"{k}={v}" for k, v in c.where.items())
    text = f"{what} {c.event}" + (f" where {where}" if where else "")
    text += f" within {c.within_days} days" if c.within_days else ""
    return text + (f" (once per {c.once_per})" if c.once_per else "")


# -- matching events ----------------------------------------------------------------------------------------------


def values(properties: Any, path: str) -> list[Scalar]:
    """The scalar values at a dotted path, looking into every element of the lists on the way."""
    found: list[Any] = [properties]
    for part in path.split("."):
        step: list[Any] = []
        for item in found:
            items = item if isinstance(item, list) else [item]
            step += [x[part] for x in items if isinstance(x, dict) and part in x]
        found = step
    flat = [y for x in found for y in (x if isinstance(x, list) else [x])]
    return [v for v in flat if isinstance(v, Scalar) and v != ""]


def _same(value: Scalar, wanted: Scalar) -> bool:
    if isinstance(wanted, bool) or isinstance(value, bool):
        return value is wanted
    if isinstance(wanted, str):
        return str(value).casefold() == wanted.casefold()
    return isinstance(value, int | float) and float(value) == float(wanted)


def matches(condition: Condition, kind: str, event: str, properties: dict[str, Any]) -> bool:
    """Whether an event (its type, name and properties; an identify's traits) is one the condition counts."""
    if condition.event == IDENTIFY:
        if kind != "identify":
            return False
    elif kind != "track" or event != condition.event:
        return False
    for path, wanted in condition.where.items():
        found = values(properties, path)
        if not found or (wanted != PRESENT and not any(_same(v, wanted) for v in found)):
            return False
    return not condition.distinct or bool(values(properties, condition.distinct))


def in_period(definition: Definition, at: datetime) -> bool:
    return (definition.valid_from is None or at >= definition.valid_from) and (
        definition.valid_until is None or at < definition.valid_until
    )


def counted_as(condition: Condition, message_id: str, properties: dict[str, Any]) -> str:
    """What tells counted events apart: the `once_per` property's value, else the message id."""
    if condition.once_per:
        found = values(properties, condition.once_per)
        if found:
            return f"{condition.once_per}={found[0]}"
    return message_id


# -- progress ------------------------------------------------------------------------------------------------------


def add(condition: Condition, state: dict[str, Any], seen: Iterable[tuple[datetime, str, dict]]) -> dict[str, Any]:
    """The state after these matching events (time, message id, properties); the same state for repeats."""
    if condition.distinct:
        kept = set(state.get("values", []))
        for _, _, props in seen:
            kept |= {str(v).casefold()[:MAX_VALUE] for v in values(props, condition.distinct)}
        return {"values": sorted(kept)}
    if condition.within_days is None:
        ids = list(state.get("ids", []))
        for _, message_id, props in seen:
            key = counted_as(condition, message_id, props)
            if key not in ids:
                ids.append(key)
        return {"ids": ids[: condition.count]}
    times = {key: at for at, key in state.get("times", [])}
    for at, message_id, props in seen:
        key = counted_as(condition, message_id, props)
        moment = at.isoformat()
        times[key] = min(times.get(key, moment), moment)
    newest = sorted(((at, key) for key, at in times.items()), reverse=True)[: 2 * condition.count]
    return {"times": [[at, key] for at, key in sorted(newest)]}


def _window_best(condition: Condition, state: dict[str, Any]) -> int:
    """The most counted events within `within_days` of each other."""
    moments = [datetime.fromisoformat(at) for at, _ in state.get("times", [])]
    span = timedelta(days=condition.within_days or 0)
    best, start = 0, 0
    for end, moment in enumerate(moments):
        while moment - moments[start] > span:
            start += 1
        best = max(best, end - start + 1)
    return best


def met(condition: Condition, state: dict[str, Any]) -> bool:
    """Whether the state meets the condition."""
    if condition.distinct:
        return len(state.get("values", [])) >= condition.count
    if condition.within_days is None:
        return len(state.get("ids", [])) >= condition.count
    return _window_best(condition, state) >= condition.count


def current(condition: Condition, state: dict[str, Any], now: datetime) -> int:
    """The progress to show, at most the target: what is counted, or for a window the events of the last
    `within_days` up to `now`."""
    if condition.distinct:
        have = len(state.get("values", []))
    elif condition.within_days is None:
        have = len(state.get("ids", []))
    else:
        since = now - timedelta(days=condition.within_days)
        have = sum(1 for at, _ in state.get("times", []) if since <= datetime.fromisoformat(at) <= now)
    return min(have, condition.count)


def combine(condition: Condition, one: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Two customers' states as one (a merge): keys and values together, the window's times together."""
    if condition.distinct:
        return {"values": sorted(set(one.get("values", [])) | set(other.get("values", [])))}
    if condition.within_days is None:
        ids = list(dict.fromkeys([*one.get("ids", []), *other.get("ids", [])]))
        return {"ids": ids[: condition.count]}
    both = {key: at for at, key in [*one.get("times", []), *other.get("times", [])]}
    newest = sorted(((at, key) for key, at in both.items()), reverse=True)[: 2 * condition.count]
    return {"times": [[at, key] for at, key in sorted(newest)]}


# -- ready-made -----------------------------------------------------------------------------------------------------

ORDER = "Order Completed"
READY_MADE: list[dict[str, Any]] = [
    {
        "key": "first_order",
        "title": "First order",
        "description": "Placed a first order.",
        "badge": "🛍️",
        "points": 50,
        "condition": {"event": ORDER, "count": 1, "once_per": "order_id"},
    },
    {
        "key": "first_review",
        "title": "First review",
        "description": "Reviewed a product.",
        "badge": "✍️",
        "points": 20,
        "condition": {"event": "Product Reviewed", "count": 1},
    },
    {
        "key": "three_orders_90_days",
        "title": "3 orders in 90 days",
        "description": "Three orders within 90 days.",
        "badge": "🔥",
        "points": 100,
        "condition": {"event": ORDER, "count": 3, "within_days": 90, "once_per": "order_id"},
    },
    {
        "key": "tried_3_categories",
        "title": "Explorer",
        "description": "Bought from 3 different categories.",
        "badge": "🧭",
        "points": 50,
        "condition": {"event": ORDER, "count": 3, "distinct": "products.category"},
    },
    {
        "key": "joined_telegram",
        "title": "Joined our Telegram bot",
        "description": "Linked a Telegram chat to hear from the shop there.",
        "badge": "✈️",
        "points": 20,
        "condition": {"event": "Telegram Bot Joined", "count": 1},  # the bot tells it when a chat is linked
    },
    {
        "key": "nps_answered",
        "title": "Told us what you think",
        "description": "Answered the NPS survey.",
        "badge": "💬",
        "points": 10,
        "condition": {"event": "NPS Survey Answered", "count": 1},
    },
]


def ready_made() -> dict[str, Definition]:
    """The achievements that come with Boomerang, off until the shop turns them on."""
    return {spec["key"]: Definition.model_validate(spec) for spec in READY_MADE}
