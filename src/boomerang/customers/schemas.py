"""Typed inputs of the customers API: a profile to upsert, a consent, a merge."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from boomerang.core.errors import ValidationFailed
from boomerang.customers import addresses


class CustomerIn(BaseModel):
    """A profile as the REST API takes it: the email checked and lower-cased, the phone in E.164 (read with the
    country's code when written without one)."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=255)
    country: str | None = None  # before the phone: a phone without its country code is read as one of it
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    telegram_chat_id: str | None = Field(default=None, max_length=64)
    first_name: str | None = None
    last_name: str | None = None
    birthday: date | None = None
    city: str | None = None
    timezone: str | None = None
    locale: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    consents: dict[str, bool] = Field(default_factory=dict)

    @field_validator("email", "phone")
    @classmethod
    def _address(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return value
        try:
            if info.field_name == "email":
                return addresses.email(value, "email")
            return addresses.phone(value, "phone", region=info.data.get("country"))
        except ValidationFailed as exc:
            raise ValueError(exc.errors[0]["reason"]) from None


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str
    granted: bool
    source: str = Field(default="api", max_length=64)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_customer_id: str = Field(alias="from")


# -- outputs ---------------------------------------------------------------------------------------


class IdentityOut(BaseModel):
    kind: str
    value: str


class ConsentOut(BaseModel):
    granted: bool
    source: str
    at: datetime


class CustomerOut(BaseModel):
    """A profile with the ways it is recognised and its consents per channel."""

    id: str
    external_id: str | None
    email: str | None
    phone: str | None
    telegram_chat_id: str | None
    first_name: str | None
    last_name: str | None
    birthday: date | None
    city: str | None
    country: str | None
    timezone: str | None
    locale: str | None
    attributes: dict[str, Any]
    merged_into_id: str | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime
    identified: bool
    identities: list[IdentityOut]
    consents: dict[str, ConsentOut]


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    limit: int
    offset: int


class ConsentSet(CustomerOut):
    changed: bool


class ConsentChangeOut(BaseModel):
    channel: str
    granted: bool
    source: str
    at: datetime


class ConsentHistory(BaseModel):
    items: list[ConsentChangeOut]


class Erasure(BaseModel):
    """What an erasure did: the profiles erased, and per kind of row how many were deleted, pseudonymised
    (kept for counts under a pseudonym), ended or suppressed."""

    customer_id: str
    erased_at: datetime
    profiles: list[str]
    deleted: dict[str, int]
    pseudonymised: dict[str, int]
    ended: dict[str, int]
    suppressed: dict[str, int]
