"""Promo codes: pools, unguessable codes made in bulk, uploaded pools, personal codes and their stock.

A code is drawn with `secrets` from a readable alphabet (no 0/O, 1/I/L), at least `MIN_LENGTH` symbols: 50 bits or
more, so guessing one of a million live codes takes some 2^30 tries. Bulk generation draws a chunk of random bytes
at once (rejection-sampled into the alphabet with numpy) and inserts it in one executemany, ON CONFLICT DO NOTHING;
the rare collision is made up by drawing again until the pool has grown by the count asked. Validation and
redemption (hold, confirm, cancel, orders' coupons) are in `codes_redeem`. Services flush; the caller commits."""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import Conflict, NotFound, ValidationFailed
from boomerang.db import executemany, insert_ignore
from boomerang.loyalty.models import (
    DISCOUNT_KINDS,
    POOL_KINDS,
    REDEMPTION_STATES,
    PromoCode,
    PromoPool,
    PromoRedemption,
)

log = logging.getLogger(__name__)

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
MIN_LENGTH = math.ceil(50 / math.log2(len(ALPHABET)))  # 11 symbols: 54.5 bits
DEFAULT_LENGTH = 12
MAX_LENGTH = 24
CHUNK = 50_000  # codes per insert
MAX_COUNT = 10_000_000  # per call
JOURNEYS = "journeys"  # the pool of the codes journeys issue
POOLS, CODES = PromoPool.__table__, PromoCode.__table__
_REDEEMED = PromoRedemption.__table__
_SYMBOLS = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
_ACCEPT = 256 - 256 % len(ALPHABET)  # bytes at or above are dropped, so every symbol is equally likely
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_PREFIX = re.compile(r"^[A-Z0-9-]{0,16}$")
_UPLOADED = re.compile(r"^[A-Z0-9][A-Z0-9_-]{2,39}$")
_INSERT = {name: insert_ignore(name, CODES) for name in ("sqlite", "postgresql")}


def random_codes(count: int, *, length: int = DEFAULT_LENGTH, prefix: str = "") -> list[str]:
    """`count` random codes (repeats possible, if astronomically rare), `prefix` + `length` symbols each."""
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValidationFailed([{"field": "length", "reason": f"must be {MIN_LENGTH} to {MAX_LENGTH} symbols"}])
    need, parts, have = count * length, [], 0
    while have < need:
        raw = np.frombuffer(secrets.token_bytes(int((need - have) * 1.04) + 64), dtype=np.uint8)
        kept = raw[raw < _ACCEPT]
        parts.append(kept)
        have += len(kept)
    symbols = _SYMBOLS[np.concatenate(parts)[:need] % len(ALPHABET)] if need else np.empty(0, np.uint8)
    bodies = symbols.view(f"S{length}").astype(f"U{length}").tolist()
    return [prefix + body for body in bodies] if prefix else bodies


def normal(code: Any) -> str:
    """A code as stored: trimmed, upper case; ValidationFailed for what cannot be one."""
    if not isinstance(code, str) or not 0 < len(code.strip()) <= 40:
        raise ValidationFailed([{"field": "code", "reason": "must be a code of 1 to 40 characters"}])
    return code.strip().upper()


# -- pools ---------------------------------------------------------------------------------------------------------


