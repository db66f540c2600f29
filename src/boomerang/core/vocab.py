"""The words every domain shares: channels and their addresses, message categories, profile fields.

Plain data, imported by the pure cores and the stores alike, so each list exists once.
"""

from __future__ import annotations

from typing import Literal, get_args

# Channels a customer is reached on, each with its consent.
CHANNELS = ("email", "sms", "telegram", "webpush", "inapp")
# The profile field holding a customer's address on a channel (web push and in-app need none).
ADDRESS_FIELDS = {"email": "email", "sms": "phone", "telegram": "telegram_chat_id"}

# Where events come from, by trust: what the public write key sends (it lives in browsers and apps) may add
# what the shop does not know yet, never overwrite catalog data or a known customer's identifiers and consents;
# with the user id signed by the shop's server (identity verification) it speaks for that customer, so it may
# change their own profile and consents, still not the catalog; every other source (the secret key, the shop's
# server, imports, Boomerang itself) may overwrite both.
BROWSER = "browser"
VERIFIED = "verified"
SERVER = "server"

# The events a segment's membership changes write (a property `segment` names it); the log counts them per day.
SEGMENT_CHANGES = ("Segment Entered", "Segment Exited")


def trusted(source: str) -> bool:
    """Whether events of `source` may overwrite what is known: catalog data included."""
    return source not in (BROWSER, VERIFIED)


def speaks_for_customer(source: str) -> bool:
    """Whether events of `source` may overwrite the identifiers and consents of the customer they name."""
    return source != BROWSER


# Message categories in priority order, highest first: a receipt before a reminder before an offer.
Category = Literal["transactional", "triggered", "promotional"]
CATEGORIES: tuple[str, ...] = get_args(Category)

# A customer profile's own fields (columns of `customers`) and their kind.
PROFILE_FIELDS: dict[str, str] = {
    "external_id": "string",
    "email": "string",
    "phone": "string",
    "telegram_chat_id": "string",
    "first_name": "string",
    "last_name": "string",
    "city": "string",
    "country": "string",
    "timezone": "string",
    "locale": "string",
    "birthday": "date",
}
# What Boomerang itself keeps about a profile: when it was first and last seen, and made.
SEEN_FIELDS: dict[str, str] = {"first_seen_at": "date", "last_seen_at": "date", "created_at": "date"}


def rank(category: str) -> int:
    """A category's priority: 0 for transactional; unknown categories come last."""
    return CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES)
