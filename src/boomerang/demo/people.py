"""Customer profiles of the demo shop: names (Latin and Cyrillic), contacts, birthdays, places, consents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

LOCALES = ("en", "uk", "ru")

# Country, share of customers, locale shares (en, uk, ru), phone prefix, cities as (city, timezone, UTC offset).
# Offsets are standard time: the simulator only needs a plausible local hour for each visit.
COUNTRIES = [
    (
        "UA",
        0.46,
        (0.02, 0.86, 0.12),
        "+38067",
        [
            ("Kyiv", "Europe/Kyiv", 2),
            ("Lviv", "Europe/Kyiv", 2),
            ("Odesa", "Europe/Kyiv", 2),
            ("Kharkiv", "Europe/Kyiv", 2),
            ("Dnipro", "Europe/Kyiv", 2),
            ("Vinnytsia", "Europe/Kyiv", 2),
        ],
    ),
    (
        "PL",
        0.12,
        (0.35, 0.60, 0.05),
        "+4850",
        [("Warsaw", "Europe/Warsaw", 1), ("Kraków", "Europe/Warsaw", 1), ("Wrocław", "Europe/Warsaw", 1)],
    ),
    (
        "DE",
        0.12,
        (0.60, 0.30, 0.10),
        "+49151",
        [
            ("Berlin", "Europe/Berlin", 1),
            ("Munich", "Europe/Berlin", 1),
            ("Hamburg", "Europe/Berlin", 1),
            ("Leipzig", "Europe/Berlin", 1),
        ],
    ),
    (
        "GB",
        0.10,
        (0.90, 0.08, 0.02),
        "+44770",
        [("London", "Europe/London", 0), ("Manchester", "Europe/London", 0), ("Edinburgh", "Europe/London", 0)],
    ),
    (
        "US",
        0.06,
        (0.92, 0.05, 0.03),
        "+1202",
        [
            ("New York", "America/New_York", -5),
            ("Chicago", "America/Chicago", -6),
            ("San Francisco", "America/Los_Angeles", -8),
        ],
    ),
    ("KZ", 0.05, (0.10, 0.00, 0.90), "+7701", [("Almaty", "Asia/Almaty", 5), ("Astana", "Asia/Almaty", 5)]),
    ("MD", 0.05, (0.20, 0.05, 0.75), "+3736", [("Chișinău", "Europe/Chisinau", 2)]),
    ("LV", 0.04, (0.45, 0.05, 0.50), "+3712", [("Riga", "Europe/Riga", 2)]),
]

FIRST = {
    ("en", 0): "James Oliver Jack Harry George Noah Liam Ethan Daniel Thomas Samuel Michael Lucas Adam",
    ("en", 1): "Olivia Emma Amelia Sophia Isla Charlotte Grace Emily Chloe Lucy Hannah Ava Mia Ella",
    ("uk", 0): "Андрій Олександр Дмитро Максим Богдан Тарас Іван Микола Сергій Юрій Остап Владислав Євген",
    ("uk", 1): "Олена Оксана Ірина Марія Наталія Тетяна Юлія Катерина Софія Анна Дарина Христина Ярослава",
    ("ru", 0): "Алексей Дмитрий Сергей Андрей Михаил Никита Артём Иван Павел Егор Кирилл",
    ("ru", 1): "Анна Мария Екатерина Ольга Наталья Татьяна Елена Светлана Ксения Дарья Алина",
}
LAST = {
    (
        "en",
        0,
    ): "Smith Jones Taylor Brown Williams Wilson Johnson Davies Evans Walker Wright Thompson White Hughes Clarke",
    ("uk", 0): "Шевченко Коваленко Бондаренко Ткаченко Кравченко Мельник Бойко Коваль Савченко Лисенко Гончар Руденко "
    "Петренко Мороз Павленко Ковальський Левицький Яковенко Гнатюк",
    ("ru", 0): "Иванов Смирнов Кузнецов Попов Соколов Лебедев Козлов Новиков Морозов Волков Павлов Фёдоров",
}
_TRANSLIT = dict(
    zip(
        "абвгґдеєжзиіїйклмнопрстуфхцчшщьюяёэыъ",
        "a b v h g d e ie zh z y i i i k l m n o p r s t u f kh ts ch sh shch _ iu ia e e y _".split(),
    )
)


def _feminine(last: str, locale: str) -> str:
    """Slavic surnames in -ов/-ев/-ин and -ський agree with a woman's name."""
    if locale == "ru" and last.endswith(("ов", "ев", "ёв", "ин")):
        return last + "а"
    if locale == "uk" and last.endswith("ький"):
        return last[:-2] + "а"
    return last


_RUSSIAN = {**_TRANSLIT, "г": "g", "и": "i", "е": "e", "х": "kh", "й": "y"}


