"""Recommendations in the operational store: the shop's blocks (a ready-made one is stored once edited)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base


class RecoBlock(Base):
    __tablename__ = "reco_blocks"

    name: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(sa.JSON())  # blocks.Block, without its name
    updated_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
