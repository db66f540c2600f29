"""API keys (stored as hashes only), dashboard users (people who log in, with a role), their sessions and
wrong passwords."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base, BigInt

KEY_KINDS = ("write", "secret", "identity")  # identity: signs user ids for identity verification
ROLES = ("viewer", "marketer", "admin")  # each may do what the ones before it may


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    name: Mapped[str] = mapped_column(sa.String(255))
    prefix: Mapped[str] = mapped_column(sa.String(16))  # shown in listings so people can tell keys apart
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    sealed: Mapped[str | None] = mapped_column(sa.Text)  # an identity key, encrypted: checking a signature needs it
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


class DashboardSession(Base):
    """A dashboard login: the browser keeps a random token, the store only its SHA-256 hash."""

    __tablename__ = "dashboard_sessions"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the absolute lifetime; idleness ends it sooner
    ended_at: Mapped[datetime | None]  # logged out, disabled, or the password changed


class LoginFailure(Base):
    """One wrong password, counted against a username and an address (both as keyed hashes, never in clear)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(64), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
