"""The customer-facing Telegram bot: a deep link binds a chat to a customer, commands manage what they get.

/start <token> links the chat and grants consent, /stop withdraws it, /settings is the preference centre
as buttons, /bonus shows points and promo codes. Updates come by webhook (api/routers/bot.py,
with its `set_webhook`) or by long polling (`Bot.poll`: `boomerang telegram poll`, and `Bot.keep_polling` in a
thread of `boomerang serve` while Telegram has no webhook for the bot); each is handled in one transaction and
the replies go out after it commits, so no database lock is held while Telegram is slow.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.bot.links import customer_from_token
from boomerang.bot.texts import TEXT
from boomerang.channels import config as settings
from boomerang.channels.telegram import BotApi, BotApiError, TelegramChannel, inline_keyboard
from boomerang.config import MessagingSettings
from boomerang.core.clock import Clock, naive_utc
from boomerang.core.errors import BoomerangError, NotFound, ValidationFailed
from boomerang.customers.models import Customer, Identity
from boomerang.db import UnitOfWork
from boomerang.events.ingest import ingest
from boomerang.events.schemas import Event
from boomerang.loyalty import programme, referrals_links, rules
from boomerang.loyalty import service as loyalty
from boomerang.messaging import preferences

log = logging.getLogger("boomerang.telegram")
ALLOWED_UPDATES = ["message", "callback_query"]
JOINED = rules.BONUS_TRIGGERS["telegram_joined"][0]  # "Telegram Bot Joined"
RECHECK_SECONDS = 60.0  # how often serve's poller looks at the settings and the webhook again
Call = tuple[str, dict[str, Any]]  # a Bot API method and its parameters, made once the transaction commits


# -- settings --------------------------------------------------------------------------------------


# -- updates ---------------------------------------------------------------------------------------


def _lang(customer: Customer | None, sender: dict | None) -> str:
    """ru or uk when the customer's locale (or, for strangers, their Telegram language) says so; else en."""
    locale = (customer.locale if customer and customer.locale else (sender or {}).get("language_code")) or ""
    return locale[:2].lower() if locale[:2].lower() in TEXT else "en"


def _bound(session: Session, chat: str) -> Customer | None:
    return session.scalars(
        sa.select(Customer).where(Customer.telegram_chat_id == chat, Customer.merged_into_id.is_(None))
    ).first()


def _bind(session: Session, customer_id: str, chat: str, now: datetime) -> Customer | None:
    """Make `chat` the customer's Telegram address; a chat belongs to the last customer who linked it. A chat new
    to the customer is a `Telegram Bot Joined` event of theirs (its effects at once: a bonus, an achievement)."""
    try:
        customer = session.get(Customer, preferences.get(session, customer_id)["customer_id"])  # follows merges
    except NotFound:
        return None
    if customer.telegram_chat_id != chat:
        joined = Event(
            message_id=f"telegram-joined:{customer.id}:{chat}",  # a retried update is the same event
            type="track",
            event=JOINED,
            user_id=None,
            anonymous_id=None,
            timestamp=now,
            properties={},
            context={},
            customer_id=customer.id,
        )
        ingest(session, [joined], now=now, source="telegram")
    for other in session.scalars(
        sa.select(Customer).where(Customer.telegram_chat_id == chat, Customer.id != customer.id)
    ):
        other.telegram_chat_id, other.updated_at = None, now
    customer.telegram_chat_id, customer.updated_at = chat, now
    identity = session.get(Identity, ("telegram", chat))
    if identity is None:
        session.add(Identity(kind="telegram", value=chat, customer_id=customer.id, created_at=now))
    else:
        identity.customer_id = customer.id
    session.flush()
    return customer


def _keyboard(lang: str, prefs: dict[str, Any]) -> dict[str, Any]:
    """The preference centre: a button per topic (pressing sets the opposite), the frequencies, and stop."""

    def mark(on: bool, label: str) -> str:
        return f"✅ {label}" if on else label

    words = TEXT[lang]
    rows = [
        [{"text": mark(on, words["topics"][topic]), "callback_data": f"pref:t:{topic}:{'off' if on else 'on'}"}]
        for topic, on in prefs["topics"].items()
    ]
    rows += [
        [{"text": mark(prefs["frequency"] == f, words["frequencies"][f]), "callback_data": f"pref:f:{f}"}]
        for f in preferences.FREQUENCIES
    ]
    rows.append([{"text": words["stop_all"], "callback_data": "pref:stop"}])
    return inline_keyboard(rows)


