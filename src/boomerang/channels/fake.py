"""The sandbox channel: records every message it is given and delivers nothing.

It is every channel's provider until one is configured, and the tests' stand-in: it writes one
`fake_channel_log` row per message through the dispatcher's session, so a message is recorded
exactly once, with its status, whatever happens to the process.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.channels.base import Outbound, SendResult
from boomerang.core.clock import naive_utc
from boomerang.db import Base


class FakeChannelLog(Base):
    """Every message the sandbox was given. No unique key, on purpose: a second send would show."""

    __tablename__ = "fake_channel_log"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_key: Mapped[str] = mapped_column(sa.String(200))
    channel: Mapped[str] = mapped_column(sa.String(16))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    address: Mapped[str | None] = mapped_column(sa.String(320))
    template: Mapped[str] = mapped_column(sa.String(200))
    at: Mapped[datetime]


class FakeChannel:
    name: ClassVar[str] = "sandbox"
    in_store: ClassVar[bool] = True
    concurrency = 1

    class Config(BaseModel):
        """The sandbox needs no settings."""

    def __init__(self, config: Config | None = None, ctx=None) -> None:
        self.session = ctx.session if ctx is not None else None
        self.sent: list[Outbound] = []

    def send(self, message: Outbound) -> SendResult:
        self.sent.append(message)
        if self.session is not None:
            self.session.add(
                FakeChannelLog(
                    message_key=message.key,
                    channel=message.channel,
                    customer_id=message.customer_id,
                    address=message.to,
                    template=str(message.data.get("template", "")),
                    at=naive_utc(datetime.now().astimezone()),
                )
            )
            self.session.flush()
        return SendResult.sent()

    def close(self) -> None:
        pass
