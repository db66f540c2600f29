"""A copy of the profiles and current consents beside the event log, so that one query joins them.

The operational store stays the truth. `sync` copies what changed since the last copy (customers
updated or seen since, consents changed since), or the given customers only (the live path after a
flush). Merged-away profiles leave the copy.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from boomerang.bootstrap import Workspace
from boomerang.core.clock import naive_utc
from boomerang.customers.models import Consent, Customer
from boomerang.segments.definition import RULE_FIELDS

FIELDS = [f for f in RULE_FIELDS]
DDL = [
    "CREATE TABLE IF NOT EXISTS profiles (customer_id VARCHAR PRIMARY KEY, external_id VARCHAR, email VARCHAR, "
    "phone VARCHAR, telegram_chat_id VARCHAR, first_name VARCHAR, last_name VARCHAR, city VARCHAR, country VARCHAR, "
    "timezone VARCHAR, locale VARCHAR, birthday DATE, first_seen_at TIMESTAMP, last_seen_at TIMESTAMP, "
    "created_at TIMESTAMP, attributes JSON)",
    "CREATE TABLE IF NOT EXISTS profile_consents (customer_id VARCHAR, channel VARCHAR, granted BOOLEAN, "
    "PRIMARY KEY (customer_id, channel))",
    "CREATE TABLE IF NOT EXISTS profile_sync (synced_at TIMESTAMP)",
]
OVERLAP = timedelta(seconds=5)  # rows committed just before the last copy began are copied again


def sync(ws: Workspace, customer_ids: list[str] | None = None) -> int:
    """Copy changed profiles and consents (or those of `customer_ids`); returns how many profiles were copied."""
    started = naive_utc(ws.clock.now())
    with ws.log.connect() as conn:
        for statement in DDL:
            conn.execute(statement)
        row = conn.execute("SELECT max(synced_at) FROM profile_sync").fetchone()
    since = row[0] - OVERLAP if row and row[0] else None
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
    with ws.engine.connect() as sql:
        people = pd.DataFrame(
            sql.execute(query).all(), columns=["customer_id", *FIELDS, "attributes", "merged_into_id"]
        )
        granted = pd.DataFrame(sql.execute(consents).all(), columns=["customer_id", "channel", "granted"])
    people = people.astype(
        {
            "birthday": "datetime64[s]",
            "first_seen_at": "datetime64[us]",
            "last_seen_at": "datetime64[us]",
            "created_at": "datetime64[us]",
        }
    )
    with ws.log.connect() as conn:
        conn.execute("BEGIN TRANSACTION")
        conn.register("incoming_people", pa.Table.from_pandas(people, preserve_index=False))
        conn.register(
            "incoming_consents", pa.Table.from_pandas(granted.astype({"granted": bool}), preserve_index=False)
        )
        conn.execute("DELETE FROM profiles WHERE customer_id IN (SELECT customer_id FROM incoming_people)")
        conn.execute(
            f"INSERT INTO profiles SELECT customer_id, {', '.join(FIELDS[:10])}, CAST(birthday AS DATE), "
            "first_seen_at, last_seen_at, created_at, CAST(coalesce(attributes, '{}') AS JSON) "
            "FROM incoming_people WHERE merged_into_id IS NULL"
        )
        conn.execute(
            "DELETE FROM profile_consents WHERE customer_id IN (SELECT customer_id FROM incoming_consents) "
            "OR customer_id IN (SELECT customer_id FROM incoming_people WHERE merged_into_id IS NOT NULL)"
        )
        conn.execute("INSERT INTO profile_consents SELECT customer_id, channel, granted FROM incoming_consents")
        if customer_ids is None:
            conn.execute("DELETE FROM profile_sync")
            conn.execute("INSERT INTO profile_sync VALUES (?)", [started])
        conn.execute("COMMIT")
        conn.unregister("incoming_people")
        conn.unregister("incoming_consents")
    return int((people["merged_into_id"].isna()).sum())


def last_sync(ws: Workspace) -> datetime | None:
    with ws.log.connect() as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'profile_sync'"
        ).fetchone()[0]
        return conn.execute("SELECT max(synced_at) FROM profile_sync").fetchone()[0] if found else None
