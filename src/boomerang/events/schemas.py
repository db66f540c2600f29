"""Segment tracking-spec messages, validated into one normalised shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from boomerang.config import IngestSettings
from boomerang.core import storable
from boomerang.core.clock import naive_utc
from boomerang.core.errors import ValidationFailed


def _id(value: Any) -> Any:
    """Segment SDKs send ids as strings; numbers are accepted and kept as their text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Id = Annotated[str, BeforeValidator(_id), Field(min_length=1, max_length=255)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    messageId: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    userId: Id | None = None
    anonymousId: Id | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)
    writeKey: str | None = None

    @model_validator(mode="after")
    def _someone(self):
        if self.userId is None and self.anonymousId is None and self.type != "alias":
            raise ValueError("userId or anonymousId is required")
        return self


class Track(_Message):
    type: Literal["track"] = "track"
    event: Annotated[str, Field(min_length=1, max_length=255)]
    properties: dict[str, Any] = Field(default_factory=dict)


class Identify(_Message):
    type: Literal["identify"] = "identify"
    traits: dict[str, Any] = Field(default_factory=dict)


class Page(_Message):
    type: Literal["page"] = "page"
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Screen(Page):
    type: Literal["screen"] = "screen"


class Group(_Message):
    type: Literal["group"] = "group"
    groupId: Id
    traits: dict[str, Any] = Field(default_factory=dict)


class Alias(_Message):
    type: Literal["alias"] = "alias"
    userId: Id
    previousId: Id


Message = Annotated[Track | Identify | Page | Screen | Group | Alias, Field(discriminator="type")]
MODELS = {"track": Track, "identify": Identify, "page": Page, "screen": Screen, "group": Group, "alias": Alias}
_ADAPTERS = {name: TypeAdapter(model) for name, model in MODELS.items()}


class Envelope(BaseModel):
    """A batch request with its messages not yet read (see read_batch)."""

    model_config = ConfigDict(extra="ignore")

    batch: list[Any]
    sentAt: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    writeKey: str | None = None


_ENVELOPE = TypeAdapter(Envelope)
EVENT_NAMES = {
    "identify": "Identify",
    "page": "Page Viewed",
    "screen": "Screen Viewed",
    "group": "Group",
    "alias": "Alias",
}


@dataclass
class Event:
    """One accepted message, in the shape the rest of Boomerang uses."""

    message_id: str
    type: str
    event: str
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime
    properties: dict[str, Any]
    context: dict[str, Any]
    traits: dict[str, Any] = field(default_factory=dict)
    previous_id: str | None = None
    customer_id: str | None = None
    source: str = "api"
    user_hash: str | None = None  # the shop server's signature of user_id (identity verification), never stored

    @classmethod
    def from_stored(
        cls,
        message_id: str,
        type: str,
        event: str,
        user_id: str | None,
        anonymous_id: str | None,
        timestamp: datetime,
        properties: dict[str, Any],
        context: dict[str, Any],
        source: str,
    ) -> Event:
        """An event as the inbox keeps it: identify's traits and alias's previous id are in its properties."""
        return cls(
            message_id=message_id,
            type=type,
            event=event,
            user_id=user_id,
            anonymous_id=anonymous_id,
            timestamp=timestamp,
            properties=properties,
            context=context,
            traits=properties if type == "identify" else {},
            previous_id=properties.get("previous_id") if type == "alias" else None,
            source=source,
        )


@dataclass(frozen=True)
class Logged:
    """An event of a known customer as it reached the log: what segments and journeys react to."""

    customer_id: str
    type: str
    event: str
    timestamp: datetime
    properties: dict[str, Any]
    message_id: str | None = None  # None where no message carried it (a simulation)


def _field(loc: tuple, prefix: str) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in MODELS:  # the discriminator's tag is not a field the sender wrote
            path += f".{part}" if path else str(part)
    return path or "body"


def errors_of(exc: ValidationError, prefix: str = "") -> list[dict]:
    return [
        {"field": _field(e["loc"], prefix), "reason": e["msg"].removeprefix("Value error, ")}
        for e in exc.errors(include_url=False)
    ]


def parse_one(kind: str, payload: Any) -> _Message:
    try:
        return _ADAPTERS[kind].validate_python(payload)
    except ValidationError as exc:
        raise ValidationFailed(errors_of(exc)) from None


def read_batch(payload: Any) -> tuple[Envelope, list[tuple[int, _Message]], dict[int, list[dict]]]:
    """A batch request read leniently, as Segment's API does: the envelope must be well formed (or
    ValidationFailed); each message is read on its own, and a bad one is set aside with its problems
    (by index) without taking its neighbours with it."""
    try:
        envelope = _ENVELOPE.validate_python(payload)
    except ValidationError as exc:
        raise ValidationFailed(errors_of(exc)) from None
    good: list[tuple[int, _Message]] = []
    bad: dict[int, list[dict]] = {}
    for index, item in enumerate(envelope.batch):
        where = f"batch[{index}]"
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in MODELS:
            bad[index] = [{"field": f"{where}.type", "reason": f"must be one of {', '.join(MODELS)}"}]
            continue
        try:
            good.append((index, _ADAPTERS[kind].validate_python(item)))
        except ValidationError as exc:
            bad[index] = errors_of(exc, where)
    return envelope, good, bad