def _balance(session: Session, customer: Customer, lang: str, now: datetime, shop_url: str | None = None) -> str:
    """/bonus: the customer's points (spendable, pending), tier and what is missing to the next one, what expires
    soon and when, the promo codes still valid, and (given the shop's address) their referral link."""
    wallet = loyalty.wallets(session, [customer.id], now=now)[customer.id]
    words = TEXT[lang]
    codes = [
        f"<code>{html.escape(c.code)}</code>"
        + (f" −{c.discount_percent:g}%" if c.discount_percent else "")
        + (f" (→ {c.expires_at:%Y-%m-%d})" if c.expires_at else "")
        for c in wallet.codes
    ]
    lines = [words["points"].format(points=wallet.points)]
    if wallet.pending:
        lines.append(words["pending"].format(points=wallet.pending))
    if wallet.expiring and wallet.expiring_at:
        lines.append(words["expiring"].format(points=wallet.expiring, date=f"{wallet.expiring_at:%Y-%m-%d}"))
    tier = wallet.tier
    if tier is not None:
        lines.append(words["tier"].format(tier=html.escape(tier.tier)))
        if tier.next_tier and (tier.missing_spend or tier.missing_orders):
            missing = [
                *([words["missing_spend"].format(amount=f"{tier.missing_spend:g}")] if tier.missing_spend else []),
                *([words["missing_orders"].format(orders=tier.missing_orders)] if tier.missing_orders else []),
            ]
            lines.append(words["next_tier"].format(tier=html.escape(tier.next_tier), missing=words["or"].join(missing)))
    tail = ["", words["codes"], *codes] if codes else []
    if shop_url and programme.of(session).referrals.enabled:
        referral = referrals_links.links_of(session, [customer.id], shop_url=shop_url, now=now)[customer.id]
        tail += ["", words["referral"].format(link=html.escape(referral))]
    return "\n".join(lines + tail)


# -- long polling ----------------------------------------------------------------------------------


def polls(config: TelegramChannel.Config | None, webhook_url: str) -> bool:
    """Whether updates must be fetched by long polling: the bot provider is set up and Telegram has no
    webhook to push them to (while one is set, Telegram refuses getUpdates with 409)."""
    return config is not None and not webhook_url


def _webhook_url(api: BotApi) -> str:
    """The URL Telegram pushes the bot's updates to; empty when none is set."""
    return str((api.call("getWebhookInfo") or {}).get("url") or "")


def _report(exc: Exception, wait: float) -> None:
    """Log a failed round of serve's poller: Telegram's or the settings' own words (they carry no token);
    anything else with its traceback, as the pipeline does."""
    if isinstance(exc, BotApiError | BoomerangError):
        log.warning("telegram: polling for the bot's updates failed (%s); trying again in %g s", exc, wait)
    else:
        log.exception("telegram: polling for the bot's updates failed; trying again in %g s", wait)


def _confirm(api: BotApi, offset: int | None) -> None:
    """Tell Telegram the updates before `offset` are done, so that the next poll does not see them again."""
    if offset is None:
        return
    try:
        api.call("getUpdates", offset=offset, limit=1, timeout=0)
    except BotApiError as exc:
        log.warning("telegram: confirming updates failed: %s", exc)


