"""Guards: the ordered, named rules every outgoing message passes before it is sent. Pure: no clock, no store.

`decide(message, ctx, now) -> Decision` runs GUARDS in order; the first rule that suppresses or defers
decides, and a message that passes them all is sent on the channel the consent rule chose:

    purpose         the message's reason is gone (its journey's goal met: the cart bought): suppressed
    consent         the first channel in the message's order with consent and an address (the fallback)
    preferences     the customer's preference centre: a topic turned off (suppressed), or "weekly" /
                    "monthly" (one marketing message per week or month: deferred or dropped)
    global_control  the customers held out of all marketing (a stable hash of the id): suppressed
    duplicate       the same template already sent to the customer within the window: suppressed
    priority        promotional within the gap after a triggered or transactional message: deferred
    frequency       over a cap per channel or across channels (marketing only): deferred or dropped
    quiet_hours     the customer's local night (marketing only): deferred to the morning

Times are naive UTC. Transactional messages are exempt from every rule but consent: a receipt is
never held back. Channels that are not the customer's (a journey's webhook) need no consent or
address and are not counted as messages sent to the customer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal

from boomerang.config import GuardSettings
from boomerang.core.buckets import bucket
from boomerang.core.localtime import UTC, zone_of
from boomerang.core.vocab import ADDRESS_FIELDS, CHANNELS, rank


@dataclass(frozen=True)
class Outgoing:
    """What the guards know of a message (built from a `Message` row with `from_message`)."""

    customer_id: str
    channels: tuple[str, ...]  # in order of preference
    template: str
    category: str  # transactional, triggered, promotional
    when_capped: str = "defer"  # or drop
    source: str = ""
    key: str = ""
    topic: str | None = None  # the template's (offers, reminders...): what a customer may turn off
    gone: str | None = None  # why the message no longer has a reason to go, found just before it leaves

    @classmethod
    def from_message(cls, row: Any, *, topic: str | None = None, gone: str | None = None) -> Outgoing:
        return cls(
            row.customer_id,
            tuple(row.channels or ()),
            row.template,
            row.category,
            row.when_capped or "defer",
            row.source,
            row.key,
            topic,
            gone,
        )

    @property
    def marketing(self) -> bool:
        return self.category != "transactional"


@dataclass(frozen=True)
class Sent:
    """A message already sent to the customer."""

    channel: str
    category: str
    template: str
    source: str
    sent_at: datetime


@dataclass
class Context:
    """The customer as the guards see them; `recent` holds their messages sent within the longest window."""

    customer_id: str
    addresses: dict[str, str | None] = field(default_factory=dict)  # email, phone, telegram_chat_id
    timezone: str | None = None
    consents: dict[str, bool] = field(default_factory=dict)  # channel -> granted (absent: never asked)
    global_control: bool = False
    recent: list[Sent] = field(default_factory=list)
    settings: GuardSettings = field(default_factory=GuardSettings)
    found: bool = True  # False: no such customer in the store
    topics_off: frozenset[str] = frozenset()  # from the preference centre
    frequency_days: float | None = None  # the customer asked for at most one marketing message in this many days

    def address(self, channel: str) -> str | None:
        """The customer's address on `channel` (None where the channel needs none or it is unknown)."""
        name = ADDRESS_FIELDS.get(channel)
        return self.addresses.get(name) if name else None


@dataclass(frozen=True)
class Decision:
    action: Literal["send", "suppress", "defer"]
    channel: str | None
    guard: str  # the rule that decided ("" when every rule passed)
    reason: str  # for send: the preferred channels passed over, and why ("" when the first one is used)
    until: datetime | None = None  # for defer


Guard = Callable[[Outgoing, Context, datetime, "str | None"], "Decision | None"]


def in_global_control(customer_id: str, share: float) -> bool:
    """Whether the customer belongs to the global control group: stable across runs, machines and journeys."""
    return share > 0 and bucket(f"global_control:{customer_id}") < share


def decide(message: Outgoing, ctx: Context, now: datetime) -> Decision:
    """Send (on which channel), suppress or defer `message`, by the first guard that objects."""
    channel, note = None, ""
    for name, guard in GUARDS:
        decision = guard(message, ctx, now, channel)
        if decision is None:
            continue
        if decision.action == "send":  # the consent rule picked the channel (its reason: the channels passed over)
            channel, note = decision.channel, decision.reason
            continue
        return Decision(decision.action, channel, name, decision.reason, decision.until)
    return Decision("send", channel or (message.channels[0] if message.channels else None), "", note)


# -- the rules -------------------------------------------------------------------------------------


def consent(message: Outgoing, ctx: Context, now: datetime, channel: str | None) -> Decision | None:
    """The first channel with consent granted and an address; none: suppressed, saying what each one lacks."""
    if not ctx.found:
        return Decision("suppress", None, "consent", "customer not found")
    missing = []
    for name in message.channels:
        if name not in CHANNELS:  # not a message to the customer (a webhook)
            return Decision("send", name, "consent", "; ".join(missing))
        granted = ctx.consents.get(name)
        if not granted:
            missing.append(f"{name}: {'consent withdrawn' if granted is False else 'no consent'}")
        elif name in ADDRESS_FIELDS and not ctx.address(name):
            missing.append(f"{name}: no {ADDRESS_FIELDS[name]}")
        else:
            return Decision("send", name, "consent", "; ".join(missing))
    return Decision("suppress", None, "consent", "; ".join(missing) or "no channel")


