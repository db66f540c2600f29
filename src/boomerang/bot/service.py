"""The customer-facing Telegram bot: a deep link binds a chat to a customer, commands manage what they get.

/start <token> links the chat and grants consent, /stop withdraws it, /settings is the preference centre
as buttons, /bonus shows points and promo codes. Updates come by webhook (api/routers/hooks_telegram.py,
with its `set_webhook`) or by long polling (`poll`); each is handled in one transaction and the replies go
out after it commits, so no database lock is held while Telegram is slow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.channels import config as settings
from boomerang.channels.telegram import BotApi, BotApiError, TelegramChannel, inline_keyboard
from boomerang.core.clock import naive_utc
from boomerang.core.errors import BoomerangError, NotFound, ValidationFailed
from boomerang.customers.models import Customer, Identity
from boomerang.loyalty.models import LoyaltyEntry
from boomerang.messaging import preferences

if TYPE_CHECKING:
    from boomerang.bootstrap import Workspace

__all__ = [
    "BotApi",
    "BotApiError",
    "bot_api",
    "bot_config",
    "customer_from_token",
    "deep_link",
    "handle_update",
    "link_token",
    "poll",
]

log = logging.getLogger("boomerang.telegram")
ALLOWED_UPDATES = ["message", "callback_query"]
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_MAC_CHARS = 14  # 10 bytes of HMAC in base64 without padding
Call = tuple[str, dict[str, Any]]  # a Bot API method and its parameters, made once the transaction commits

# What the bot says (Telegram HTML; {shop} and {url} are the shop's name and site).
TEXT: dict[str, dict[str, Any]] = {
    "en": {
        "welcome": "Welcome to {shop}! Your offers and news will come here.\n/settings: what we write about and how "
        "often\n/bonus: your points and promo codes\n/stop: no more messages here",
        "link": "This chat is not linked to a {shop} account yet: open the Telegram link on your account page at {url}.",
        "stopped": "Done: {shop} will not write here any more. Send /start to get messages again.",
        "settings": "<b>Your preferences</b>\nTap a topic to turn it on or off, and choose how often we write.",
        "how_often": "How often",
        "points": "Your points: <b>{points}</b>",
        "codes": "Your promo codes:",
        "help": "Commands: /settings, /bonus, /stop.",
        "saved": "Saved",
        "stop_all": "Unsubscribe from everything",
        "all_stopped": "You are unsubscribed from all {shop} messages, on every channel. Send /start to get them here again.",
        "topics": preferences.TOPICS,
        "frequencies": {"normal": "As usual", "weekly": "At most once a week", "monthly": "At most once a month"},
    },
    "ru": {
        "welcome": "Добро пожаловать в {shop}! Здесь будут ваши предложения и новости.\n/settings — о чём и как часто "
        "писать\n/bonus — ваши баллы и промокоды\n/stop — больше не писать сюда",
        "link": "Этот чат ещё не связан с аккаунтом {shop}: откройте ссылку на Telegram в личном кабинете на {url}.",
        "stopped": "Готово: {shop} больше не будет писать сюда. Отправьте /start, чтобы снова получать сообщения.",
        "settings": "<b>Ваши настройки</b>\nНажмите на тему, чтобы включить или выключить её, и выберите, как часто писать.",
        "how_often": "Как часто",
        "points": "Ваши баллы: <b>{points}</b>",
        "codes": "Ваши промокоды:",
        "help": "Команды: /settings, /bonus, /stop.",
        "saved": "Сохранено",
        "stop_all": "Отписаться от всего",
        "all_stopped": "Вы отписаны от всех сообщений {shop} во всех каналах. Отправьте /start, чтобы снова получать их здесь.",
        "topics": {
            "offers": "Акции и скидки",
            "new_arrivals": "Новинки и поступления",
            "reminders": "Напоминания (корзина, пополнение запасов)",
            "loyalty": "Баллы, бонусы и ваш уровень",
            "feedback": "Отзывы и опросы",
            "news": "Новости магазина",
        },
        "frequencies": {"normal": "Как обычно", "weekly": "Не чаще раза в неделю", "monthly": "Не чаще раза в месяц"},
    },
    "uk": {
        "welcome": "Вітаємо в {shop}! Тут будуть ваші пропозиції та новини.\n/settings — про що і як часто "
        "писати\n/bonus — ваші бали та промокоди\n/stop — більше не писати сюди",
        "link": "Цей чат ще не пов'язаний з акаунтом {shop}: відкрийте посилання на Telegram в особистому кабінеті на {url}.",
        "stopped": "Готово: {shop} більше не писатиме сюди. Надішліть /start, щоб знову отримувати повідомлення.",
        "settings": "<b>Ваші налаштування</b>\nНатисніть на тему, щоб увімкнути чи вимкнути її, і оберіть, як часто писати.",
        "how_often": "Як часто",
        "points": "Ваші бали: <b>{points}</b>",
        "codes": "Ваші промокоди:",
        "help": "Команди: /settings, /bonus, /stop.",
        "saved": "Збережено",
        "stop_all": "Відписатися від усього",
        "all_stopped": "Ви відписані від усіх повідомлень {shop} у всіх каналах. Надішліть /start, щоб знову отримувати їх тут.",
        "topics": {
            "offers": "Акції та знижки",
            "new_arrivals": "Новинки та надходження",
            "reminders": "Нагадування (кошик, поповнення запасів)",
            "loyalty": "Бали, бонуси та ваш рівень",
            "feedback": "Відгуки та опитування",
            "news": "Новини магазину",
        },
        "frequencies": {
            "normal": "Як зазвичай",
            "weekly": "Не частіше разу на тиждень",
            "monthly": "Не частіше разу на місяць",
        },
    },
}


# -- deep links ------------------------------------------------------------------------------------


def _mac(ws: Workspace, customer_id: str) -> str:
    key = hashlib.sha256(b"boomerang-telegram-link\0" + ws.secret).digest()
    digest = hmac.new(key, customer_id.encode(), hashlib.sha256).digest()[:10]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def link_token(ws: Workspace, customer_id: str) -> str:
    """A signed /start parameter naming the customer: at most 55 characters of A-Za-z0-9_- (Telegram allows 64).

    Customer ids are already in that alphabet, so they go in as they are: base64 would push a 40-character
    id past Telegram's limit."""
    if not _ID.fullmatch(customer_id):
        raise ValidationFailed([{"field": "customer", "reason": "cannot be put in a Telegram link"}])
    return f"{customer_id}_{_mac(ws, customer_id)}"


