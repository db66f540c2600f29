"""Customer profiles, the identities that resolve to them, consents and merges; what privacy requests leave:
suppressed addresses and the audit log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.customers import search_keys
from boomerang.db import Base

IDENTITY_KINDS = ("user", "anonymous", "email", "phone", "telegram", "device")


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(320), index=True)
    phone: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    telegram_chat_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    first_name: Mapped[str | None] = mapped_column(sa.String(255))
    last_name: Mapped[str | None] = mapped_column(sa.String(255))
    birthday: Mapped[date | None] = mapped_column(sa.Date())
    city: Mapped[str | None] = mapped_column(sa.String(255))
    country: Mapped[str | None] = mapped_column(sa.String(255))
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    locale: Mapped[str | None] = mapped_column(sa.String(35))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Folded copies for search (customers.search_keys writes them with every name or phone)
    first_name_key: Mapped[str | None] = mapped_column(sa.String(255))
    last_name_key: Mapped[str | None] = mapped_column(sa.String(255))
    phone_key: Mapped[str | None] = mapped_column(sa.String(32))
    merged_into_id: Mapped[str | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    first_seen_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def identified(self) -> bool:
        return any((self.external_id, self.email, self.phone, self.telegram_chat_id))


search_keys.install()

IDENTIFIED = sa.or_(
    Customer.external_id.is_not(None),
    Customer.email.is_not(None),
    Customer.phone.is_not(None),
    Customer.telegram_chat_id.is_not(None),
)


class Identity(Base):
    """One way of recognising a customer: (kind, value) resolves to exactly one profile."""

    __tablename__ = "identities"

    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    created_at: Mapped[datetime]


class Consent(Base):
    """The current consent of a customer for one channel."""

    __tablename__ = "consents"

    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(sa.String(64))
    updated_at: Mapped[datetime]


class ConsentChange(Base):
    """Append-only history of consents: who granted or withdrew what, when, from where."""

    __tablename__ = "consent_changes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime]


class Merge(Base):
    """A profile folded into another; the event log applies it to its own rows on flush."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    from_customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"))
    into_customer_id: Mapped[str] = mapped_column(sa.ForeignKey("customers.id"))
    reason: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime]
    applied_to_log: Mapped[bool] = mapped_column(default=False, index=True)


class SuppressedAddress(Base):
    """An erased customer's email or phone, as a keyed hash of its normalised form (core.privacy): an old
    import or a later event does not put it back on a profile."""

    __tablename__ = "suppressed_addresses"

    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)  # email, phone
    digest: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    created_at: Mapped[datetime]


class AuditEntry(Base):
    """Who exported or erased which customer's data, when, and what it covered."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_customer", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(sa.String(128))  # key:<api key id>, user:<username>, cli
    action: Mapped[str] = mapped_column(sa.String(32))  # export, erase
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # what was exported or erased, counted