@dataclass(frozen=True)
class Bot:
    """The bot of one workspace: its store, its secret (link tokens, the bot's token at rest), the shop's
    name and site, and a clock."""

    uow: UnitOfWork
    secret: bytes
    shop: MessagingSettings
    clock: Clock

    def config(self) -> TelegramChannel.Config | None:
        """The bot's settings; None unless telegram uses the bot provider. A disabled channel still answers
        its customers: /stop must work whatever the shop's sending settings."""
        with self.uow.session() as session:
            provider, config, _ = settings.load(session, "telegram", secret=self.secret)
        return config if provider == "bot" else None

    def api(self) -> tuple[BotApi, TelegramChannel.Config]:
        """A client for the configured bot; NotFound when there is none."""
        config = self.config()
        if config is None:
            raise NotFound("telegram is not configured with the bot provider", field="telegram")
        return BotApi.from_config(config, max_connections=1), config

    def handle_update(self, api: BotApi, update: dict, *, now: datetime) -> None:
        """Act on one Update (a message or a button press) and answer it; BotApiError when an answer fails."""
        with self.uow.session() as session:
            calls = self._respond(session, update, naive_utc(now))
        for method, params in calls:
            api.call(method, **params)

    def _respond(self, session: Session, update: dict, now: datetime) -> list[Call]:
        if isinstance(query := update.get("callback_query"), dict):
            return self._button(session, query, now)
        message = update.get("message")
        if not isinstance(message, dict) or (message.get("chat") or {}).get("type") != "private":
            return []  # the bot serves customers one to one; groups and channels are not theirs to link
        if not isinstance(message.get("text"), str):
            return []
        chat = str(message["chat"]["id"])
        command, _, arg = message["text"].strip().partition(" ")
        command = command.split("@")[0].lower()
        customer = _bound(session, chat)
        lang = _lang(customer, message.get("from"))

        def say(key: str) -> list[Call]:
            return [("sendMessage", {"chat_id": chat, "text": self._text(lang, key), "parse_mode": "HTML"})]

        if command == "/start":
            target = customer_from_token(self.secret, arg.strip()) if arg.strip() else None
            if target is not None:
                customer = _bind(session, target, chat, now)
                lang = _lang(customer, message.get("from"))
            if customer is None:
                return say("link")
            preferences.update(session, customer.id, now=now, source="telegram:/start", channels={"telegram": True})
            return say("welcome")
        if customer is None:
            return say("link")
        if command == "/stop":
            preferences.update(session, customer.id, now=now, source="telegram:/stop", channels={"telegram": False})
            return say("stopped")
        if command == "/settings":
            prefs = preferences.get(session, customer.id)
            return [
                (
                    "sendMessage",
                    {
                        "chat_id": chat,
                        "text": self._settings_text(lang, prefs),
                        "parse_mode": "HTML",
                        "reply_markup": _keyboard(lang, prefs),
                    },
                )
            ]
        if command == "/bonus":
            text = _balance(session, customer, lang, now, self.shop.shop_url)
            return [("sendMessage", {"chat_id": chat, "text": text, "parse_mode": "HTML"})]
        return say("help")

    def _text(self, lang: str, key: str) -> str:
        shop = self.shop
        return TEXT[lang][key].format(shop=html.escape(shop.shop_name), url=html.escape(shop.shop_url))

    def _settings_text(self, lang: str, prefs: dict[str, Any]) -> str:
        """The preference centre's message: the topics, ticked when on, and the frequency."""
        words = TEXT[lang]
        topics = [f"{'✅' if on else '▫️'} {words['topics'][t]}" for t, on in prefs["topics"].items()]
        return "\n".join(
            [
                self._text(lang, "settings"),
                "",
                *topics,
                "",
                f"{words['how_often']}: {words['frequencies'][prefs['frequency']]}",
            ]
        )

    def _button(self, session: Session, query: dict, now: datetime) -> list[Call]:
        """A press in the preference centre: apply it, confirm it, redraw the buttons (only when they change:
        Telegram refuses an edit that changes nothing)."""
        message = query.get("message") or {}
        chat = str((message.get("chat") or {}).get("id", (query.get("from") or {}).get("id")))
        customer = _bound(session, chat)
        lang = _lang(customer, query.get("from"))

        def answer(key: str | None = None, **extra: Any) -> Call:
            text = {"text": self._text(lang, key)} if key else {}
            return "answerCallbackQuery", {"callback_query_id": query.get("id"), **text, **extra}

        def edit(text: str, markup: dict | None = None) -> Call:
            return "editMessageText", {
                "chat_id": chat,
                "message_id": message.get("message_id"),
                "text": text,
                "parse_mode": "HTML",
                "reply_markup": markup,
            }

        if customer is None:
            return [answer("link", show_alert=True)]
        before = preferences.get(session, customer.id)
        data = str(query.get("data") or "").split(":")
        try:
            if data[:2] == ["pref", "t"] and len(data) == 4:
                after = preferences.update(
                    session, customer.id, now=now, source="telegram:/settings", topics={data[2]: data[3] == "on"}
                )
            elif data[:2] == ["pref", "f"] and len(data) == 3:
                after = preferences.update(
                    session, customer.id, now=now, source="telegram:/settings", frequency=data[2]
                )
            elif data == ["pref", "stop"]:
                preferences.unsubscribe_all(session, customer.id, now=now, source="telegram:/settings")
                return [answer("saved"), edit(self._text(lang, "all_stopped"))]
            else:
                return [answer()]  # a button from an older bot, or a forged one
        except ValidationFailed:
            return [answer()]  # a topic or frequency that no longer exists
        if after == before or message.get("message_id") is None:
            return [answer("saved")]
        return [answer("saved"), edit(self._settings_text(lang, after), _keyboard(lang, after))]

    def set_webhook(self, url: str) -> None:
        """Ask Telegram to POST the bot's updates to `url` (…/hooks/telegram) with the webhook secret."""
        api, config = self.api()
        try:
            if config.webhook_secret is None:
                raise ValidationFailed(
                    [{"field": "config.webhook_secret", "reason": "set one first: the webhook checks it"}]
                )
            api.call(
                "setWebhook",
                url=url,
                secret_token=config.webhook_secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
            )
        except BotApiError as exc:
            raise BoomerangError(f"Telegram refused the webhook: {exc.description}", field="url") from None
        finally:
            api.close()

    def polling_config(self) -> TelegramChannel.Config | None:
        """The bot's settings when its updates must be fetched by long polling (see `polls`); None when
        telegram has no bot, or Telegram pushes the updates to a webhook. BotApiError when Telegram cannot
        be asked (unreachable, a wrong token)."""
        config = self.config()
        if config is None:
            return None
        api = BotApi.from_config(config, max_connections=1)
        try:
            return config if polls(config, _webhook_url(api)) else None
        finally:
            api.close()

    def keep_polling(self, stop: threading.Event, *, timeout: int = 25, recheck: float = RECHECK_SECONDS) -> None:
        """`boomerang serve`'s poller: `poll` while the settings have a bot and Telegram no webhook, until `stop`
        is set. Both are looked at again every `recheck` seconds, so a token added in the dashboard or a webhook
        set meanwhile counts without a restart. Failures (unreachable, a wrong token, 409 because a webhook was
        set or another poller runs) are logged and tried again, waiting 2, 4, 8... up to `recheck` seconds."""
        failures = 0
        while not stop.is_set():
            try:
                if self.polling_config() is None:
                    stop.wait(recheck)  # no bot, or Telegram pushes to a webhook: look again later
                else:
                    self.poll(timeout=timeout, stop=stop, seconds=recheck)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - serve goes on; the next try may find Telegram or the store back
                failures += 1
                wait = min(2.0**failures, recheck)
                _report(exc, wait)
                stop.wait(wait)

    def poll(
        self,
        *,
        timeout: int = 25,
        stop: threading.Event | None = None,
        max_rounds: int | None = None,
        seconds: float | None = None,
        on_round: Callable[[int], None] | None = None,
    ) -> int:
        """Fetch updates with getUpdates and handle each once, until `stop` is set, after `max_rounds`
        requests or once `seconds` have passed; returns how many were handled. Rate limits and server errors
        wait and try again. Telegram keeps the offset: what was handled is confirmed (by the next request, or
        on the way out), so a new poller, after a restart, starts at the first update not handled."""
        api, _ = self.api()
        stop = stop or threading.Event()
        deadline = None if seconds is None else time.monotonic() + seconds
        offset: int | None = None
        handled = rounds = 0
        backoff = 1.0

        def more() -> bool:
            return (
                not stop.is_set()
                and (max_rounds is None or rounds < max_rounds)
                and (deadline is None or time.monotonic() < deadline)
            )

        try:
            while more():
                rounds += 1
                try:
                    updates = api.call("getUpdates", offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES)
                except BotApiError as exc:
                    if not exc.temporary:  # a wrong token, or a webhook is set: waiting will not help
                        raise BoomerangError(
                            f"Telegram refused getUpdates: {exc.description}", field="telegram"
                        ) from None
                    wait = backoff if exc.retry_after is None else exc.retry_after
                    log.warning("telegram: getUpdates failed (%s); trying again in %g s", exc, wait)
                    stop.wait(wait)
                    backoff = min(backoff * 2, 60)
                    continue
                backoff = 1.0
                for update in updates:
                    try:
                        self.handle_update(api, update, now=self.clock.now())
                    except BotApiError as exc:  # the change is kept; only the answer is lost
                        log.warning("telegram: answering update %s failed: %s", update["update_id"], exc)
                    # confirmed only once handled: an update that crashes the poller comes again after a restart
                    offset = update["update_id"] + 1
                    handled += 1
                if on_round:
                    on_round(handled)
        finally:
            _confirm(api, offset)
            api.close()
        return handled
