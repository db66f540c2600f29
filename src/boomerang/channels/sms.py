"""SMS adapters: a generic HTTP gateway (JSON or form) and Twilio's Messages API.

Both check the phone number is E.164, make a text GSM-7 by transliteration when that saves parts
(if configured), refuse a text longer than `max_parts` parts, and keep phone numbers and
credentials out of every error and log line. Delivery receipts come back through
`boomerang.api.routers.hooks_sms`, signed with `receipt_key` (generic) or the auth token (Twilio).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator

from boomerang.channels import sms_text
from boomerang.channels.base import Outbound, SendResult
from boomerang.channels.http_results import from_status, from_transport, is_http_url, redact, retry_after

if TYPE_CHECKING:
    from boomerang.channels.registry import ChannelContext

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _http_url(value: str | None) -> str | None:
    if value is not None and not is_http_url(value):
        raise ValueError("must be an http:// or https:// URL")
    return value


def receipt_key(secret: bytes) -> bytes:
    """The HMAC key a generic gateway signs its delivery receipts with (give it the hex)."""
    return hashlib.sha256(b"boomerang-sms-hooks\0" + secret).digest()


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by the sorted form keys and values."""
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


class SmsSettings(BaseModel):
    """What both SMS adapters share."""

    transliterate: bool = False  # Russian/Ukrainian to Latin when that makes the text cost fewer parts
    max_parts: int = Field(default=6, ge=1, le=10)
    rate_per_second: float | None = Field(default=None, gt=0)
    timeout: float = Field(default=10, gt=0)


def fit(text: str, settings: SmsSettings, locale: str) -> str | SendResult:
    """The text to send, transliterated if that lowers its part count; a permanent failure when it is too long."""
    enc, count = sms_text.parts(text)
    if count == 0:
        return SendResult.failed("the SMS text is empty", permanent=True)
    if settings.transliterate and enc == "ucs2":
        latin = sms_text.transliterate(text, locale[:2].lower())
        latin_enc, latin_count = sms_text.parts(latin)
        if latin_count < count:
            text, enc, count = latin, latin_enc, latin_count
    if count > settings.max_parts:
        return SendResult.failed(
            f"the text takes {count} SMS parts ({enc}), more than max_parts {settings.max_parts}", permanent=True
        )
    return text


class _HttpSms(ABC):
    """The send path both adapters share; subclasses build the request and read the answer."""

    name: ClassVar[str] = "sms"
    in_store: ClassVar[bool] = False
    who: ClassVar[str]
    concurrency = 4

    def __init__(self, config: SmsSettings, ctx: ChannelContext | None = None) -> None:
        self.config = config
        self.client = httpx.Client(timeout=config.timeout, follow_redirects=False)

    def send(self, message: Outbound) -> SendResult:
        if not message.to or not E164.match(message.to):
            return SendResult.failed("to: not an E.164 phone number (+ and 7 to 15 digits)", permanent=True)
        text = fit(message.text, self.config, message.locale)
        if isinstance(text, SendResult):
            return text
        try:
            response = self._post(message.to, text)
        except httpx.HTTPError as exc:
            return from_transport(exc, self.who)
        return self._result(response)

    @abstractmethod
    def _post(self, to: str, text: str) -> httpx.Response: ...

    @abstractmethod
    def _result(self, response: httpx.Response) -> SendResult: ...

    def close(self) -> None:
        self.client.close()


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _dig(document: Any, path: str) -> Any:
    """The value at a dotted path ("data.id", "messages.0.id") of a JSON document, or None."""
    for step in path.split("."):
        if isinstance(document, dict):
            document = document.get(step)
        elif isinstance(document, list) and step.isdigit() and int(step) < len(document):
            document = document[int(step)]
        else:
            return None
    return document