def normalise(
    messages: list[_Message],
    *,
    received_at: datetime,
    limits: IngestSettings,
    new_id,
    prefix: str = "",
    sent_at: datetime | None = None,
    batch_context: dict | None = None,
) -> list[Event]:
    """Check times and fill defaults; every problem of every message is reported at once."""
    events, errors = normalise_each(
        list(enumerate(messages)),
        received_at=received_at,
        limits=limits,
        new_id=new_id,
        prefix=prefix,
        sent_at=sent_at,
        batch_context=batch_context,
    )
    if errors:
        raise ValidationFailed([e for index in sorted(errors) for e in errors[index]])
    return [event for _, event in events]


def normalise_each(
    messages: list[tuple[int, _Message]],
    *,
    received_at: datetime,
    limits: IngestSettings,
    new_id,
    prefix: str = "",
    sent_at: datetime | None = None,
    batch_context: dict | None = None,
) -> tuple[list[tuple[int, Event]], dict[int, list[dict]]]:
    """Each (index, message) as an Event, or its problems by index: a time too far ahead or back (after
    correcting the sender's clock with sentAt), data nested deeper than the store keeps."""
    events, errors = [], {}
    latest = received_at + timedelta(seconds=limits.max_future_seconds)
    earliest = naive_utc(limits.earliest_timestamp)
    for index, msg in messages:
        where = f"{prefix}[{index}]" if prefix else ""
        when = _event_time(msg, received_at, sent_at)
        name = f"{where}.{'timestamp' if msg.timestamp else 'originalTimestamp'}".lstrip(".")
        context = {**(batch_context or {}), **msg.context}
        properties = _properties(msg)
        problems = []
        if when > latest:
            problems.append({"field": name, "reason": f"{when.isoformat()} is too far in the future"})
        if when < earliest:
            problems.append({"field": name, "reason": f"{when.isoformat()} is before {earliest.date()}"})
        for part, value in (("properties", properties), ("context", context)):
            if (found := storable.problem(value, f"{where}.{part}".lstrip("."))) is not None:
                problems.append({"field": found[0], "reason": found[1]})
        fields = msg.__dict__  # a model's own fields: getattr of one its type lacks costs an exception
        for part in ("userId", "anonymousId", "messageId", "event", "previousId", "groupId"):
            if "\x00" in str(fields.get(part) or ""):
                problems.append({"field": f"{where}.{part}".lstrip("."), "reason": "contains a NUL character"})
        signature, problem = _user_hash(msg, where)
        if problem:
            problems.append(problem)
        if problems:
            errors[index] = problems
            continue
        events.append(
            (
                index,
                Event(
                    message_id=msg.messageId or new_id(),
                    type=msg.type,
                    event=msg.event if isinstance(msg, Track) else EVENT_NAMES[msg.type],
                    user_id=msg.userId,
                    anonymous_id=msg.anonymousId,
                    timestamp=when,
                    properties=properties,
                    context=context,
                    traits=_traits(msg) if isinstance(msg, Identify) else msg.traits if isinstance(msg, Group) else {},
                    previous_id=msg.previousId if isinstance(msg, Alias) else None,
                    user_hash=signature,
                ),
            )
        )
    return events, errors


def _user_hash(msg: _Message, where: str) -> tuple[str | None, dict | None]:
    """`integrations.Boomerang.user_hash`, where Segment's libraries carry a destination's options (as Intercom's
    `user_hash`): the shop server's HMAC of the user id, or None; a problem when it cannot be one."""
    options = msg.integrations.get("Boomerang")
    value = options.get("user_hash") if isinstance(options, dict) else None
    if value is None:
        return None, None
    field = f"{where}.integrations.Boomerang.user_hash".lstrip(".")
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        return None, {"field": field, "reason": "must be the hex HMAC-SHA256 of the userId"}
    if msg.userId is None:
        return None, {"field": field, "reason": "signs a userId, and the message has none"}
    return value, None


def _event_time(msg: _Message, received_at: datetime, sent_at: datetime | None) -> datetime:
    """Segment's rule: the sender's clock is corrected by the gap between sentAt and receipt."""
    if msg.timestamp is not None:
        return naive_utc(msg.timestamp)
    sent = msg.sentAt or sent_at
    if msg.originalTimestamp is not None:
        if sent is not None:
            return received_at - (naive_utc(sent) - naive_utc(msg.originalTimestamp))
        return naive_utc(msg.originalTimestamp)
    return received_at


def _properties(msg: _Message) -> dict[str, Any]:
    if isinstance(msg, Page):
        extra = {k: v for k, v in (("name", msg.name), ("category", msg.category)) if v is not None}
        return {**msg.properties, **extra}
    if isinstance(msg, Group):
        return {"group_id": msg.groupId, **msg.traits}
    if isinstance(msg, Alias):
        return {"previous_id": msg.previousId}
    if isinstance(msg, Identify):
        return _traits(msg)
    return dict(msg.properties)


def _traits(msg: Identify) -> dict[str, Any]:
    """An identify's traits, with those RudderStack's SDKs send in `context.traits` (the message's own win)."""
    carried = msg.context.get("traits")
    return {**(carried if isinstance(carried, dict) else {}), **msg.traits}


class Problem(BaseModel):
    field: str
    reason: str


class SetAside(BaseModel):
    index: int
    messageId: str | None = None
    errors: list[Problem]


class Accepted(BaseModel):
    """The tracking API's answer: the batch is durable; how many events were new, how many seen before."""

    success: bool = True
    accepted: int
    duplicates: int
    set_aside: list[SetAside] | None = Field(
        default=None, description="messages of a batch not taken, each with its index and problems (none: absent)"
    )


class SetAsideOut(BaseModel):
    received_at: datetime
    source: str
    index: int
    message_id: str | None
    errors: list[Problem]
    payload: str


class SetAsidePage(BaseModel):
    items: list[SetAsideOut]
    total: int
    limit: int
    offset: int
