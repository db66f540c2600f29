"""The orchestration's own table: the monthly review's sends, one row per month, channel and recipient."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base


class ReviewSend(Base):
    """A monthly review to one owner on one channel: written (`sending`) and committed before it leaves, so that
    a crash or a second worker never sends it twice; then `sent` or `failed`."""

    __tablename__ = "review_sends"

    month: Mapped[str] = mapped_column(sa.String(7), primary_key=True)  # YYYY-MM
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    recipient: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # a hash: addresses are not kept here
    status: Mapped[str] = mapped_column(sa.String(16))
    error: Mapped[str | None] = mapped_column(sa.Text())
    provider_id: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
