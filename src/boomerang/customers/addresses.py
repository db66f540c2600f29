"""Email addresses and phone numbers as customers give them, checked and normalised by the libraries made for
it: email-validator (syntax, internationalised domains; no DNS lookups) and phonenumbers (Google's
libphonenumber metadata), so that one address is stored one way, and a message is never sent to
"not-an-email" or "call me maybe"."""

from __future__ import annotations

import email_validator
import phonenumbers

from boomerang.core.errors import ValidationFailed


def email(value: str, field: str) -> str:
    """The address, lower-cased, as Boomerang stores and matches it; ValidationFailed naming `field` otherwise."""
    try:
        checked = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise ValidationFailed([{"field": field, "reason": f"not an email address: {exc}"}]) from None
    return checked.normalized.lower()


def phone(value: str, field: str, *, region: str | None = None) -> str:
    """The number in E.164 (+380501112233). A number without its country code is read as one of `region` (the
    customer's country, ISO 3166 alpha-2) when it is known."""
    try:
        number = phonenumbers.parse(value, region.upper() if region and len(region) == 2 else None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        reason = "not a phone number: write it in international format, such as +380501112233"
        raise ValidationFailed([{"field": field, "reason": reason}])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