def customer_from_token(ws: Workspace, token: str) -> str | None:
    """The customer id a link token was made for; None when it is malformed or altered."""
    customer_id, sep, mac = token[: -_MAC_CHARS - 1], token[-_MAC_CHARS - 1 : -_MAC_CHARS], token[-_MAC_CHARS:]
    if sep != "_" or not _ID.fullmatch(customer_id) or not hmac.compare_digest(mac, _mac(ws, customer_id)):
        return None
    return customer_id


def deep_link(ws: Workspace, customer_id: str, bot_username: str) -> str:
    """The t.me link that opens the bot and, on Start, links the chat to the customer."""
    return f"https://t.me/{bot_username.lstrip('@')}?start={link_token(ws, customer_id)}"


# -- settings --------------------------------------------------------------------------------------


def bot_config(ws: Workspace) -> TelegramChannel.Config | None:
    """The bot's settings; None unless telegram uses the bot provider. A disabled channel still answers
    its customers: /stop must work whatever the shop's sending settings."""
    with ws.uow.session() as session:
        provider, config, _ = settings.load(ws, session, "telegram")
    return config if provider == "bot" else None


def bot_api(ws: Workspace) -> tuple[BotApi, TelegramChannel.Config]:
    """A client for the configured bot; NotFound when there is none."""
    config = bot_config(ws)
    if config is None:
        raise NotFound("telegram is not configured with the bot provider", field="telegram")
    return BotApi.from_config(config, max_connections=1), config


# -- updates ---------------------------------------------------------------------------------------


def handle_update(ws: Workspace, api: BotApi, update: dict, *, now: datetime) -> None:
    """Act on one Update (a message or a button press) and answer it; BotApiError when an answer fails."""
    with ws.uow.session() as session:
        calls = _respond(ws, session, update, naive_utc(now))
    for method, params in calls:
        api.call(method, **params)


def _lang(customer: Customer | None, sender: dict | None) -> str:
    """ru or uk when the customer's locale (or, for strangers, their Telegram language) says so; else en."""
    locale = (customer.locale if customer and customer.locale else (sender or {}).get("language_code")) or ""
    return locale[:2].lower() if locale[:2].lower() in TEXT else "en"


def _bound(session: Session, chat: str) -> Customer | None:
    return session.scalars(
        sa.select(Customer).where(Customer.telegram_chat_id == chat, Customer.merged_into_id.is_(None))
    ).first()


def _respond(ws: Workspace, session: Session, update: dict, now: datetime) -> list[Call]:
    if isinstance(query := update.get("callback_query"), dict):
        return _button(ws, session, query, now)
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
        return [("sendMessage", {"chat_id": chat, "text": _text(ws, lang, key), "parse_mode": "HTML"})]

    if command == "/start":
        target = customer_from_token(ws, arg.strip()) if arg.strip() else None
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
                    "text": _settings_text(ws, lang, prefs),
                    "parse_mode": "HTML",
                    "reply_markup": _keyboard(lang, prefs),
                },
            )
        ]
    if command == "/bonus":
        return [
            ("sendMessage", {"chat_id": chat, "text": _balance(session, customer, lang, now), "parse_mode": "HTML"})
        ]
    return say("help")


