"""Merges: how a profile folded into another is followed, and how every domain joins a merge.

A merged-away profile stays as a pointer (`merged_into_id`); `live_ids` and `canonical` are the one
way to follow such pointers to the live profile. When a merge happens, each domain that keeps rows
per customer moves them through the hook it registers (`on_merge`): orders, subscriptions and the
in-app inbox, messages and preferences, journey instances, segment memberships, loyalty entries.
The composition root registers them all; a hook runs in the merge's transaction and flushes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.customers.models import Customer
from boomerang.db import among, in_chunks

MergeHook = Callable[[Session, str, str, datetime], None]  # (session, from id, into id, now)
HOOKS: list[MergeHook] = []


def on_merge(*hooks: MergeHook) -> None:
    """Have `hooks` run on every merge (once each, in order)."""
    HOOKS.extend(h for h in hooks if h not in HOOKS)


def follow(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """Let every domain move what it keeps of `from_id` to `into_id`."""
    for hook in HOOKS:
        hook(session, from_id, into_id, now)


def move_rows(session: Session, column: sa.Column, from_id: str, into_id: str) -> None:
    """The simplest hook's body: the rows keyed by `column` now belong to `into_id`."""
    session.execute(sa.update(column.table).where(column == from_id).values({column.key: into_id}))


def final_targets(pointers: dict[str, str]) -> dict[str, str]:
    """Where each profile merged away (from -> into) ended up, following chains (a into b, then b into c)."""
    out = {}
    for start in pointers:
        target, hops = start, 0
        while target in pointers and hops <= len(pointers):
            target, hops = pointers[target], hops + 1
        out[start] = target
    return out


def live_ids(session: Session, customer_ids: Iterable[str]) -> dict[str, str]:
    """The live profile's id for each id (itself when not merged; ids not found are left out)."""
    pointers: dict[str, str | None] = {}
    todo = set(customer_ids)
    while todo:
        rows = in_chunks(
            session,
            lambda ids: sa.select(Customer.id, Customer.merged_into_id).where(among(session, Customer.id, ids)),
            todo,
        )
        pointers.update(rows)
        todo = {into for _, into in rows if into and into not in pointers}
    targets = final_targets({cid: into for cid, into in pointers.items() if into})
    found = {cid: targets.get(cid, cid) for cid in customer_ids}
    return {cid: live for cid, live in found.items() if live in pointers}


def canonical(session: Session, customer_id: str) -> Customer | None:
    """The live profile for an id, following merges; None for an unknown id."""
    live = live_ids(session, [customer_id]).get(customer_id)
    return session.get(Customer, live) if live else None