def _latin(text: str, locale: str) -> str:
    """An ASCII spelling of a name for its e-mail address."""
    table = _RUSSIAN if locale == "ru" else _TRANSLIT
    out = "".join(table.get(ch, ch) for ch in text.lower()).replace("_", "")
    return "".join(ch for ch in out if ch.isascii() and ch.isalnum())


@dataclass
class People:
    """Profiles of a slice of customers: the frame to load, the Identify traits and the local clock."""

    frame: pd.DataFrame
    traits: list[dict]  # the first Identify's traits, consents included
    late: list[dict | None]  # a later Identify's traits (Telegram connected, email withdrawn), or None
    offset: np.ndarray  # hours from UTC, for the local hour of visits


def places(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Country index and UTC offset for n people (visitors who never sign up need no more)."""
    shares = np.array([c[1] for c in COUNTRIES])
    country = rng.choice(len(COUNTRIES), size=n, p=shares / shares.sum())
    city = (rng.random(n) * np.array([len(COUNTRIES[c][4]) for c in country])).astype(int)
    offset = np.array([COUNTRIES[c][4][k][2] for c, k in zip(country, city)], float)
    return np.stack([country, city]), offset


def profiles(rng: np.random.Generator, numbers: np.ndarray, *, seed: int, first_day: date, width: int) -> People:
    """Profiles for the customers numbered `numbers` (1-based); contacts are unique per number."""
    n = len(numbers)
    where, offset = places(rng, n)
    country, city = where
    gender = (rng.random(n) < 0.62).astype(int)  # the shop sells more to women, as such shops do
    u = rng.random(n)
    rows, traits, late = [], [], []
    domains = ("example.org", "example.com")
    has_phone = rng.random(n) < 0.55
    tg_share = np.where(np.isin(country, [0, 5, 6]), 0.45, 0.15)
    has_tg = rng.random(n) < tg_share
    tg_later = rng.random(n) < 0.4
    has_birthday = rng.random(n) < 0.87
    age = np.clip(rng.normal(36, 11, n), 18, 75)
    birth_doy = rng.integers(0, 365, n)
    consent_u = rng.random((n, 4))
    withdraws = rng.random(n) < 0.06
    style = rng.integers(0, 3, n)
    pick = rng.random((n, 2))
    for i in range(n):
        code, _, locale_shares, prefix, cities = COUNTRIES[country[i]]
        name_city, tz, _ = cities[city[i]]
        locale = LOCALES[int(np.searchsorted(np.cumsum(locale_shares), u[i] * sum(locale_shares), side="right"))]
        firsts = FIRST[(locale, gender[i])].split()
        lasts = LAST[(locale, 0)].split()
        first = firsts[int(pick[i, 0] * len(firsts))]
        last = lasts[int(pick[i, 1] * len(lasts))]
        if gender[i]:
            last = _feminine(last, locale)
        number = int(numbers[i])
        given, family = _latin(first, locale), _latin(last, locale)
        local = (f"{given}.{family}{number}", f"{given[0]}{family}{number}", f"{given}{number}")[style[i]]
        email = f"{local}@{domains[number % 2]}"
        # Multiplying by a prime coprime with the modulus keeps numbers unique per customer.
        phone = f"{prefix}{(number * 7919 + seed * 31) % 10_000_000:07d}" if has_phone[i] else None
        chat = str(100_000_000 + (number * 104_729 + seed) % 900_000_000) if has_tg[i] else None
        birthday = None
        if has_birthday[i]:
            birthday = date(first_day.year - int(age[i]), 1, 1) + timedelta(days=int(birth_doy[i]))
        consents = {"email": bool(consent_u[i, 0] < 0.74)}
        if phone:
            consents["sms"] = bool(consent_u[i, 1] < 0.35)
        if consent_u[i, 3] < 0.3:
            consents["webpush"] = bool(consent_u[i, 2] < 0.7)
        profile = {
            "email": email,
            "phone": phone,
            "first_name": first,
            "last_name": last,
            "birthday": birthday,
            "city": name_city,
            "country": code,
            "timezone": tz,
            "locale": locale,
        }
        trait = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in profile.items() if v is not None}
        later = None
        if chat and tg_later[i]:
            later = {"telegram_chat_id": chat, "consents": {"telegram": True}}
        elif chat:
            trait["telegram_chat_id"] = chat
            consents["telegram"] = True
        if withdraws[i] and consents["email"] and later is None:
            later = {"consents": {"email": False}}
        trait["consents"] = consents
        rows.append({"external_id": f"demo-{number:0{width}d}", **profile, "telegram_chat_id": chat})
        traits.append(trait)
        late.append(later)
    frame = pd.DataFrame(
        rows,
        columns=[
            "external_id",
            "email",
            "phone",
            "telegram_chat_id",
            "first_name",
            "last_name",
            "birthday",
            "city",
            "country",
            "timezone",
            "locale",
        ],
    )
    return People(frame=frame, traits=traits, late=late, offset=offset)
