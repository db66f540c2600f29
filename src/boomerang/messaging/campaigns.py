"""Campaigns: a one-off or scheduled send of a message to a segment, with A/B variants, a holdout,
sending at a local time in each customer's timezone, and throttling.

When its time comes (`start_due`, run by the worker), a campaign takes the segment's members, holds out
`holdout_percent` of them (a stable hash: a `held_out` message each, never sent, so results can be
compared), splits the rest between the variants (stable too) and queues one message per customer;
the dispatcher sends them through the guards, so consent, preferences, caps, quiet hours and the
global control group all hold. `stats` counts each variant's and the holdout's delivery, opens, clicks,
orders and revenue within the attribution window; campaign_results compares them with intervals.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from sqlalchemy.orm import Session

from boomerang.core.buckets import bucket, pick
from boomerang.core.clock import naive_utc
from boomerang.core.errors import Conflict, NotFound, ValidationFailed
from boomerang.core.localtime import next_local_time
from boomerang.core.vocab import CHANNELS, Category
from boomerang.customers.models import Customer
from boomerang.db import in_chunks
from boomerang.messaging import outbox
from boomerang.messaging.models import Campaign, Message, MessageEvent, Template
from boomerang.orders.models import Order
from boomerang.segments.evaluate import Evaluator
from boomerang.segments.models import Segment, SegmentMember

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED = {"new"}  # the dashboard's page for a new campaign
DELIVERED = ("sent", "delivered", "opened", "clicked", "complained", "unsubscribed")


class Variant(BaseModel, extra="forbid"):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,32}$")
    template: str
    weight: float = Field(default=1, gt=0)


class CampaignDefinition(BaseModel, extra="forbid"):
    name: str
    title: str = ""
    segment: str
    template: str | None = None  # one message, or `variants`
    variants: list[Variant] = []
    channels: list[str] = Field(default_factory=lambda: ["email"], min_length=1)
    category: Category = "promotional"
    holdout_percent: float = Field(default=10, ge=0, lt=100)
    send_at: datetime | None = None  # when scheduling without a time: at once
    local_time: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    throttle_per_minute: int | None = Field(default=None, ge=1)
    attribution_days: float = Field(default=5, gt=0, le=90)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.fullmatch(v):
            raise ValueError("lowercase letters, digits and _, starting with a letter, up to 63")
        if v in RESERVED:
            raise ValueError(f"{v!r} is reserved; choose another name")
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        unknown = [c for c in v if c not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r} (one of {', '.join(CHANNELS)})")
        return v

    @model_validator(mode="after")
    def _one_message(self) -> CampaignDefinition:
        if bool(self.template) == bool(self.variants):
            raise ValueError("give either template or variants")
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError("variant names must differ")
        return self

    def arms(self) -> list[Variant]:
        return self.variants or [Variant(name="main", template=self.template or "")]


def parse(raw: Any) -> CampaignDefinition:
    try:
        return CampaignDefinition.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed.of(exc, "campaign") from None


def save(session: Session, raw: Any, *, now: datetime) -> dict[str, Any]:
    """Create a campaign, or change one that has not started."""
    definition = parse(raw)
    errors = (
        [{"field": "segment", "reason": f"no segment {definition.segment!r}"}]
        if session.scalar(sa.select(Segment.id).where(Segment.name == definition.segment)) is None
        else []
    )
    errors += [
        {
            "field": f"variants.{arm.name}.template" if definition.variants else "template",
            "reason": f"no template {arm.template!r}",
        }
        for arm in definition.arms()
        if session.get(Template, arm.template) is None
    ]
    if errors:
        raise ValidationFailed(errors)
    row = session.scalar(sa.select(Campaign).where(Campaign.name == definition.name))
    data = definition.model_dump(mode="json", exclude_defaults=False)
    if row is None:
        row = Campaign(name=definition.name, status="draft", definition=data, created_at=now, updated_at=now)
        session.add(row)
    elif row.status not in ("draft", "scheduled"):
        raise Conflict(f"{definition.name} is {row.status}: it cannot change now", field="name")
    else:
        row.definition, row.updated_at = data, now
    session.flush()
    return _summary(row)


def find(session: Session, name: str) -> Campaign | None:
    return session.scalar(sa.select(Campaign).where(Campaign.name == name))


def _row(session, name: str) -> Campaign:
    row = session.scalar(sa.select(Campaign).where(Campaign.name == name))
    if row is None:
        raise NotFound(f"no campaign {name!r}", field="campaign")
    return row


def _summary(row: Campaign) -> dict[str, Any]:
    d = row.definition
    return {
        "name": row.name,
        "title": d.get("title", ""),
        "status": row.status,
        "segment": d["segment"],
        "variants": [v["name"] for v in d.get("variants") or []] or ["main"],
        "channels": d["channels"],
        "scheduled_for": row.scheduled_for.isoformat() if row.scheduled_for else None,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "audience": row.audience,
    }


def listing(session: Session) -> list[dict[str, Any]]:
    return [_summary(r) for r in session.scalars(sa.select(Campaign).order_by(Campaign.created_at.desc()))]


def get(session: Session, name: str) -> dict[str, Any]:
    row = _row(session, name)
    return {**_summary(row), "definition": row.definition}


def schedule(session: Session, name: str, *, at: datetime | None = None, now: datetime) -> dict[str, Any]:
    """Schedule a draft (at its send_at, the given time, or now); cancel with `cancel`."""
    row = _row(session, name)
    if row.status not in ("draft", "scheduled"):
        raise Conflict(f"{name} is {row.status}", field="campaign")
    when = at or (datetime.fromisoformat(row.definition["send_at"]) if row.definition.get("send_at") else now)
    row.status, row.scheduled_for, row.updated_at = "scheduled", naive_utc(when), now
    session.flush()
    return _summary(row)


def cancel(session: Session, name: str, *, now: datetime) -> dict[str, Any]:
    """Stop a campaign: what is still queued is suppressed."""
    row = _row(session, name)
    session.execute(
        sa.update(Message)
        .where(Message.source == f"campaign:{name}", Message.status == "queued")
        .values(status="suppressed", reason="campaign cancelled")
    )
    row.status, row.updated_at = "cancelled", now
    session.flush()
    return _summary(row)


def start_due(segments: Evaluator, *, now: datetime) -> int:
    """Queue the messages of every scheduled campaign whose time has come; how many campaigns started."""
    with segments.uow.session() as session:
        due = list(
            session.scalars(sa.select(Campaign).where(Campaign.status == "scheduled", Campaign.scheduled_for <= now))
        )
        session.expunge_all()
    for row in due:
        _start(segments, row, now)
    with segments.uow.session() as session:  # a campaign with nothing left to send is sent
        left = sa.select(Message.id).where(
            Message.source == "campaign:" + Campaign.name, Message.status.in_(("queued", "sending"))
        )
        session.execute(
            sa.update(Campaign)
            .where(Campaign.status == "sending", ~sa.exists(left))
            .values(status="sent", updated_at=now)
        )
    return len(due)


def _audience(segments: Evaluator, segment: str) -> list[str]:
    """The segment's members as materialised; computed now only for a segment never computed."""
    with segments.uow.session() as session:
        row = session.scalar(sa.select(Segment).where(Segment.name == segment))
        if row is not None and row.refreshed_at is not None:
            return sorted(
                session.scalars(sa.select(SegmentMember.customer_id).where(SegmentMember.segment_id == row.id))
            )
    return sorted(segments.members(segment)["customer_id"].tolist())


