"""SMS text arithmetic: GSM-7 or UCS-2, how many parts a text costs, and Cyrillic to Latin transliteration.

A single SMS holds 160 GSM-7 septets or 70 UTF-16 code units; a concatenated one gives up room
for its header, leaving 153 or 67 per part. Extension characters (€, brackets...) are an escape
plus a septet, and neither they nor a surrogate pair are ever split across two parts.
"""

from __future__ import annotations

import re
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

# GSM 03.38 default alphabet (without the escape itself) and its extension table
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
SINGLE = {"gsm7": 160, "ucs2": 70}
MULTI = {"gsm7": 153, "ucs2": 67}


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` has a GSM-7 encoding."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def encoding(text: str) -> Encoding:
    return "gsm7" if is_gsm7(text) else "ucs2"


def _cost(char: str, enc: Encoding) -> int:
    if enc == "gsm7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1  # a surrogate pair outside the Basic Multilingual Plane


def length(text: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) that `text` takes."""
    enc = encoding(text)
    return sum(_cost(c, enc) for c in text)


def parts(text: str) -> tuple[Encoding, int]:
    """The encoding a text is sent in and how many SMS parts it costs (0 for an empty text)."""
    enc = encoding(text)
    costs = [_cost(c, enc) for c in text]
    if sum(costs) <= SINGLE[enc]:
        return enc, 1 if text else 0
    count, used = 1, 0
    for cost in costs:
        if used + cost > MULTI[enc]:  # the character does not fit whole: it starts the next part
            count, used = count + 1, 0
        used += cost
    return enc, count


# -- transliteration -------------------------------------------------------------------------------

_COMMON = {
    "а": "a",
    "б": "b",
    "в": "v",
    "д": "d",
    "е": "e",
    "ж": "zh",
    "з": "z",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ь": "",
}
RUSSIAN = {**_COMMON, "г": "g", "и": "i", "й": "y", "ё": "yo", "ъ": "", "ы": "y", "э": "e", "ю": "yu", "я": "ya"}
# Ukrainian after the official 2010 table (KMU resolution 55): є, ї, й, ю, я differ at the start of a word
UKRAINIAN = {**_COMMON, "г": "h", "ґ": "g", "и": "y", "і": "i", "ї": "i", "й": "i", "є": "ie", "ю": "iu", "я": "ia"}
UKRAINIAN_INITIAL = {"є": "ye", "ї": "yi", "й": "y", "ю": "yu", "я": "ya"}
# typography common in Cyrillic texts that GSM-7 lacks, so that transliterated text really is GSM-7
PUNCTUATION = {
    "«": '"',
    "»": '"',
    "„": '"',
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "ʼ": "'",
    "–": "-",
    "—": "-",
    "…": "...",
    "№": "No.",
    "\u00a0": " ",
}
_APOSTROPHE = re.compile(r"(?<=[а-яёіїєґ])['’ʼ](?=[а-яёіїєґ])", re.IGNORECASE)
_UKRAINIAN_ONLY = frozenset("іїєґІЇЄҐ")


def language(text: str) -> Literal["uk", "ru"]:
    """Ukrainian when the text has a letter only Ukrainian uses, else Russian."""
    return "uk" if any(c in _UKRAINIAN_ONLY for c in text) else "ru"


def transliterate(text: str, lang: str | None = None) -> str:
    """Russian or Ukrainian Cyrillic in Latin letters, keeping case; `lang` "uk" or "ru" (guessed when None)."""
    lang = lang if lang in ("uk", "ru") else language(text)
    table = UKRAINIAN if lang == "uk" else RUSSIAN
    if lang == "uk":
        text = _APOSTROPHE.sub("", text)  # the Ukrainian apostrophe is not transliterated
    out: list[str] = []
    for i, char in enumerate(text):
        lower = char.lower()
        if lower not in table:
            out.append(PUNCTUATION.get(char, char))
            continue
        word_start = i == 0 or not text[i - 1].isalpha()
        latin = UKRAINIAN_INITIAL[lower] if lang == "uk" and word_start and lower in UKRAINIAN_INITIAL else table[lower]
        if lang == "uk" and lower == "г" and i and text[i - 1].lower() == "з":
            latin = "gh"  # зг is zgh, to tell it from зх (zkh)
        if char != lower:
            latin = latin.upper() if _shouting(text, i) else latin.capitalize()
        out.append(latin)
    return "".join(out)


def _shouting(text: str, i: int) -> bool:
    """Whether the capital at `i` is part of an all-caps word (ЖУК -> ZHUK, Жук -> Zhuk)."""
    neighbour = text[i + 1] if i + 1 < len(text) and text[i + 1].isalpha() else text[i - 1] if i else ""
    return neighbour.isalpha() and neighbour.isupper()