def preferences(message: Outgoing, ctx: Context, now: datetime, channel: str | None) -> Decision | None:
    """Marketing only: a receipt is sent whatever the topics."""
    if not message.marketing:
        return None
    if message.topic and message.topic in ctx.topics_off:
        return Decision("suppress", channel, "preferences", f"topic {message.topic} turned off by the customer")
    if ctx.frequency_days:
        window = timedelta(days=ctx.frequency_days)
        inside = [s.sent_at for s in _to_customer(ctx) if s.category != "transactional" and s.sent_at > now - window]
        if inside:
            return _capped(
                message,
                channel,
                "preferences",
                f"the customer asked for one message in "
                f"{ctx.frequency_days:g} days; last at {max(inside):%Y-%m-%d %H:%M}",
                max(inside) + window,
            )
    return None


def purpose(message: Outgoing, ctx: Context, now: datetime, channel: str | None) -> Decision | None:
    if message.marketing and message.gone:
        return Decision("suppress", channel, "purpose", message.gone)
    return None


def global_control(message: Outgoing, ctx: Context, now: datetime, channel: str | None) -> Decision | None:
    if message.marketing and ctx.global_control:
        return Decision("suppress", channel, "global_control", "customer in the global control group")
    return None


def duplicate(message: Outgoing, ctx: Context, now: datetime, channel: str | None) -> Decision | None:
    """Marketing only: a transactional template legitimately repeats (two orders, two receipts)."""
    window = timedelta(hours=ctx.settings.duplicate_window_hours)
    if not message.marketing or not window:
        return None
    for sent in _to_customer(ctx):
        if sent.template == message.template and sent.sent_at > now - window:
            return Decision(
                "suppress",
                channel,
                "duplicate",
                f"{message.template} sent by {sent.channel} at {sent.sent_at:%Y-%m-%d %H:%M}",
            )
    return None


def priority(message: Outgoing, ctx: Context, now: datetime, channel: str | None) -> Decision | None:
    """A promotional message waits out the gap after any message of a higher category."""
    gap = timedelta(hours=ctx.settings.priority_gap_hours)
    if message.category != "promotional" or not gap:
        return None
    mine = rank(message.category)
    above = [s for s in _to_customer(ctx) if rank(s.category) < mine and s.sent_at > now - gap]
    if not above:
        return None
    last = max(above, key=lambda s: s.sent_at)
    return _capped(
        message,
        channel,
        "priority",
        f"{last.category} {last.template} sent at {last.sent_at:%Y-%m-%d %H:%M}",
        last.sent_at + gap,
    )


def frequency(message: Outgoing, ctx: Context, now: datetime, channel: str | None) -> Decision | None:
    """Marketing messages per customer per channel and across channels; until: when enough leave the window."""
    if not message.marketing:
        return None
    counted = sorted((s for s in _to_customer(ctx) if s.category != "transactional"), key=lambda s: s.sent_at)
    over: list[tuple[str, datetime]] = []
    for name, cap in ctx.settings.caps.items():
        if name != "all" and name != channel:
            continue
        window = timedelta(days=cap.days)
        inside = [s.sent_at for s in counted if s.sent_at > now - window and name in ("all", s.channel)]
        if len(inside) >= cap.count:  # one more fits once all but count-1 of them are out of the window
            over.append(
                (
                    f"{len(inside)} of {cap.count} in {cap.days:g} days ({name})",
                    inside[len(inside) - cap.count] + window,
                )
            )
    if not over:
        return None
    return _capped(message, channel, "frequency", "; ".join(r for r, _ in over), max(u for _, u in over))


def quiet_hours(message: Outgoing, ctx: Context, now: datetime, channel: str | None) -> Decision | None:
    """Marketing waits for the end of the customer's local night (UTC when their timezone is unknown)."""
    start, end = _hhmm(ctx.settings.quiet_start), _hhmm(ctx.settings.quiet_end)
    if not message.marketing or start == end:
        return None
    zone = zone_of(ctx.timezone)
    local = now.replace(tzinfo=UTC).astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    quiet = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not quiet:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    until = datetime.combine(day, end, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    if until <= now:  # a clock change skipped the hour: the next instant is already day
        until = now + timedelta(minutes=1)
    return Decision(
        "defer",
        channel,
        "quiet_hours",
        f"{clock:%H:%M} in {zone.key} is within {ctx.settings.quiet_start}-{ctx.settings.quiet_end}",
        until,
    )


GUARDS: list[tuple[str, Guard]] = [
    ("purpose", purpose),
    ("consent", consent),
    ("preferences", preferences),
    ("global_control", global_control),
    ("duplicate", duplicate),
    ("priority", priority),
    ("frequency", frequency),
    ("quiet_hours", quiet_hours),
]


# -- helpers ---------------------------------------------------------------------------------------


def _to_customer(ctx: Context) -> list[Sent]:
    return [s for s in ctx.recent if s.channel in CHANNELS]


def _capped(message: Outgoing, channel: str | None, guard: str, reason: str, until: datetime) -> Decision:
    if message.when_capped == "drop":
        return Decision("suppress", channel, guard, reason + " (dropped)")
    return Decision("defer", channel, guard, reason, until)


def _hhmm(text: str) -> time:
    hour, minute = map(int, text.split(":"))
    return time(hour, minute)