class GenericSmsChannel(_HttpSms):
    """Any SMS gateway that takes a POST with the number and the text as JSON or form fields."""

    who = "the SMS gateway"

    class Config(SmsSettings):
        url: str
        format: Literal["json", "form"] = "json"
        to_field: str = "to"
        text_field: str = "text"
        from_field: str = "from"
        sender: str | None = None
        auth_header: str = "Authorization"
        auth_value: SecretStr | None = None  # the header's whole value: "Bearer ...", "Basic ...", a bare key
        id_field: str = "id"  # dotted path to the message id in the gateway's JSON answer

        check_url = field_validator("url")(_http_url)

    config: Config

    def _post(self, to: str, text: str) -> httpx.Response:
        fields = {self.config.to_field: to, self.config.text_field: text}
        if self.config.sender:
            fields[self.config.from_field] = self.config.sender
        headers = {}
        if self.config.auth_value is not None:
            headers[self.config.auth_header] = self.config.auth_value.get_secret_value()
        body = {"json": fields} if self.config.format == "json" else {"data": fields}
        return self.client.post(self.config.url, headers=headers, **body)

    def _result(self, response: httpx.Response) -> SendResult:
        if response.is_success:
            found = _dig(_json(response), self.config.id_field)
            return SendResult.sent(str(found) if found not in (None, "") else None)
        return from_status(response.status_code, response.headers, self.who, response.text)


class TwilioSmsChannel(_HttpSms):
    """Twilio's Messages API (POST /2010-04-01/Accounts/{sid}/Messages.json)."""

    who = "Twilio"
    # Twilio error codes that say something about the recipient
    UNSUBSCRIBED = {21610}  # replied STOP
    BAD_NUMBER = {21211: "the number is not a valid phone number", 21614: "the number is not a mobile number"}

    class Config(SmsSettings):
        account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
        auth_token: SecretStr
        sender: str | None = None  # a Twilio number (E.164) or an alphanumeric sender id
        messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$", validate_default=True)
        status_callback_url: str | None = None  # .../hooks/sms/twilio on Boomerang's public URL, for receipts
        base_url: str = "https://api.twilio.com"

        check_urls = field_validator("status_callback_url", "base_url")(_http_url)

        @field_validator("messaging_service_sid")
        @classmethod
        def check_sender(cls, value: str | None, info: ValidationInfo) -> str | None:
            if not value and not info.data.get("sender"):
                raise ValueError("required when there is no sender (a Twilio number or sender id)")
            return value

    config: Config

    def __init__(self, config: Config, ctx: ChannelContext | None = None) -> None:
        super().__init__(config, ctx)
        self.url = f"{config.base_url.rstrip('/')}/2010-04-01/Accounts/{config.account_sid}/Messages.json"
        self.auth = httpx.BasicAuth(config.account_sid, config.auth_token.get_secret_value())

    def _post(self, to: str, text: str) -> httpx.Response:
        form = {"To": to, "Body": text}
        if self.config.sender:
            form["From"] = self.config.sender
        if self.config.messaging_service_sid:
            form["MessagingServiceSid"] = self.config.messaging_service_sid
        if self.config.status_callback_url:
            form["StatusCallback"] = self.config.status_callback_url
        return self.client.post(self.url, data=form, auth=self.auth)

    def _result(self, response: httpx.Response) -> SendResult:
        body = _json(response)
        body = body if isinstance(body, dict) else {}
        if response.is_success:
            return SendResult.sent(body.get("sid"))
        code, text = body.get("code"), redact(str(body.get("message") or ""))
        if code in self.UNSUBSCRIBED:
            return SendResult.unsubscribed(f"the recipient replied STOP (Twilio {code})")
        if code in self.BAD_NUMBER:
            return SendResult.failed(f"{self.BAD_NUMBER[code]} (Twilio {code})", permanent=True)
        if response.status_code == 429 or code == 20429:
            return SendResult.rate_limited(retry_after(response.headers.get("retry-after")), f"Twilio {code}: {text}")
        return from_status(response.status_code, response.headers, self.who, f"{code}: {text}" if code else text)
