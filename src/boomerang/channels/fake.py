"""The sandbox channel: records every message it is given and delivers nothing.

It is every channel's provider until one is configured, and the tests' stand-in: it writes one
`fake_channel_log` row per message through the dispatcher's session, so a message is recorded
exactly once, with its status, whatever happens to the process.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel

from boomerang.channels.base import Outbound, SendResult
from boomerang.channels.models import FakeChannelLog
from boomerang.core.clock import naive_utc


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
