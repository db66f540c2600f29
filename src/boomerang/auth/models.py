"""API keys (stored as hashes only) and dashboard users (people who log in, with a role)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base

KEY_KINDS = ("write", "secret")
ROLES = ("viewer", "marketer", "admin")  # each may do what the ones before it may


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    name: Mapped[str] = mapped_column(sa.String(255))
    prefix: Mapped[str] = mapped_column(sa.String(16))  # shown in listings so people can tell keys apart
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))  # scrypt$n$r$p$salt$hash
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        return self.disabled_at is None