def _start(segments: Evaluator, campaign: Campaign, now: datetime) -> None:
    """The audience is read first, outside the transaction that queues the messages: computing a segment reads
    the log, and SQLite's write lock must not wait on it."""
    name, definition = campaign.name, parse(campaign.definition)
    audience = _audience(segments, definition.segment)
    with segments.uow.session() as session:
        row = session.scalar(sa.select(Campaign).where(Campaign.id == campaign.id).with_for_update())
        if row is None or row.status != "scheduled":
            return  # another worker took it
        zones: dict[str, str | None] = {}
        if definition.local_time:
            zones = dict(
                in_chunks(
                    session, lambda ids: sa.select(Customer.id, Customer.timezone).where(Customer.id.in_(ids)), audience
                )
            )
        arms = definition.arms()
        rows, sent = [], 0
        for cid in audience:
            held = bucket(f"campaign:{name}:holdout:{cid}") * 100 < definition.holdout_percent
            arm = pick(arms, [a.weight for a in arms], f"campaign:{name}:variant:{cid}")
            at = (
                next_local_time(now - timedelta(seconds=1), definition.local_time, zones.get(cid))
                if definition.local_time
                else now
            )
            if definition.throttle_per_minute and not held:
                at += timedelta(minutes=sent // definition.throttle_per_minute)
                sent += 1
            rows.append(
                outbox.message(
                    key=f"campaign:{name}:{cid}",
                    source=f"campaign:{name}",
                    customer_id=cid,
                    channels=definition.channels,
                    template=arm.template,
                    category=definition.category,
                    now=now,
                    send_after=at,
                    variant="holdout" if held else arm.name,
                    held_out="campaign holdout" if held else None,
                )
            )
        outbox.queue(session, rows)
        row.status, row.started_at, row.audience, row.updated_at = "sending", now, len(audience), now


def stats(session: Session, name: str) -> dict[str, Any]:
    """Per variant and for the holdout: customers, message statuses, opens, clicks, orders and revenue
    within the attribution window (counts: the intervals are campaign_results')."""
    row = _row(session, name)
    source = f"campaign:{name}"
    by_status = session.execute(
        sa.select(Message.variant, Message.status, sa.func.count())
        .where(Message.source == source)
        .group_by(Message.variant, Message.status)
    ).all()
    events = session.execute(
        sa.select(Message.variant, MessageEvent.kind, sa.func.count(sa.distinct(MessageEvent.message_id)))
        .join(MessageEvent, MessageEvent.message_id == Message.id)
        .where(Message.source == source)
        .group_by(Message.variant, MessageEvent.kind)
    ).all()
    orders = []
    if row.started_at is not None:
        end = row.started_at + timedelta(days=row.definition.get("attribution_days", 5))
        orders = session.execute(
            sa.select(
                Message.variant,
                sa.func.count(sa.distinct(Order.customer_id)),
                sa.func.count(Order.id),
                sa.func.coalesce(sa.func.sum(Order.total), 0),
            )
            .join(Order, Order.customer_id == Message.customer_id)
            .where(Message.source == source, Order.placed_at >= row.started_at, Order.placed_at < end)
            .group_by(Message.variant)
        ).all()
    summary = _summary(row)
    groups: dict[str, dict[str, Any]] = {}

    def group(name_: str | None) -> dict[str, Any]:
        return groups.setdefault(
            name_ or "main",
            {"customers": 0, "messages": {}, "opened": 0, "clicked": 0, "buyers": 0, "orders": 0, "revenue": 0.0},
        )

    for variant, status, n in by_status:
        g = group(variant)
        g["messages"][status] = n
        g["customers"] += n
    for variant, kind, n in events:
        if kind in ("opened", "clicked", "delivered", "bounced", "unsubscribed", "complained"):
            group(variant)[kind] = n
    for variant, buyers, n_orders, revenue in orders:
        g = group(variant)
        g["buyers"], g["orders"], g["revenue"] = buyers, n_orders, round(float(revenue), 2)
    for g in groups.values():
        reached = sum(n for s, n in g["messages"].items() if s in DELIVERED)
        g["sent"] = reached
        g["open_rate"] = round(g["opened"] / reached, 4) if reached else None
        g["click_rate"] = round(g["clicked"] / reached, 4) if reached else None
        g["conversion_rate"] = round(g["buyers"] / g["customers"], 4) if g["customers"] else None
        g["revenue_per_customer"] = round(g["revenue"] / g["customers"], 2) if g["customers"] else None
    return {**summary, "groups": groups}
