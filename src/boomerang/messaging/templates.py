"""Templates: one message, its locales, and its form on each channel, rendered in a sandbox.

A template's `locales` map a locale (en, ru, uk...) to common fields (`subject`, `text`, `url`,
`buttons`) and per-channel overrides (`email: {subject, html, text}`, `telegram: {text, buttons}`,
`sms: {text}`, `webpush: {title, body, url}`, `inapp: {title, body, url}`): the same meaning, in each
channel's own form. A field a channel does not override comes from the common ones.

Rendering runs in Jinja2's immutable sandbox (no attribute of internals, no mutation of the data),
HTML fields autoescaped (email html, Telegram text), with the filters `plural` (CLDR plural forms
through Babel: one/few/many/other), `money` and `date` in the customer's locale, and the function
`recommend(block, size=4)` (a recommendation block's products; the composer gives it, an empty list without).
A button whose label or link renders empty is left out: `{{ recommend('cart', 3)[2].name }}` makes a button
for the third product only when the block has one.
"""

from __future__ import annotations

import html
import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import ChainableUndefined, Template, TemplateError, nodes, pass_context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from boomerang.core.errors import ValidationFailed

CHANNEL_FIELDS = {
    "email": ("subject", "html", "text"),
    "sms": ("text",),
    "telegram": ("text", "buttons"),
    "webpush": ("title", "body", "url"),
    "inapp": ("title", "body", "url"),
    "webhook": ("text",),
}
COMMON = ("subject", "text", "url", "buttons")
HTML_FIELDS = {("email", "html"), ("telegram", "text")}  # rendered with autoescape
FALLBACK = {"title": "subject", "body": "text"}  # push and in-app fields taken from the common ones
TELEGRAM_TAGS = re.compile(r"<(?!/?(?:b|strong|i|em|u|ins|s|strike|del|a|code|pre|tg-spoiler)\b)[^>]*>")


@dataclass(frozen=True)
class Content:
    """A template rendered for one channel and locale."""

    subject: str | None = None
    text: str = ""
    html: str | None = None
    url: str | None = None
    buttons: tuple[tuple[str, str], ...] = ()


def _locale_of(ctx) -> Locale:
    return ctx.get("_locale") or Locale.parse("en")


@pass_context
def plural(ctx, n: Any, one: str = "", few: str | None = None, many: str | None = None, other: str = "") -> str:
    """The word form for `n` in the message's locale: `{{ n }} {{ n|plural(one='бал', few='бали', many='балів') }}`."""
    try:
        form = _plural_form(_locale_of(ctx), abs(float(n)) if float(n) % 1 else abs(int(float(n))))
    except (TypeError, ValueError, TemplateError):  # a missing value (undefined) reads as "other"
        form = "other"
    forms = {"one": one, "few": few, "many": many, "other": other}
    return forms.get(form) or other or many or few or one


@lru_cache(maxsize=4096)
def _plural_form(locale: Locale, n: float | int) -> str:
    return locale.plural_form(n)


@lru_cache(maxsize=65536)
def _money(value: float, currency: str | None, locale: Locale) -> str:
    """Babel formats a price in ~0.15 ms; a campaign repeats the same few prices a hundred thousand times."""
    return format_currency(value, currency, locale=locale) if currency else format_decimal(value, locale=locale)


@pass_context
def money(ctx, amount: Any, currency: str | None = None) -> str:
    try:
        value = float(amount)
    except (TypeError, ValueError, TemplateError):
        return ""
    return _money(value, currency or ctx.get("currency") or None, _locale_of(ctx))


@pass_context
def date_filter(ctx, value: Any, style: str = "medium") -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, date):
        return ""
    return format_date(value, format=style, locale=_locale_of(ctx))


MAX_OUTPUT = 1_000_000  # characters one field may render to
MAX_ITEMS = 100_000  # what `range` and `*` may make in one render, all together
_budget: ContextVar[list[int]] = ContextVar("template_budget")


def _spend(n: int) -> None:
    """Take `n` items from the render's budget; a template that would make more fails instead of hogging."""
    left = _budget.get([MAX_ITEMS])
    left[0] -= n
    if left[0] < 0:
        raise SecurityError(f"the template makes more than {MAX_ITEMS:,} items")


def _range(*args: int) -> range:
    numbers = range(*args)
    _spend(len(numbers))
    return numbers


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with what a template may cost bounded: `range` and repeating a string or
    a list (`'A' * 100000000`) draw on one budget per render, powers stay small, recursion is an error."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 100:
            raise SecurityError("exponents above 100 are not allowed")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    _spend(len(seq) * max(times, 0))
        return super().call_binop(context, operator, left, right)


def _no_recommendations(block: str, size: int = 4) -> tuple:
    """`recommend` where the data brings none (a template rendered alone): no products."""
    return ()


