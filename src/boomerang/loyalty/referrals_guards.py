"""What an event tells about a referral, and the guards that stop one (`referrals` decides and writes).

- **The code** an event carries, first found of: `properties.referral_code`; the `ref` parameter of the page's
  address (`context.page.url` or `.search`, or a page call's `properties.url` / `.search`: the referral link is
  `?ref=CODE&utm_source=referral&...`); `context.campaign.content` when `context.campaign.source` is `referral`
  (a shop that puts the code into `utm_content`). The channel is `context.campaign.medium` (the link's
  `utm_medium`), else `link`.
- **Self-referral**: the friend and the referrer share an email (compared without dots and `+tags` where the
  mailbox ignores them), a phone, a device (`context.device.id`, and the customers' device identities) or a
  shipping address (`properties.shipping_address`, `traits.address`...: street and city or postcode, compared
  without case and punctuation). Devices and addresses are kept only as keyed digests (`loyalty_referral_marks`),
  for referrers and friends only.
- **Velocity**: more than `max_friends_per_device` friends attributed from one device, or `max_friends_per_network`
  from one network (IPv4 /24, IPv6 /64 of `context.ip`), within `window_days`; more than `max_rewards_per_referrer`
  rewards for one referrer within `window_days`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import ReferralSettings
from boomerang.customers.models import Customer, Identity
from boomerang.customers.privacy.suppression import SECRET
from boomerang.db import among, chunked, insert_ignore
from boomerang.loyalty.models import LoyaltyReferral, LoyaltyReferralCode, LoyaltyReferralMark

REFERRALS = LoyaltyReferral.__table__
MARKS = LoyaltyReferralMark.__table__
CODE_PARAM = "ref"
CODE = re.compile(r"^[A-Z0-9-]{1,32}$")
CHANNEL = re.compile(r"^[a-z0-9_.-]{1,32}$")
STREET_KEYS = ("street", "street1", "street2", "line1", "line2", "address1", "address2", "address_line_1")
PLACE_KEYS = ("postal_code", "postalCode", "postcode", "zip", "city")
IGNORING_DOTS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
KEY = "referral_key"  # Session.info: the digest key, derived once per session from the workspace secret


@dataclass(frozen=True)
class Landing:
    """A referral code as an event brought it, with what the guards read of that event."""

    code: str  # upper-cased; may be no customer's code
    channel: str
    device: str | None  # a digest
    network: str | None  # "203.0.113.0/24"
    address: str | None  # a digest


def digest(session: Session, kind: str, value: str) -> str:
    """HMAC-SHA256 of a device id or an address, keyed by the workspace secret (lent to every session of its unit
    of work), so the table alone does not say whose devices and addresses they were."""
    if KEY not in session.info:
        secret = session.info.get(SECRET)
        if secret is None:
            raise RuntimeError("this session was not opened by a workspace's unit of work: no key for the digests")
        session.info[KEY] = hashlib.sha256(b"boomerang-referrals\0" + secret()).digest()
    return hmac.digest(session.info[KEY], f"{kind}\0{value}".encode(), "sha256").hex()


# -- what an event carries -----------------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ref(address: Any) -> str | None:
    """The `ref` parameter of a URL or of a query string."""
    if not isinstance(address, str) or CODE_PARAM not in address:
        return None
    query = urlsplit(address).query if "://" in address or address.startswith("/") else address.lstrip("?")
    values = parse_qs(query).get(CODE_PARAM)
    return values[0] if values else None


def code_in(session: Session, happening: Any) -> Landing | None:
    """The referral code the event carries, if any (see the module's rule)."""
    props, context = _dict(happening.properties), _dict(happening.context)
    page, campaign = _dict(context.get("page")), _dict(context.get("campaign"))
    found = props.get("referral_code")
    for address in (page.get("url"), page.get("search"), props.get("url"), props.get("search")):
        found = found or _ref(address)
    if not found and campaign.get("source") == "referral":
        found = campaign.get("content")
    if not isinstance(found, str) or not found.strip():
        return None
    medium = str(campaign.get("medium") or "").strip().lower()
    return Landing(
        code=found.strip().upper()[:32],
        channel=medium if CHANNEL.match(medium) else "link",
        device=device_of(session, context),
        network=network_of(context),
        address=address_of(session, happening),
    )


def device_of(session: Session, context: dict[str, Any]) -> str | None:
    value = _dict(context.get("device")).get("id")
    return digest(session, "device", str(value).strip()) if value not in (None, "") else None


def network_of(context: dict[str, Any]) -> str | None:
    """The IPv4 /24 or IPv6 /64 of `context.ip` (none for a loopback, link-local or unspecified address)."""
    try:
        ip = ipaddress.ip_address(str(context.get("ip") or "").strip())
    except ValueError:
        return None
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified:
        return None
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False))


def _words(value: Any) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", str(value or "").casefold()).split())


