"""The Telegram channel: messages from the shop's bot to the chats customers linked, over the Bot API.

The bot token is part of every request's path (`/bot<token>/<method>`), so nothing here lets a URL
out: transport errors become their class name, and httpx's own request log is masked (channels.base).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, SecretStr, field_validator

from boomerang.channels.base import Outbound, SendResult


class BotApiError(Exception):
    """Telegram said no (`code` is its error_code), or could not be reached (`code` 0)."""

    def __init__(self, code: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code} {description}")
        self.code, self.description, self.retry_after = code, description, retry_after

    @property
    def temporary(self) -> bool:
        """Worth trying again later: unreachable, rate limited or a server error."""
        return self.code == 0 or self.code == 429 or self.code >= 500


class BotApi:
    """A Bot API client: `call(method, **params)` returns the result or raises BotApiError."""

    def __init__(
        self, token: str, *, base_url: str = "https://api.telegram.org", timeout: float = 10, max_connections: int = 4
    ) -> None:
        self.timeout = timeout
        self._client = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/bot{token}/",
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections),
        )

    @classmethod
    def from_config(cls, config: TelegramChannel.Config, *, max_connections: int = 4) -> BotApi:
        return cls(
            config.token.get_secret_value(),
            base_url=config.base_url,
            timeout=config.timeout,
            max_connections=max_connections,
        )

    def call(self, method: str, **params: Any) -> Any:
        """POST `params` (None left out) as JSON to `method`; getUpdates's long-poll `timeout` extends the wait."""
        params = {k: v for k, v in params.items() if v is not None}
        wait = self.timeout + (float(params.get("timeout", 0)) if method == "getUpdates" else 0)
        try:
            response = self._client.post(method, json=params, timeout=wait)
        except httpx.HTTPError as exc:
            # str(exc) may carry the URL, and with it the token: keep only what went wrong
            raise BotApiError(0, f"network error ({type(exc).__name__})") from None
        try:
            answer = response.json()
        except ValueError:
            raise BotApiError(response.status_code, f"HTTP {response.status_code} without a Bot API answer") from None
        if not isinstance(answer, dict):
            raise BotApiError(response.status_code, f"HTTP {response.status_code} without a Bot API answer")
        if answer.get("ok"):
            return answer.get("result")
        retry_after = (answer.get("parameters") or {}).get("retry_after")
        raise BotApiError(
            int(answer.get("error_code") or response.status_code),
            str(answer.get("description") or f"HTTP {response.status_code}"),
            None if retry_after is None else float(retry_after),
        )

    def close(self) -> None:
        self._client.close()


def inline_keyboard(rows: list[list[dict[str, str]]]) -> dict[str, Any]:
    """A reply_markup with these rows of buttons ({"text", "url"} or {"text", "callback_data"})."""
    return {"inline_keyboard": rows}


class TelegramChannel:
    """The telegram channel's bot provider: a message to the chat the customer linked."""

    name: ClassVar[str] = "telegram"
    in_store: ClassVar[bool] = False
    concurrency = 4

    class Config(BaseModel):
        """The shop's bot: its token (from @BotFather) and how to reach the Bot API."""

        token: SecretStr
        base_url: str = "https://api.telegram.org"
        bot_username: str | None = None  # for deep links: t.me/<bot_username>?start=...
        webhook_secret: SecretStr | None = None  # Telegram sends it back with every update (webhook mode)
        rate_per_second: float | None = 25  # Telegram allows about 30 messages a second to different chats
        timeout: float = 10

        @field_validator("webhook_secret")
        @classmethod
        def _telegram_accepts(cls, secret: SecretStr | None) -> SecretStr | None:
            if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret.get_secret_value()):
                raise ValueError("Telegram accepts 1 to 256 characters: A-Z, a-z, 0-9, _ and -")
            return secret

    def __init__(self, config: Config, ctx: Any = None) -> None:
        self.api = BotApi.from_config(config, max_connections=self.concurrency)

    def send(self, message: Outbound) -> SendResult:
        """sendMessage: the text as Telegram HTML, the buttons as an inline keyboard of (tracked) links."""
        if not message.to:
            return SendResult.failed("the customer has no linked Telegram chat", permanent=True)
        markup = (
            inline_keyboard([[{"text": b.label, "url": b.url}] for b in message.buttons]) if message.buttons else None
        )
        try:
            sent = self.api.call(
                "sendMessage",
                chat_id=message.to,
                text=message.text,
                parse_mode="HTML",
                disable_web_page_preview=True,
                reply_markup=markup,
            )
        except BotApiError as exc:
            return result_of(exc)
        return SendResult.sent(str(sent["message_id"]) if isinstance(sent, dict) and "message_id" in sent else None)

    def close(self) -> None:
        self.api.close()


def result_of(exc: BotApiError) -> SendResult:
    """What a Bot API refusal means for the message."""
    if exc.code == 429:
        return SendResult.rate_limited(
            1 if exc.retry_after is None else exc.retry_after, f"Telegram: {exc.description}"
        )
    if exc.code == 403:  # the customer blocked the bot or deleted their account: they left the channel
        return SendResult.unsubscribed(f"Telegram: {exc.description}")
    if exc.code == 400:  # chat not found, a malformed message: the same request will fail again
        return SendResult.failed(f"Telegram: {exc.description}", permanent=True)
    if exc.code in (401, 404):  # a wrong token: the settings need fixing, the message can wait for it
        return SendResult.failed(f"Telegram refused the bot token ({exc.description}): check the telegram settings")
    return SendResult.failed(f"Telegram: {exc.description}")
