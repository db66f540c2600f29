"""Loyalty in the operational store: points awarded and promo codes issued (by journeys, for now)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base


class LoyaltyEntry(Base):
    """Points awarded and promo codes issued by journeys, until the loyalty programme has its own ledger."""

    __tablename__ = "loyalty_entries"

    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)  # idempotency
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # points, promo_code
    points: Mapped[int | None]
    code: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    discount_percent: Mapped[float | None]
    expires_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(sa.String(100))
    at: Mapped[datetime]