def address_of(session: Session, happening: Any) -> str | None:
    """A digest of the shipping address the event names: street with postcode or city, or a line of text."""
    props, context = _dict(happening.properties), _dict(happening.context)
    traits = _dict(getattr(happening, "traits", None)) or (props if happening.type == "identify" else {})
    for found in (
        props.get("shipping_address"),
        props.get("shipping") if isinstance(props.get("shipping"), dict) else None,
        props.get("address"),
        traits.get("address"),
        _dict(context.get("traits")).get("address"),
    ):
        if isinstance(found, str) and len(_words(found)) >= 8 and any(c.isdigit() for c in found):
            return digest(session, "address", _words(found))
        if isinstance(found, dict):
            street = _words(" ".join(str(found.get(k) or "") for k in STREET_KEYS))
            place = _words(next((found[k] for k in PLACE_KEYS if found.get(k)), ""))
            if street and place:
                return digest(session, "address", f"{street}|{place}|{_words(found.get('country'))}")
    return None


def marks_of(session: Session, happening: Any) -> set[tuple[str, str]]:
    """The (kind, digest) marks an event carries: its device and its shipping address."""
    device = device_of(session, _dict(happening.context))
    address = address_of(session, happening)
    return {m for m in (("device", device), ("address", address)) if m[1]}


def involved(session: Session, customer_ids: Iterable[str]) -> set[str]:
    """Those of the customers who are referrers (have a code) or friends (have a referral)."""
    found: set[str] = set()
    codes = LoyaltyReferralCode.__table__
    for chunk in chunked(customer_ids):
        found.update(
            session.scalars(sa.select(REFERRALS.c.friend_id).where(among(session, REFERRALS.c.friend_id, chunk)))
        )
        found.update(session.scalars(sa.select(codes.c.customer_id).where(among(session, codes.c.customer_id, chunk))))
    return found


def remember(session: Session, seen: dict[str, set[tuple[str, str]]], *, now: datetime) -> None:
    """Keep the marks of those customers who are referrers (have a code) or friends (have a referral)."""
    keep = involved(session, [cid for cid, marks in seen.items() if marks])
    rows = [
        {"kind": kind, "value": value, "customer_id": cid, "seen_at": now}
        for cid in sorted(keep)
        for kind, value in sorted(seen[cid])
    ]
    if rows:
        session.execute(insert_ignore(session, MARKS), rows)


# -- self-referral ------------------------------------------------------------------------------------------------


def mailbox(email: str) -> str:
    """An email as its mailbox: lower case, without a `+tag`, and without dots where the provider ignores them."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in IGNORING_DOTS:
        local, domain = local.replace(".", ""), IGNORING_DOTS[domain]
    return f"{local}@{domain}"


def signals(session: Session, customer_id: str, extra: Iterable[tuple[str, str]] = ()) -> dict[str, set[str]]:
    """What identifies a customer's person: emails, phones, devices (digests), shipping addresses (digests)."""
    out: dict[str, set[str]] = {"email": set(), "phone": set(), "device": set(), "address": set()}
    row = session.execute(sa.select(Customer.email, Customer.phone).where(Customer.id == customer_id)).first()
    if row is not None:
        out["email"].update({mailbox(row.email)} if row.email else set())
        out["phone"].update({row.phone} if row.phone else set())
    for kind, value in session.execute(
        sa.select(Identity.kind, Identity.value).where(
            Identity.customer_id == customer_id, Identity.kind.in_(("email", "phone", "device"))
        )
    ):
        out[kind].add(
            mailbox(value) if kind == "email" else digest(session, "device", value) if kind == "device" else value
        )
    for kind, value in session.execute(
        sa.select(MARKS.c.kind, MARKS.c.value).where(MARKS.c.customer_id == customer_id)
    ):
        out[kind].add(value)
    for kind, value in extra:
        out[kind].add(value)
    return out


def shared(session: Session, friend: str, referrer: str, extra: Iterable[tuple[str, str]] = ()) -> list[str]:
    """What the friend (with `extra` marks of theirs not kept yet) and the referrer have in common."""
    mine, theirs = signals(session, friend, extra), signals(session, referrer)
    return [kind for kind in mine if mine[kind] & theirs[kind]]


# -- velocity -----------------------------------------------------------------------------------------------------


def crowded(session: Session, landing: Landing, settings: ReferralSettings, now: datetime) -> dict[str, Any] | None:
    """Why a new friend from this device or network is one too many within the window, if they are."""
    since = now - timedelta(days=settings.window_days)
    for by, value, limit in (
        ("device", landing.device, settings.max_friends_per_device),
        ("network", landing.network, settings.max_friends_per_network),
    ):
        if value is None:
            continue
        count = session.scalar(
            sa.select(sa.func.count()).where(REFERRALS.c[by] == value, REFERRALS.c.attributed_at >= since)
        )
        if count >= limit:
            shown = value if by == "network" else value[:12]
            return {"by": by, by: shown, "friends": count, "limit": limit, "days": settings.window_days}
    return None


def rewards_full(session: Session, referrer: str, settings: ReferralSettings, now: datetime) -> dict[str, Any] | None:
    """Why the referrer may have no more rewards within the window, if they may not."""
    since = now - timedelta(days=settings.window_days)
    count = session.scalar(
        sa.select(sa.func.count()).where(REFERRALS.c.referrer_id == referrer, REFERRALS.c.rewarded_at >= since)
    )
    if count >= settings.max_rewards_per_referrer:
        return {
            "by": "referrer",
            "rewards": count,
            "limit": settings.max_rewards_per_referrer,
            "days": settings.window_days,
        }
    return None