def _env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = _Sandbox(autoescape=autoescape, undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(plural=plural, money=money, date=date_filter)
    env.globals.update(range=_range, recommend=_no_recommendations)
    return env


TEXT_ENV, HTML_ENV = _env(False), _env(True)


@lru_cache(maxsize=256)
def parse_locale(tag: str | None) -> Locale:
    try:
        return Locale.parse((tag or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def choose_locale(locales: dict[str, Any], wanted: str | None, default: str) -> str:
    """The template's locale for a customer's: exact tag, then the language, then the template's default."""
    tag = (wanted or "").replace("_", "-").lower()
    for candidate in (tag, tag.split("-")[0]):
        for name in locales:
            if name.lower() == candidate:
                return name
    return default if default in locales else next(iter(locales))


def check(locales: Any, default_locale: str) -> None:
    """Every field parses and every name is known; ValidationFailed naming `locales.<loc>.<channel>.<field>`."""
    if not isinstance(locales, dict) or not locales:
        raise ValidationFailed([{"field": "locales", "reason": "needs at least one locale, e.g. en"}])
    errors = []
    if default_locale not in locales:
        errors.append({"field": "default_locale", "reason": f"{default_locale!r} is not among the locales"})
    for loc, fields in locales.items():
        if not isinstance(fields, dict):
            errors.append({"field": f"locales.{loc}", "reason": "must be an object of fields"})
            continue
        if parse_locale(loc).language != loc.split("-")[0].split("_")[0].lower():
            errors.append({"field": f"locales.{loc}", "reason": "unknown locale"})
        for name, value in fields.items():
            if name in CHANNEL_FIELDS:
                if not isinstance(value, dict):
                    errors.append({"field": f"locales.{loc}.{name}", "reason": "must be an object of fields"})
                    continue
                for field, text in value.items():
                    errors += _check_field(f"locales.{loc}.{name}.{field}", (name, field), text)
            elif name in COMMON:
                errors += _check_field(f"locales.{loc}.{name}", ("", name), value)
            else:
                errors.append(
                    {
                        "field": f"locales.{loc}.{name}",
                        "reason": f"unknown field (one of {', '.join(COMMON + tuple(CHANNEL_FIELDS))})",
                    }
                )
        if not any(k in fields for k in ("text", "subject")) and not fields.get("email"):
            errors.append({"field": f"locales.{loc}.text", "reason": "a message needs at least a text or a subject"})
    if errors:
        raise ValidationFailed(errors)


def _check_field(path: str, where: tuple[str, str], value: Any) -> list[dict]:
    channel, field = where
    if field == "buttons":
        if not isinstance(value, list) or not all(isinstance(b, dict) and {"label", "url"} <= set(b) for b in value):
            return [{"field": path, "reason": "must be a list of {label, url}"}]
        return [
            e for i, b in enumerate(value) for k in ("label", "url") for e in _check_source(f"{path}[{i}].{k}", b[k])
        ]
    if channel and field not in CHANNEL_FIELDS[channel]:
        return [
            {"field": path, "reason": f"{channel} has no field {field!r} (one of {', '.join(CHANNEL_FIELDS[channel])})"}
        ]
    return _check_source(path, value)


def _check_source(path: str, value: Any) -> list[dict]:
    if not isinstance(value, str):
        return [{"field": path, "reason": "must be text"}]
    try:
        tree = TEXT_ENV.parse(value)
    except TemplateError as exc:
        line = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        return [{"field": path, "reason": f"template error{line}: {exc.message}"}]
    if any(True for _ in tree.find_all(OTHER_TEMPLATES)):
        return [{"field": path, "reason": "include, import and extends are not available: a template stands alone"}]
    return []


OTHER_TEMPLATES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


@lru_cache(maxsize=4096)
def _compiled(source: str, autoescape: bool) -> Template:
    """Compiling is ~50 times the cost of rendering: each source is compiled once per process."""
    return (HTML_ENV if autoescape else TEXT_ENV).from_string(source)


def _render(source: str, data: dict[str, Any], *, autoescape: bool) -> str:
    """One field rendered, its cost bounded (see _Sandbox) and its output cut off at MAX_OUTPUT."""
    token = _budget.set([MAX_ITEMS])
    try:
        out, size = [], 0
        for chunk in _compiled(source, autoescape).generate(data):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise SecurityError(f"the template renders more than {MAX_OUTPUT:,} characters")
            out.append(chunk)
        return "".join(out).strip()
    except (TemplateError, RecursionError, OverflowError, MemoryError) as exc:
        # the sandbox refusing something is a broken template, not a crash
        reason = "it calls itself too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ValidationFailed([{"field": "template", "reason": f"cannot render: {reason}"}]) from None
    finally:
        _budget.reset(token)


def render(locales: dict[str, Any], channel: str, locale: str, data: dict[str, Any]) -> Content:
    """The fields of `channel` in `locale` (already chosen with choose_locale), rendered with `data`."""
    fields = locales[locale]
    own = fields.get(channel) or {}
    ctx = {**data, "_locale": parse_locale(locale)}

    def field(name: str, *, escape: bool = False) -> str | None:
        source = own.get(name) or fields.get(name) or (fields.get(FALLBACK[name]) if name in FALLBACK else None)
        return None if source is None else _render(source, ctx, autoescape=escape)

    buttons = tuple(
        (label, url)
        for b in own.get("buttons") or fields.get("buttons") or ()
        if (label := _render(b["label"], ctx, autoescape=False)) and (url := _render(b["url"], ctx, autoescape=False))
    )
    if channel == "email":
        text = field("text") or ""
        body = field("html", escape=True) or "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n") if p)
        return Content(
            subject=field("subject"), text=text or _text_of(body), html=body, url=field("url"), buttons=buttons
        )
    if channel == "telegram":
        source = own.get("text") or fields.get("text") or ""
        return Content(
            text=TELEGRAM_TAGS.sub("", _render(source, ctx, autoescape=True)), url=field("url"), buttons=buttons
        )
    if channel in ("webpush", "inapp"):
        return Content(subject=field("title"), text=field("body") or "", url=field("url"), buttons=buttons)
    return Content(subject=field("subject"), text=field("text") or "", url=field("url"), buttons=buttons)


def _text_of(markup: str) -> str:
    """A plain-text part from HTML when a template gives none."""
    text = re.sub(r"<(br|/p|/h\d|/li|/tr)\b[^>]*>", "\n", markup, flags=re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
