"""Profile fields from Segment-style traits, consents and their history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import ValidationFailed
from boomerang.core.vocab import CHANNELS
from boomerang.customers import addresses
from boomerang.customers.models import Consent, ConsentChange, Customer

# Segment trait names (and a few common spellings) -> profile columns.
TRAIT_COLUMNS = {
    "email": "email",
    "phone": "phone",
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "birthday": "birthday",
    "birthdate": "birthday",
    "city": "city",
    "country": "country",
    "timezone": "timezone",
    "locale": "locale",
    "telegramChatId": "telegram_chat_id",
    "telegram_chat_id": "telegram_chat_id",
}
IGNORED_TRAITS = {"consents", "address", "name", "createdAt", "created_at", "id", "userId", "anonymousId"}


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list, bool)):
        raise ValidationFailed([{"field": field, "reason": "must be a string"}])
    return str(value).strip() or None


def _birthday(value: Any, field: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value if not isinstance(value, datetime) else value.date()
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValidationFailed([{"field": field, "reason": f"'{value}' is not a date (YYYY-MM-DD)"}]) from None


def profile_changes(traits: dict[str, Any], *, prefix: str = "traits") -> tuple[dict[str, Any], dict[str, Any]]:
    """Split traits into profile columns and custom attributes, normalising known ones (emails lower-cased,
    phones in E.164). A trait sent as null clears its field (a column None, an attribute None); an empty
    string is no value, and changes nothing."""
    columns: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    fields: dict[str, str] = {}  # column -> the trait it came from, to name it in an error
    for key, value in traits.items():
        field = f"{prefix}.{key}"
        if value == "":
            continue
        if key in TRAIT_COLUMNS:
            column = TRAIT_COLUMNS[key]
            columns[column] = _birthday(value, field) if column == "birthday" else _text(value, field)
            fields[column] = field
        elif key == "name" and isinstance(value, str) and value.strip():
            first, _, last = value.strip().partition(" ")
            columns.setdefault("first_name", first)
            if last:
                columns.setdefault("last_name", last)
        elif key == "address" and isinstance(value, dict):
            for part in ("city", "country"):
                if part in value and value[part] != "":
                    columns[part] = _text(value[part], f"{field}.{part}")
        elif key not in IGNORED_TRAITS:
            attributes[key] = value
    if columns.get("email"):
        columns["email"] = addresses.email(columns["email"], fields["email"])
    if columns.get("phone"):
        columns["phone"] = addresses.phone(columns["phone"], fields["phone"], region=columns.get("country"))
    return columns, attributes


def consent_changes(traits: dict[str, Any], *, prefix: str = "traits") -> dict[str, bool]:
    """`traits.consents = {"email": true, "sms": false}`: Boomerang's convention for consents in identify."""
    consents = traits.get("consents")
    if consents is None:
        return {}
    if not isinstance(consents, dict):
        raise ValidationFailed([{"field": f"{prefix}.consents", "reason": "must be an object of channel: true|false"}])
    out = {}
    for channel, granted in consents.items():
        if channel not in CHANNELS:
            raise ValidationFailed(
                [{"field": f"{prefix}.consents.{channel}", "reason": f"unknown channel (one of {', '.join(CHANNELS)})"}]
            )
        if not isinstance(granted, bool):
            raise ValidationFailed([{"field": f"{prefix}.consents.{channel}", "reason": "must be true or false"}])
        out[channel] = granted
    return out


def apply_profile(customer: Customer, columns: dict[str, Any], attributes: dict[str, Any], *, now: datetime) -> None:
    """Write the values over the profile (None clears a field); attributes are merged key by key, None removes
    one."""
    for column, value in columns.items():
        setattr(customer, column, value)
    if attributes:
        merged = {**(customer.attributes or {}), **attributes}
        customer.attributes = {key: value for key, value in merged.items() if value is not None}
    customer.updated_at = now


def has_consent(session: Session, customer: Customer, channel: str) -> bool:
    """Whether the customer has answered for `channel` (granted or refused)."""
    if sa.inspect(customer).pending:
        return False
    return session.get(Consent, (customer.id, channel)) is not None


def set_consent(
    session: Session, customer: Customer, channel: str, granted: bool, *, source: str, at: datetime
) -> bool:
    """Record a consent; returns False when it did not change (no history row then)."""
    if channel not in CHANNELS:
        raise ValidationFailed([{"field": "channel", "reason": f"unknown channel (one of {', '.join(CHANNELS)})"}])
    if sa.inspect(customer).pending:
        session.flush()  # no relationship orders consents after a new customer in the unit of work
    current = session.get(Consent, (customer.id, channel))
    if current is not None and current.granted == granted:
        return False
    if current is None:
        session.add(Consent(customer_id=customer.id, channel=channel, granted=granted, source=source, updated_at=at))
    else:
        current.granted, current.source, current.updated_at = granted, source, at
    session.add(ConsentChange(customer_id=customer.id, channel=channel, granted=granted, source=source, at=at))
    return True
