"""Customers' local time: their timezone, and the next moment their clock shows a given time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = ZoneInfo("UTC")


def zone_of(name: str | None) -> ZoneInfo:
    """The customer's timezone; UTC when unknown or not a valid IANA name."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones such as "America"
        return UTC


def next_local_time(now: datetime, hhmm: str, timezone: str | None) -> datetime:
    """The next moment (naive UTC, after `now`) when the customer's clock shows `hhmm`."""
    zone = zone_of(timezone)
    local = now.replace(tzinfo=UTC).astimezone(zone)
    hour, minute = map(int, hhmm.split(":"))
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target = (target + timedelta(days=1)).replace(hour=hour, minute=minute)
    return target.astimezone(UTC).replace(tzinfo=None)