def create_pool(session: Session, spec: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """A new pool (409 if the name is taken). `spec`: name, kind, discount_kind, value, min_order, uses_per_code,
    prefix, valid_from, valid_until, low_stock_alert."""
    row = _pool_row(spec, now)
    if session.scalar(sa.select(POOLS.c.id).where(POOLS.c.name == row["name"])) is not None:
        raise Conflict(f"a pool named '{row['name']}' exists already", field="name")
    session.execute(sa.insert(POOLS), [row])
    return show_pool(session, row["name"], now=now)


def _pool_row(spec: dict[str, Any], now: datetime) -> dict[str, Any]:
    errors = []
    name, kind = spec.get("name"), spec.get("kind", "generated")
    discount, value = spec.get("discount_kind", "percent"), spec.get("value", 0)
    if not isinstance(name, str) or not _NAME.match(name):
        errors.append({"field": "name", "reason": "must be 1 to 100 letters, digits, '_', '.' or '-'"})
    if kind not in POOL_KINDS:
        errors.append({"field": "kind", "reason": f"must be one of {', '.join(POOL_KINDS)}"})
    if discount not in DISCOUNT_KINDS:
        errors.append({"field": "discount_kind", "reason": f"must be one of {', '.join(DISCOUNT_KINDS)}"})
    if not _number(value) or value < 0 or (discount == "percent" and not 0 < value <= 100):
        errors.append({"field": "value", "reason": "must be a positive amount (a percent: above 0, at most 100)"})
    elif discount in ("fixed", "points_multiplier") and value <= 0:
        errors.append({"field": "value", "reason": "must be above 0"})
    min_order, uses = spec.get("min_order", 0) or 0, spec.get("uses_per_code", 1)
    if not _number(min_order) or min_order < 0:
        errors.append({"field": "min_order", "reason": "must be an amount of zero or more"})
    if isinstance(uses, bool) or not isinstance(uses, int) or not 1 <= uses <= 1_000_000:
        errors.append({"field": "uses_per_code", "reason": "must be a whole number from 1 to 1000000"})
    prefix, alert = (spec.get("prefix") or "").upper(), spec.get("low_stock_alert")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        errors.append({"field": "prefix", "reason": "must be at most 16 letters, digits or '-'"})
    if alert is not None and (isinstance(alert, bool) or not isinstance(alert, int) or alert < 0):
        errors.append({"field": "low_stock_alert", "reason": "must be a whole number of codes, or null"})
    start, until = spec.get("valid_from"), spec.get("valid_until")
    if start and until and until <= start:
        errors.append({"field": "valid_until", "reason": "must be after valid_from"})
    if errors:
        raise ValidationFailed(errors)
    return {
        "name": name,
        "kind": kind,
        "discount_kind": discount,
        "value": float(value),
        "min_order": float(min_order),
        "uses_per_code": uses,
        "prefix": prefix,
        "valid_from": start,
        "valid_until": until,
        "low_stock_alert": alert,
        "warned_at": None,
        "created_at": now,
    }


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def pool(session: Session, name: str) -> sa.Row:
    found = session.execute(sa.select(POOLS).where(POOLS.c.name == name)).first()
    if found is None:
        raise NotFound(f"no pool named '{name}'", field="pool")
    return found


def _counts(session: Session, pool_ids: list[int]) -> dict[int, dict[str, int]]:
    unused = sa.func.sum(sa.case((CODES.c.uses == 0, 1), else_=0))
    query = (
        sa.select(
            CODES.c.pool_id, sa.func.count(), unused, sa.func.sum(CODES.c.uses), sa.func.count(CODES.c.customer_id)
        )
        .where(CODES.c.pool_id.in_(pool_ids))
        .group_by(CODES.c.pool_id)
    )
    return {
        pid: {"codes": n, "unused": int(u or 0), "uses": int(used or 0), "personal": p}
        for pid, n, u, used, p in session.execute(query)
    }


def _described(session: Session, rows: list[sa.Row], now: datetime) -> list[dict[str, Any]]:
    counts = _counts(session, [r.id for r in rows]) if rows else {}
    out = []
    for row in rows:
        mine = counts.get(row.id, {"codes": 0, "unused": 0, "uses": 0, "personal": 0})
        low = row.low_stock_alert is not None and mine["unused"] < row.low_stock_alert
        if low and row.warned_at is None:
            log.warning("promo pool %s: %d unused codes left, below %d", row.name, mine["unused"], row.low_stock_alert)
        if low != (row.warned_at is not None):  # warn once per fall below the mark
            session.execute(sa.update(POOLS).where(POOLS.c.id == row.id).values(warned_at=now if low else None))
        data = {k: v for k, v in row._mapping.items() if k not in ("id", "warned_at")}
        out.append(data | mine | {"low_stock": low})
    return out


def list_pools(session: Session, *, now: datetime) -> list[dict[str, Any]]:
    """Every pool with its counts (codes, unused, uses, personal) and whether its stock is low."""
    return _described(session, session.execute(sa.select(POOLS).order_by(POOLS.c.name)).all(), now)


def show_pool(session: Session, name: str, *, now: datetime) -> dict[str, Any]:
    return _described(session, [pool(session, name)], now)[0]


# -- filling pools -------------------------------------------------------------------------------------------------


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    conn = session.connection()
    executemany(session, _INSERT[conn.dialect.name], rows)


def _size(session: Session, pool_id: int) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(CODES).where(CODES.c.pool_id == pool_id))


