"""The channel registry: an adapter per channel, built from its stored settings and kept while they hold.

Network adapters are built once per configuration and reused across dispatch rounds (an SMTP
pool stays open); in-store adapters (in-app, sandbox) are built per transaction with its session.
A per-channel rate limit (`rate_per_second` in a provider's configuration) paces sends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from boomerang.channels import config as settings
from boomerang.channels.base import Channel, ChannelUnavailable
from boomerang.channels.models import ChannelSetting
from boomerang.core.clock import Clock
from boomerang.core.errors import BoomerangError
from boomerang.db import UnitOfWork


@dataclass(frozen=True)
class ChannelContext:
    """What an adapter may use besides its configuration."""

    uow: UnitOfWork  # for adapters that read the store on their own (web push's subscriptions)
    secret: bytes  # the workspace secret, for keys derived from it
    clock: Clock
    session: Session | None = None  # in-store adapters write through it


class Pace:
    """At most `rate` sends a second (a token bucket one second deep), shared by threads."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.at = rate, rate, time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens < 1:
                time.sleep((1 - self.tokens) / self.rate)
                self.tokens, self.at = 1, time.monotonic()
            self.tokens -= 1


class Registry:
    def __init__(self, uow: UnitOfWork, *, secret: bytes, clock: Clock) -> None:
        self.uow, self.secret, self.clock = uow, secret, clock
        self._built: dict[str, tuple[Any, Channel, Pace | None]] = {}
        self._overrides: dict[str, Callable[[ChannelContext], Channel]] = {}
        self._lock = threading.Lock()

    def override(self, channel: str, factory: Callable[[ChannelContext], Channel] | None) -> None:
        """Use `factory` for `channel` instead of its settings (tests, simulations); None restores them."""
        if factory is None:
            self._overrides.pop(channel, None)
        else:
            self._overrides[channel] = factory

    def get(self, session: Session, channel: str) -> Channel:
        """The adapter for `channel`; ChannelUnavailable when it is disabled or its settings are broken."""
        if channel in self._overrides:
            return self._overrides[channel](self._context(session))
        row = session.get(ChannelSetting, channel)
        stamp = (row.provider, row.updated_at, row.enabled) if row else None
        with self._lock:
            built = self._built.get(channel)
            if built and built[0] == stamp:
                return built[1]
        try:
            provider, config, enabled = settings.load(session, channel, secret=self.secret)
        except BoomerangError as exc:
            raise ChannelUnavailable(f"{channel} settings: {exc.message}") from None
        if not enabled:
            raise ChannelUnavailable(f"{channel} is disabled")
        cls = settings.adapter_class(channel, provider)
        if cls.in_store:
            return cls(config, self._context(session))
        adapter = cls(config, self._context(None))
        rate = getattr(config, "rate_per_second", None)
        with self._lock:
            old = self._built.pop(channel, None)
            self._built[channel] = (stamp, adapter, Pace(rate) if rate else None)
        if old:
            old[1].close()
        return adapter

    def _context(self, session: Session | None) -> ChannelContext:
        return ChannelContext(self.uow, self.secret, self.clock, session)

    def pace(self, channel: str) -> None:
        """Wait, if need be, so that `channel` keeps to its provider's rate limit."""
        built = self._built.get(channel)
        if built and built[2]:
            built[2].wait()

    def close(self) -> None:
        with self._lock:
            built, self._built = self._built, {}
        for _, adapter, _ in built.values():
            adapter.close()
