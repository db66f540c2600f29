"""A copy of the profiles and current consents beside the event log, so that one query joins them.

The operational store stays the truth. `sync` copies what changed since the last copy (customers
updated or seen since, consents changed since), or the given customers only (the live path after a
flush). Merged-away profiles leave the copy.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from boomerang.customers.models import Consent, Customer
from boomerang.db import UnitOfWork
from boomerang.events.log import PROFILE_COLUMNS, EventLog

FIELDS = PROFILE_COLUMNS[1:-1]  # the profile's own and seen fields, in the mirror's order
OVERLAP = timedelta(seconds=5)  # rows committed just before the last copy began are copied again


def sync(uow: UnitOfWork, log: EventLog, *, now: datetime, customer_ids: list[str] | None = None) -> int:
    """Copy changed profiles and consents (or those of `customer_ids`); returns how many profiles were copied."""
    last = log.last_profile_sync() if customer_ids is None else None
    since = last - OVERLAP if last else None
    columns = [
        Customer.id.label("customer_id"),
        *(getattr(Customer, f) for f in FIELDS),
        sa.cast(Customer.attributes, sa.Text).label("attributes"),
        Customer.merged_into_id,
    ]
    query, consents = sa.select(*columns), sa.select(Consent.customer_id, Consent.channel, Consent.granted)
    if customer_ids is not None:
        query = query.where(Customer.id.in_(customer_ids))
        consents = consents.where(Consent.customer_id.in_(customer_ids))
    elif since is not None:
        query = query.where((Customer.updated_at >= since) | (Customer.last_seen_at >= since))
        consents = consents.where(Consent.updated_at >= since)
    with uow.session() as session:
        people = pd.DataFrame(
            session.execute(query).all(), columns=["customer_id", *FIELDS, "attributes", "merged_into_id"]
        )
        granted = pd.DataFrame(session.execute(consents).all(), columns=["customer_id", "channel", "granted"])
    log.write_profiles(people, granted, synced_at=now if customer_ids is None else None)
    return int((people["merged_into_id"].isna()).sum())