def generate(
    session: Session,
    name: str,
    count: Any,
    *,
    now: datetime,
    length: int = DEFAULT_LENGTH,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """`count` new codes in the pool, `CHUNK` an insert; `progress(n)` after each. Returns the pool's counts."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ValidationFailed([{"field": "count", "reason": f"must be a whole number from 1 to {MAX_COUNT}"}])
    found = pool(session, name)
    if found.kind != "generated":
        raise Conflict(f"pool '{name}' holds uploaded codes: upload more instead", field="pool")
    target = _size(session, found.id) + count
    left = count
    while left > 0:
        for start in range(0, left, CHUNK):
            n = min(CHUNK, left - start)
            codes = random_codes(n, length=length, prefix=found.prefix)
            rows = [
                {"code": c, "pool_id": found.id, "uses": 0, "max_uses": found.uses_per_code, "created_at": now}
                for c in codes
            ]
            _insert(session, rows)
            if progress:
                progress(n)
        left = target - _size(session, found.id)  # what collisions left out: drawn again
    return show_pool(session, name, now=now) | {"generated": count}


def parse_upload(text: str) -> list[str]:
    """Codes from a text or CSV file: the first field of each line, a header line ("code") skipped."""
    out = []
    for line in text.splitlines():
        field = line.split(",", 1)[0].split(";", 1)[0].strip().strip('"').strip()
        if field and field.lower() != "code":
            out.append(field)
    return out


def upload(session: Session, name: str, codes: Iterable[Any], *, now: datetime) -> dict[str, Any]:
    """Codes from another system into the pool; repeats and codes already known are skipped (counted)."""
    found = pool(session, name)
    wanted = [normal(c) for c in codes]
    bad = [c for c in wanted if not _UPLOADED.match(c)]
    if bad:
        raise ValidationFailed([{"field": "codes", "reason": f"'{bad[0]}' is not a code (3-40 letters, digits, _ -)"}])
    if not wanted:
        raise ValidationFailed([{"field": "codes", "reason": "no codes given"}])
    before = _size(session, found.id)
    unique = list(dict.fromkeys(wanted))
    for start in range(0, len(unique), CHUNK):
        rows = [
            {"code": c, "pool_id": found.id, "uses": 0, "max_uses": found.uses_per_code, "created_at": now}
            for c in unique[start : start + CHUNK]
        ]
        _insert(session, rows)
    added = _size(session, found.id) - before
    return show_pool(session, name, now=now) | {"uploaded": added, "skipped": len(wanted) - added}


# -- personal codes ------------------------------------------------------------------------------------------------


def personal(
    session: Session,
    name: str,
    customer_id: str,
    *,
    now: datetime,
    value: float | None = None,
    valid_days: float | None = None,
    key: str | None = None,
    source: str = "api",
) -> dict[str, Any]:
    """A code for one customer: a new one in a generated pool, the next unused one of an uploaded pool (409 when
    none is left). With `key`, once per key (the same code again)."""
    found = pool(session, name)
    if key is not None and (row := session.execute(sa.select(CODES).where(CODES.c.key == key)).first()):
        return dict(row._mapping)
    expires = now + timedelta(days=valid_days) if valid_days else found.valid_until
    mine = {"customer_id": customer_id, "key": key, "value": value, "expires_at": expires, "source": source}
    if found.kind == "uploaded":
        query = sa.select(CODES.c.code).where(
            CODES.c.pool_id == found.id, CODES.c.customer_id.is_(None), CODES.c.uses == 0
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        code = session.scalar(query.order_by(CODES.c.created_at, CODES.c.code).limit(1))
        if code is None:
            raise Conflict(f"pool '{name}' has no unused codes left", field="pool")
        session.execute(sa.update(CODES).where(CODES.c.code == code).values(mine))
    else:
        while True:
            code = random_codes(1, prefix=found.prefix)[0]
            row = {"code": code, "pool_id": found.id, "uses": 0, "max_uses": found.uses_per_code, "created_at": now}
            if session.execute(insert_ignore(session, CODES), [row | mine]).rowcount:
                break
    return dict(session.execute(sa.select(CODES).where(CODES.c.code == code)).one()._mapping)


def journeys_pool(session: Session, now: datetime) -> int:
    """The id of the pool journeys' codes go in (made on first use)."""
    spec = {"name": JOURNEYS, "kind": "generated", "discount_kind": "percent", "value": 10, "prefix": "BMR-"}
    session.execute(insert_ignore(session, POOLS), [_pool_row(spec, now)])
    return session.scalar(sa.select(POOLS.c.id).where(POOLS.c.name == JOURNEYS))


def write_issued(session: Session, rows: list[dict[str, Any]]) -> None:
    """Codes journeys issued (`service.code_row`s); one whose key is taken is not written again."""
    pool_id = journeys_pool(session, min(r["at"] for r in rows))
    codes = [
        {
            "code": r["code"],
            "pool_id": pool_id,
            "customer_id": r["customer_id"],
            "key": r["key"],
            "value": r["discount_percent"],
            "uses": 0,
            "max_uses": 1,
            "expires_at": r["expires_at"],
            "source": r["source"],
            "created_at": r["at"],
        }
        for r in rows
    ]
    session.connection().execute(insert_ignore(session, CODES), codes)


# -- reading: a pool's codes and redemptions, one code -------------------------------------------------------------


def codes_page(session: Session, name: str, *, after: str = "", limit: int = 10_000) -> list[sa.Row]:
    """Up to `limit` of the pool's codes in code order, after the code `after` (an export reads page by page):
    code, customer_id, uses, max_uses, expires_at, created_at."""
    found = pool(session, name)
    c = CODES.c
    return session.execute(
        sa.select(c.code, c.customer_id, c.uses, c.max_uses, c.expires_at, c.created_at)
        .where(c.pool_id == found.id, c.code > after)
        .order_by(c.code)
        .limit(limit)
    ).all()


def _live_state(now: datetime) -> sa.ColumnElement:
    """A redemption's state as of `now`: a hold past its time is expired (its code's next hold records it so)."""
    r = _REDEEMED.c
    return sa.case((sa.and_(r.state == "held", r.expires_at <= now), "expired"), else_=r.state)


def _shown(now: datetime) -> list[sa.ColumnElement]:
    r = _REDEEMED.c
    state = _live_state(now).label("state")
    return [
        r.order_id,
        r.customer_id,
        state,
        r.total,
        r.amount.label("discount"),
        r.expires_at,
        r.created_at,
        r.updated_at,
    ]


def redemptions(session: Session, name: str, *, now: datetime, limit: int = 50) -> list[dict[str, Any]]:
    """The pool's latest redemptions, newest first: code, order_id, customer_id, state as of `now`, the order's
    total, the discount given, when held (created_at) and last changed (updated_at). Reads only."""
    found, r = pool(session, name), _REDEEMED.c
    rows = session.execute(
        sa.select(r.code, *_shown(now))
        .join(CODES, CODES.c.code == r.code)
        .where(CODES.c.pool_id == found.id)
        .order_by(r.created_at.desc(), r.id.desc())
        .limit(limit)
    ).all()
    return [dict(row._mapping) for row in rows]


def redemption_summary(session: Session, name: str, *, now: datetime, days: int = 30) -> dict[str, Any]:
    """The pool's redemptions by state as of `now` (count, order totals, discounts given), and per day of the
    last `days` by when they were made (`by_day`: day, then a count per state). Reads only."""
    found, r = pool(session, name), _REDEEMED.c
    state = _live_state(now).label("state")
    mine = sa.select(r.code).where(r.code == CODES.c.code, CODES.c.pool_id == found.id).exists()
    totals = {s: {"count": 0, "total": 0.0, "discount": 0.0} for s in REDEMPTION_STATES}
    for s, n, total, discount in session.execute(
        sa.select(state, sa.func.count(), sa.func.sum(r.total), sa.func.sum(r.amount)).where(mine).group_by(state)
    ):
        totals[s] = {"count": n, "total": float(total or 0), "discount": float(discount or 0)}
    first = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day = sa.func.date(r.created_at)
    counted: dict[tuple[str, str], int] = {}
    for d, s, n in session.execute(
        sa.select(day, state, sa.func.count()).where(mine, r.created_at >= first).group_by(day, state)
    ):
        counted[(str(d)[:10], s)] = n
    by_day = []
    for i in range(days):
        label = (first + timedelta(days=i)).date().isoformat()
        by_day.append({"day": label, **{s: counted.get((label, s), 0) for s in REDEMPTION_STATES}})
    return {"states": totals, "by_day": by_day}


def lookup(session: Session, code: Any, *, now: datetime, limit: int = 20) -> dict[str, Any]:
    """One code as the shop's staff look it up: its pool and discount, whose it is, its uses (holds past their
    time not counted), its state as of `now` (unused, partly used, used up, expired, not yet valid) and its latest
    redemptions. NotFound for an unknown code. Reads only."""
    code = normal(code)
    row = session.execute(
        sa.select(CODES, POOLS.c.name.label("pool"), POOLS.c.value.label("pool_value"))
        .add_columns(POOLS.c.discount_kind, POOLS.c.valid_from, POOLS.c.valid_until)
        .join(POOLS, POOLS.c.id == CODES.c.pool_id)
        .where(CODES.c.code == code)
    ).first()
    if row is None:
        raise NotFound(f"unknown code '{code}'", field="code")
    r = _REDEEMED.c
    used = session.execute(
        sa.select(*_shown(now)).where(r.code == code).order_by(r.created_at.desc(), r.id.desc()).limit(limit)
    ).all()
    stale = session.scalar(sa.select(sa.func.count()).where(r.code == code, r.state == "held", r.expires_at <= now))
    uses = max(row.uses - (stale or 0), 0)
    ends = min((t for t in (row.expires_at, row.valid_until) if t is not None), default=None)
    if ends is not None and ends <= now:
        state = "expired"
    elif row.valid_from is not None and row.valid_from > now:
        state = "not yet valid"
    elif uses >= row.max_uses:
        state = "used up"
    else:
        state = "partly used" if uses else "unused"
    return {
        "code": row.code,
        "pool": row.pool,
        "state": state,
        "customer_id": row.customer_id,
        "discount_kind": row.discount_kind,
        "value": float(row.value if row.value is not None else row.pool_value),
        "uses": uses,
        "max_uses": row.max_uses,
        "uses_left": max(row.max_uses - uses, 0),
        "valid_from": row.valid_from,
        "expires_at": ends,
        "source": row.source,
        "created_at": row.created_at,
        "redemptions": [dict(u._mapping) for u in used],
    }
