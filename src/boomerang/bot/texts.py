"""What the customer bot says, in English, Russian and Ukrainian (Telegram HTML)."""

from __future__ import annotations

from typing import Any

from boomerang.messaging import preferences

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
        "pending": "Pending (spendable later): {points}",
        "expiring": "Expiring on {date}: <b>{points}</b>",
        "tier": "Your tier: <b>{tier}</b>",
        "next_tier": "To reach {tier}: {missing} more",
        "missing_spend": "{amount} in orders",
        "missing_orders": "{orders} orders",
        "or": " or ",
        "codes": "Your promo codes:",
        "referral": "Invite a friend: {link}",
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
        "pending": "Ожидают начисления: {points}",
        "expiring": "Сгорят {date}: <b>{points}</b>",
        "tier": "Ваш уровень: <b>{tier}</b>",
        "next_tier": "До уровня «{tier}»: ещё {missing}",
        "missing_spend": "{amount} в заказах",
        "missing_orders": "заказов: {orders}",
        "or": " или ",
        "codes": "Ваши промокоды:",
        "referral": "Пригласите друга: {link}",
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
        "pending": "Очікують нарахування: {points}",
        "expiring": "Згорять {date}: <b>{points}</b>",
        "tier": "Ваш рівень: <b>{tier}</b>",
        "next_tier": "До рівня «{tier}»: ще {missing}",
        "missing_spend": "{amount} у замовленнях",
        "missing_orders": "замовлень: {orders}",
        "or": " або ",
        "codes": "Ваші промокоди:",
        "referral": "Запросіть друга: {link}",
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
