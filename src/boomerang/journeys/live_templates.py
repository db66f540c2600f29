"""A template that live journeys or campaigns send must render for the shop's real customers before it is saved,
and is not deleted: otherwise every message it is asked for fails when it leaves. A template nothing live uses may be saved broken
(a draft being written); its preview still says what breaks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import MessagingSettings
from boomerang.core.errors import Conflict, ValidationFailed
from boomerang.customers.models import Customer
from boomerang.journeys.models import Journey
from boomerang.messaging import delivery, service
from boomerang.messaging.models import Campaign, Template

SAMPLE = 20  # the shop's most recently seen customers a template is rendered for
LIVE_CAMPAIGN = ("scheduled", "sending")


def _names(data: Any) -> set[str]:
    """Every template a definition names (a send node's, an approval's choices, a campaign's variants)."""
    if isinstance(data, dict):
        found = {v for k, v in data.items() if k == "template" and isinstance(v, str)}
        return found.union(*(_names(v) for v in data.values()))
    if isinstance(data, list):
        return set().union(*(_names(v) for v in data))
    return set()


def live_users(session: Session, template: str) -> list[str]:
    """The active journeys and the scheduled or sending campaigns that send `template`, in words."""
    journeys = session.execute(sa.select(Journey.name, Journey.definition).where(Journey.status == "active")).all()
    campaigns = session.execute(
        sa.select(Campaign.name, Campaign.status, Campaign.definition).where(Campaign.status.in_(LIVE_CAMPAIGN))
    ).all()
    return [f"journey {name} (active)" for name, definition in journeys if template in _names(definition)] + [
        f"campaign {name} ({status})" for name, status, definition in campaigns if template in _names(definition)
    ]


def render_problems(
    session: Session, shop: MessagingSettings, definition: dict[str, Any], *, now: datetime, sample: int = SAMPLE
) -> list[dict[str, str]]:
    """What breaks when `definition` is rendered for the shop's latest customers on each channel: one problem per
    channel (the first customer it breaks for)."""
    customers = session.scalars(
        sa.select(Customer.id)
        .where(Customer.merged_into_id.is_(None))
        .order_by(Customer.last_seen_at.desc().nulls_last(), Customer.id)
        .limit(sample)
    ).all()
    problems: dict[str, dict[str, str]] = {}
    for customer_id in customers:
        rendered = delivery.preview(session, shop, definition, customer_id=customer_id, now=now)
        for channel, out in rendered["channels"].items():
            if "error" in out and channel not in problems:
                problems[channel] = {"channel": channel, "customer": customer_id, "reason": out["error"]}
    return list(problems.values())


def check(session: Session, shop: MessagingSettings, definition: dict[str, Any], *, now: datetime) -> None:
    """Refuse (ValidationFailed naming the channel) a template that live journeys or campaigns send and that does
    not render for some of the shop's customers."""
    users = live_users(session, str(definition.get("name", "")))
    if not users:
        return
    problems = render_problems(session, shop, definition, now=now)
    if problems:
        raise ValidationFailed(
            [
                {
                    "field": f"locales.{p['channel']}",
                    "reason": f"does not render for customer {p['customer']}: {p['reason']}; "
                    f"{', '.join(users)} sends this template, so it is not saved",
                }
                for p in problems
            ]
        )


def save(session: Session, shop: MessagingSettings, definition: Any, *, now: datetime) -> Template:
    """Save a template (messaging.service.save) once it renders for the customers of what sends it live."""
    check(session, shop, service.validate(definition), now=now)
    return service.save(session, definition, now=now)


def delete(session: Session, name: str) -> None:
    """Delete a template (messaging.service.delete) unless live journeys or campaigns send it (Conflict)."""
    users = live_users(session, name)
    if users:
        raise Conflict(f"{', '.join(users)} sends {name}: pause or change it first", field="template")
    service.delete(session, name)
