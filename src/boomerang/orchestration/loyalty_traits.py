"""Loyalty's traits (tier, points, lifetime points, expiring points, achievements: `loyalty.traits`) copied beside
the event log, where segment rules read them; the scheduled round does it before segments are refreshed."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pyarrow as pa

from boomerang.config import LoyaltySettings
from boomerang.db import UnitOfWork
from boomerang.events.log import EventLog
from boomerang.loyalty import traits

KIND = "loyalty"
TYPES = {"string": pa.string(), "number": pa.int64(), "list": pa.list_(pa.string())}
SCHEMA = pa.schema([("customer_id", pa.string())] + [(name, TYPES[kind]) for name, kind in traits.COLUMNS.items()])


def store(uow: UnitOfWork, log: EventLog, *, now: datetime, settings: LoyaltySettings) -> int:
    """Replace the stored loyalty traits with the programme's state as of `now`; returns how many customers."""
    with uow.session() as session:
        rows = traits.rows(session, now=now, settings=settings)
    return log.save_traits(KIND, pd.DataFrame(rows, columns=SCHEMA.names), schema=SCHEMA)
