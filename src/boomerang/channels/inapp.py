"""The in-app inbox: a message is a row the customer's app fetches (`/v1/inbox`), written in the
dispatcher's transaction, so it appears exactly once; it expires after `expires_days`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

import sqlalchemy as sa
from pydantic import BaseModel, Field

from boomerang.channels.base import Outbound, SendResult
from boomerang.channels.models import InboxItem
from boomerang.core.clock import naive_utc


class InAppChannel:
    name: ClassVar[str] = "inapp"
    in_store: ClassVar[bool] = True
    concurrency = 1

    class Config(BaseModel):
        expires_days: int = Field(default=30, ge=1, le=365)

    def __init__(self, config: Config, ctx) -> None:
        self.config, self.session = config, ctx.session

    def send(self, message: Outbound) -> SendResult:
        now = naive_utc(datetime.now().astimezone())
        found = self.session.scalar(sa.select(InboxItem.id).where(InboxItem.message_key == message.key))
        if found is None:
            self.session.add(
                InboxItem(
                    message_key=message.key,
                    message_id=message.message_id,
                    customer_id=message.customer_id,
                    title=(message.subject or "")[:255],
                    body=message.text,
                    url=message.url,
                    created_at=now,
                    expires_at=now + timedelta(days=self.config.expires_days),
                )
            )
            self.session.flush()
            found = self.session.scalar(sa.select(InboxItem.id).where(InboxItem.message_key == message.key))
        return SendResult.sent(f"inbox:{found}")

    def close(self) -> None:
        pass