def _bind(session: Session, customer_id: str, chat: str, now: datetime) -> Customer | None:
    """Make `chat` the customer's Telegram address; a chat belongs to the last customer who linked it."""
    try:
        customer = session.get(Customer, preferences.get(session, customer_id)["customer_id"])  # follows merges
    except NotFound:
        return None
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


def _text(ws: Workspace, lang: str, key: str) -> str:
    shop = ws.settings.messaging
    return TEXT[lang][key].format(shop=html.escape(shop.shop_name), url=html.escape(shop.shop_url))


def _settings_text(ws: Workspace, lang: str, prefs: dict[str, Any]) -> str:
    """The preference centre's message: the topics, ticked when on, and the frequency."""
    words = TEXT[lang]
    topics = [f"{'✅' if on else '▫️'} {words['topics'][t]}" for t, on in prefs["topics"].items()]
    return "\n".join(
        [
            _text(ws, lang, "settings"),
            "",
            *topics,
            "",
            f"{words['how_often']}: {words['frequencies'][prefs['frequency']]}",
        ]
    )


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


def _button(ws: Workspace, session: Session, query: dict, now: datetime) -> list[Call]:
    """A press in the preference centre: apply it, confirm it, redraw the buttons (only when they change:
    Telegram refuses an edit that changes nothing)."""
    message = query.get("message") or {}
    chat = str((message.get("chat") or {}).get("id", (query.get("from") or {}).get("id")))
    customer = _bound(session, chat)
    lang = _lang(customer, query.get("from"))

    def answer(key: str | None = None, **extra: Any) -> Call:
        text = {"text": _text(ws, lang, key)} if key else {}
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
            after = preferences.update(session, customer.id, now=now, source="telegram:/settings", frequency=data[2])
        elif data == ["pref", "stop"]:
            preferences.unsubscribe_all(session, customer.id, now=now, source="telegram:/settings")
            return [answer("saved"), edit(_text(ws, lang, "all_stopped"))]
        else:
            return [answer()]  # a button from an older bot, or a forged one
    except ValidationFailed:
        return [answer()]  # a topic or frequency that no longer exists
    if after == before or message.get("message_id") is None:
        return [answer("saved")]
    return [answer("saved"), edit(_settings_text(ws, lang, after), _keyboard(lang, after))]


def _balance(session: Session, customer: Customer, lang: str, now: datetime) -> str:
    """/bonus: the sum of points and the promo codes still valid; entries of profiles merged into this one count."""
    ids = [customer.id, *session.scalars(sa.select(Customer.id).where(Customer.merged_into_id == customer.id))]
    entries = session.scalars(
        sa.select(LoyaltyEntry).where(LoyaltyEntry.customer_id.in_(ids)).order_by(LoyaltyEntry.at)
    ).all()
    codes = [
        f"<code>{html.escape(e.code)}</code>"
        + (f" −{e.discount_percent:g}%" if e.discount_percent else "")
        + (f" (→ {e.expires_at:%Y-%m-%d})" if e.expires_at else "")
        for e in entries
        if e.kind == "promo_code" and e.code and (e.expires_at is None or e.expires_at > now)
    ]
    lines = [TEXT[lang]["points"].format(points=sum(e.points or 0 for e in entries))]
    return "\n".join(lines + (["", TEXT[lang]["codes"], *codes] if codes else []))


# -- long polling ----------------------------------------------------------------------------------


def poll(
    ws: Workspace,
    *,
    timeout: int = 25,
    stop: threading.Event | None = None,
    max_rounds: int | None = None,
    on_round: Callable[[int], None] | None = None,
) -> int:
    """Fetch updates with getUpdates and handle each once, until `stop` is set or after `max_rounds`
    requests; returns how many were handled. Rate limits and server errors wait and try again."""
    api, _ = bot_api(ws)
    stop = stop or threading.Event()
    offset: int | None = None
    handled = rounds = 0
    backoff = 1.0
    try:
        while not stop.is_set() and (max_rounds is None or rounds < max_rounds):
            rounds += 1
            try:
                updates = api.call("getUpdates", offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES)
            except BotApiError as exc:
                if not exc.temporary:  # a wrong token, or a webhook is set: waiting will not help
                    raise BoomerangError(f"Telegram refused getUpdates: {exc.description}", field="telegram") from None
                stop.wait(backoff if exc.retry_after is None else exc.retry_after)
                backoff = min(backoff * 2, 60)
                continue
            backoff = 1.0
            for update in updates:
                try:
                    handle_update(ws, api, update, now=ws.clock.now())
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


def _confirm(api: BotApi, offset: int | None) -> None:
    """Tell Telegram the updates before `offset` are done, so that the next poll does not see them again."""
    if offset is None:
        return
    try:
        api.call("getUpdates", offset=offset, limit=1, timeout=0)
    except BotApiError as exc:
        log.warning("telegram: confirming updates failed: %s", exc)
