"""The email designer's blocks: a design (a list of blocks with their settings, kept as `email.design` in a
template's locale) checked, and turned into responsive HTML through MJML (mrml, MJML's Rust port) at save time.

The HTML keeps the personalisation as Jinja (`{{ first_name }}`, the loops over products and lines), so sending
a designed email is sending any template: the email `html` field is rendered in the sandbox with autoescape, and
a customer's name can never become markup. What the marketer types is escaped too: text is text (HTML in it is
shown, not obeyed), Jinja inside it stays Jinja (but `|safe` is refused), links are http(s) or a Jinja
expression, colours are hex. Each problem is a ValidationFailed naming `<path>[<index>].<setting>`.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable
from typing import Any

import mrml
from jinja2 import TemplateError, nodes

from boomerang.core.errors import ValidationFailed
from boomerang.messaging.templates import TEXT_ENV

MAX_BLOCKS = 100
MAX_TEXT = 5_000
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,99}$")
ALIGN = ("left", "center", "right")
NETWORKS = ("facebook", "instagram", "x", "youtube", "linkedin", "pinterest", "tiktok", "telegram")
MJML_SOCIAL = {"facebook": "facebook", "instagram": "instagram", "x": "twitter", "youtube": "youtube"}
MJML_SOCIAL |= {"linkedin": "linkedin", "pinterest": "pinterest"}  # the others are links without an icon

# Each block: its settings with their kind and default. Kinds: text (Jinja allowed, escaped), url, colour,
# align, int(lo, hi), name (a recommendation block), links (social), bool.
BLOCKS: dict[str, dict[str, tuple]] = {
    "heading": {"text": ("text", "Hello {{ first_name or 'there' }}!"), "align": ("align", "left"),
                "size": ("int", 24, 14, 48), "color": ("colour", "#222222")},
    "text": {"text": ("text", "Write something here."), "align": ("align", "left"),
             "size": ("int", 15, 10, 32), "color": ("colour", "#333333")},
    "image": {"src": ("url", "https://"), "alt": ("text", ""), "href": ("url", ""), "width": ("int", 600, 50, 600)},
    "button": {"label": ("text", "Shop now"), "url": ("url", "{{ shop.url }}"), "align": ("align", "center"),
               "background": ("colour", "#1f6feb"), "color": ("colour", "#ffffff")},
    "divider": {"color": ("colour", "#dddddd")},
    "spacer": {"height": ("int", 24, 4, 200)},
    "products": {"title": ("text", "Picked for you"), "block": ("name", ""), "size": ("int", 3, 1, 8),
                 "button": ("text", "View")},
    "cart": {"title": ("text", "Still in your cart"), "button": ("text", "Back to your cart"),
             "url": ("url", "{{ shop.url }}")},
    "order": {"title": ("text", "Your order {{ order.id }}")},
    "loyalty": {"text": ("text", "You have {{ loyalty.points }} points."),
                "code": ("text", "{% if loyalty.promo_code %}Your code: {{ loyalty.promo_code }}{% endif %}")},
    "social": {"links": ("links", [])},
    "footer": {"text": ("text", "{{ shop.name }}"), "preferences": ("text", "Email preferences"),
               "unsubscribe": ("text", "Unsubscribe")},
}  # fmt: skip


def defaults(kind: str) -> dict[str, Any]:
    """A new block of `kind` with its default settings (the designer's palette)."""
    return {"type": kind, **{k: spec[1] for k, spec in BLOCKS[kind].items()}}


# -- checking -------------------------------------------------------------------------------------------


def check(design: Any, path: str = "design") -> list[dict[str, Any]]:
    """The design's blocks with every setting checked and defaulted; ValidationFailed naming each problem."""
    if not isinstance(design, list):
        raise ValidationFailed([{"field": path, "reason": "must be a list of blocks"}])
    if len(design) > MAX_BLOCKS:
        raise ValidationFailed([{"field": path, "reason": f"at most {MAX_BLOCKS} blocks"}])
    errors: list[dict[str, str]] = []
    out = []
    for i, block in enumerate(design):
        where = f"{path}[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCKS:
            errors.append({"field": f"{where}.type", "reason": f"one of {', '.join(BLOCKS)}"})
            continue
        clean: dict[str, Any] = {"type": kind}
        for key in block:
            if key != "type" and key not in BLOCKS[kind]:
                errors.append({"field": f"{where}.{key}", "reason": f"a {kind} block has no setting {key!r}"})
        for key, spec in BLOCKS[kind].items():
            value = block.get(key, spec[1])
            problem = _CHECKS[spec[0]](value, *spec[2:])
            if problem:
                errors.append({"field": f"{where}.{key}", "reason": problem})
            clean[key] = value
        out.append(clean)
    if errors:
        raise ValidationFailed(errors)
    return out


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be text"
    if len(value) > MAX_TEXT:
        return f"at most {MAX_TEXT:,} characters"
    try:
        tree = TEXT_ENV.parse(value)
    except TemplateError as exc:
        return f"template error: {exc.message}"
    if any(f.name in ("safe", "forceescape") for f in tree.find_all(nodes.Filter)):
        return "the |safe filter is not available in a design: text stays text"
    if any(True for _ in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends))):
        return "include, import and extends are not available"
    return None


def _url(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be text"
    if value.strip() in ("", "https://"):  # left empty: no link (an image without one, a button is refused)
        return None
    if any(ord(c) < 32 for c in value) or not re.match(r"^(?:https?://[^\s\"'<>]+|\{\{)", value.strip(), re.I):
        return "a link starts with http:// or https:// (or is a {{ ... }} expression such as {{ shop.url }})"
    return _text(value)


def _colour(value: Any) -> str | None:
    return None if isinstance(value, str) and COLOUR.fullmatch(value) else "a colour such as #1f6feb"


def _align(value: Any) -> str | None:
    return None if value in ALIGN else f"one of {', '.join(ALIGN)}"


def _int(value: Any, lo: int, hi: int) -> str | None:
    return None if type(value) is int and lo <= value <= hi else f"a whole number from {lo} to {hi}"


def _name(value: Any) -> str | None:
    if value == "" or (isinstance(value, str) and BLOCK_NAME.fullmatch(value)):
        return None
    return "a recommendation block's name (empty: the customer's personal picks)"


def _links(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) > len(NETWORKS):
        return f"a list of up to {len(NETWORKS)} {{network, url}}"
    for i, link in enumerate(value):
        if not isinstance(link, dict) or set(link) != {"network", "url"} or link["network"] not in NETWORKS:
            return f"[{i}]: {{network, url}} with a network among {', '.join(NETWORKS)}"
        if not str(link["url"]).strip() or (problem := _url(link["url"])):
            return f"[{i}].url: {problem or 'required'}"
    return None


_CHECKS: dict[str, Callable[..., str | None]] = {
    "text": _text,
    "url": _url,
    "colour": _colour,
    "align": _align,
    "int": _int,
    "name": _name,
    "links": _links,
}


# -- MJML -----------------------------------------------------------------------------------------------


class _Marks:
    """Jinja kept out of MJML's way: each tag becomes an alphanumeric mark, put back after mrml."""

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(6)
        self.tags: list[str] = []

    def mark(self, tag: str) -> str:
        self.tags.append(tag)
        return f"jq{self.nonce}n{len(self.tags) - 1}q"

    def text(self, value: str, *, lines: bool = True) -> str:
        """Marketer's text as HTML: the literal parts escaped, Jinja tags kept, line breaks as <br>."""
        out, at = [], 0
        for m in JINJA.finditer(value):
            out += [html.escape(value[at : m.start()]), self.mark(m.group())]
            at = m.end()
        out.append(html.escape(value[at:]))
        joined = "".join(out)
        return joined.replace("\n", "<br>") if lines else joined.replace("\n", " ")

    def raw(self, tag: str) -> str:
        return f"<mj-raw>{self.mark(tag)}</mj-raw>"

    def restore(self, markup: str) -> str:
        # braces MJML itself wrote (CSS) must not read as Jinja; then the marks become their tags again
        markup = re.sub(r"\{(?=[{%#])", "{{ '{' }}", markup)
        return re.sub(rf"jq{self.nonce}n(\d+)q", lambda m: self.tags[int(m.group(1))], markup)


def _attr(marks: _Marks, value: str) -> str:
    return marks.text(value.strip(), lines=False)


def _section(inner: str, padding: str = "0px") -> str:
    return f'<mj-section padding="{padding}"><mj-column>{inner}</mj-column></mj-section>'


def _title(m: _Marks, text: str) -> str:
    return f'<mj-text font-size="18px" font-weight="bold">{m.text(text)}</mj-text>' if text.strip() else ""


def _items(m: _Marks, loop: str, *, image: str, price: str, button: str | None, url: str) -> str:
    """A loop of product rows: the picture left and the words right on a desktop, stacked on a phone."""
    link = f'<mj-button href="{m.mark(url)}" align="left">{m.text(button)}</mj-button>' if button else ""
    return (
        m.raw(loop)
        + '<mj-section padding="4px 0px"><mj-column width="35%">'
        + m.raw("{% if " + image + " %}")
        + f'<mj-image src="{m.mark("{{ " + image + " }}")}" alt="{m.mark("{{ item.name }}")}" width="160px"/>'
        + m.raw("{% endif %}")
        + '</mj-column><mj-column width="65%">'
        + f'<mj-text font-size="16px" font-weight="bold">{m.mark("{{ item.name }}")}</mj-text>'
        + f"<mj-text>{m.mark(price)}</mj-text>{link}</mj-column></mj-section>"
        + m.raw("{% endfor %}")
    )


def _block(m: _Marks, b: dict[str, Any]) -> str:
    kind = b["type"]
    if kind in ("heading", "text"):
        weight = ' font-weight="bold"' if kind == "heading" else ""
        return _section(
            f'<mj-text align="{b["align"]}" font-size="{b["size"]}px" color="{b["color"]}"{weight}>'
            f"{m.text(b['text'])}</mj-text>"
        )
    if kind == "image":
        if not b["src"].strip() or b["src"].strip() == "https://":
            return ""
        href = f' href="{_attr(m, b["href"])}"' if b["href"].strip() and b["href"].strip() != "https://" else ""
        return _section(
            f'<mj-image src="{_attr(m, b["src"])}" alt="{_attr(m, b["alt"])}"{href} width="{b["width"]}px"/>'
        )
    if kind == "button":
        if not b["url"].strip():
            return ""
        return _section(
            f'<mj-button href="{_attr(m, b["url"])}" align="{b["align"]}" background-color="{b["background"]}" '
            f'color="{b["color"]}">{m.text(b["label"])}</mj-button>'
        )
    if kind == "divider":
        return _section(f'<mj-divider border-width="1px" border-color="{b["color"]}"/>')
    if kind == "spacer":
        return _section(f'<mj-spacer height="{b["height"]}px"/>')
    if kind == "products":
        source = f"recommend({b['block']!r}, {b['size']})" if b["block"] else f"recommendations[:{b['size']}]"
        return _section(_title(m, b["title"])) + _items(
            m,
            "{% for item in " + source + " %}",
            image="item.image_url or item.image",
            price="{{ item.price|money(item.currency) }}",
            button=b["button"] or None,
            url="{{ item.url or shop.url }}",
        )
    if kind == "cart":  # shown only when the message is about a cart
        return (
            m.raw("{% if cart.lines %}")
            + _section(_title(m, b["title"]))
            + _items(
                m,
                "{% for item in cart.lines %}",
                image="item.image_url",
                price="{{ item.quantity }} × {{ item.price|money(item.currency or cart.currency) }}",
                button=None,
                url="",
            )
            + (_block(m, {**defaults("button"), "label": b["button"], "url": b["url"]}) if b["button"] else "")
            + m.raw("{% endif %}")
        )
    if kind == "order":  # shown only when the message is about an order
        return (
            m.raw("{% if order %}")
            + _section(_title(m, b["title"]))
            + _items(
                m,
                "{% for item in order['items'] %}",
                image="item.image_url",
                price="{{ item.quantity }} × {{ item.price|money(order.currency) }}",
                button=None,
                url="",
            )
            + _section(f'<mj-text font-weight="bold">{m.mark("{{ order.total|money(order.currency) }}")}</mj-text>')
            + m.raw("{% endif %}")
        )
    if kind == "loyalty":
        code = f"<br>{m.text(b['code'])}" if b["code"].strip() else ""
        return _section(f'<mj-text font-size="16px">{m.text(b["text"])}{code}</mj-text>', "8px 0px")
    if kind == "social":
        if not b["links"]:
            return ""
        links = "".join(
            f'<mj-social-element name="{MJML_SOCIAL.get(x["network"], "web")}" href="{_attr(m, x["url"])}">'
            f"{html.escape(x['network'].capitalize())}</mj-social-element>"
            for x in b["links"]
        )
        return _section(f'<mj-social mode="horizontal" align="center">{links}</mj-social>')
    # the footer: always the preference centre and unsubscribe links
    links = (
        f'<a href="{m.mark("{{ links.preferences }}")}">{m.text(b["preferences"] or "Email preferences")}</a> · '
        f'<a href="{m.mark("{{ links.unsubscribe }}")}">{m.text(b["unsubscribe"] or "Unsubscribe")}</a>'
    )
    return _section(
        f'<mj-text align="center" font-size="12px" color="#777777">{m.text(b["text"])}<br>{links}</mj-text>'
    )


def mjml(design: list[dict[str, Any]], marks: _Marks, *, subject: str = "") -> str:
    """The (checked) design as an MJML document, Jinja replaced by marks."""
    title = f"<mj-title>{marks.text(subject, lines=False)}</mj-title>" if subject else ""
    head = f'<mj-head>{title}<mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif"/><mj-text line-height="1.5"/></mj-attributes></mj-head>'
    body = "".join(_block(marks, b) for b in design)
    if not any(b["type"] == "footer" for b in design):  # every designed email can be unsubscribed from
        body += _block(marks, defaults("footer"))
    return f'<mjml>{head}<mj-body width="600px" background-color="#f4f4f4">{body}</mj-body></mjml>'


def to_html(design: Any, *, subject: str = "", path: str = "design") -> str:
    """The design as responsive HTML with its Jinja in place (the email `html` field)."""
    blocks = check(design, path)
    marks = _Marks()
    try:
        out = mrml.to_html(mjml(blocks, marks, subject=subject)).content
    except Exception as exc:  # noqa: BLE001 - mrml raises its own error types; a design it refuses is bad input
        raise ValidationFailed([{"field": path, "reason": f"cannot make the email: {exc}"}]) from None
    return marks.restore(out)


def to_text(design: Any, *, path: str = "design") -> str:
    """A plain-text part for the design (the email `text` field), Jinja in place."""
    lines: list[str] = []
    for b in check(design, path):
        kind = b["type"]
        if kind in ("heading", "text"):
            lines.append(b["text"])
        elif kind == "button" and b["url"].strip():
            lines.append(f"{b['label']}: {b['url']}")
        elif kind == "image" and b["alt"].strip():
            lines.append(b["alt"])
        elif kind == "products":
            source = f"recommend({b['block']!r}, {b['size']})" if b["block"] else f"recommendations[:{b['size']}]"
            lines.append(
                b["title"]
                + "\n{% for item in "
                + source
                + " %}- {{ item.name }}: {{ item.url or shop.url }}\n{% endfor %}"
            )
        elif kind == "cart":
            each = "{% for item in cart.lines %}- {{ item.quantity }} × {{ item.name }}\n{% endfor %}"
            lines.append("{% if cart.lines %}" + b["title"] + "\n" + each + "{% endif %}")
        elif kind == "order":
            each = "{% for item in order['items'] %}- {{ item.quantity }} × {{ item.name }}\n{% endfor %}"
            lines.append("{% if order %}" + b["title"] + "\n" + each + "{% endif %}")
        elif kind == "loyalty":
            lines.append(f"{b['text']} {b['code']}".strip())
        elif kind == "social":
            lines += [f"{x['network'].capitalize()}: {x['url']}" for x in b["links"]]
        elif kind == "footer":
            lines.append(
                f"{b['text']}\n{b['preferences'] or 'Email preferences'}: {{{{ links.preferences }}}}\n"
                f"{b['unsubscribe'] or 'Unsubscribe'}: {{{{ links.unsubscribe }}}}"
            )
    if not any(b.get("type") == "footer" for b in design if isinstance(b, dict)):
        lines.append("Unsubscribe: {{ links.unsubscribe }}")
    return "\n\n".join(line for line in lines if line.strip())


def compile_locales(locales: Any) -> Any:
    """Each locale's email `design` made into its `html` and `text` (a copy; anything else is left for
    templates.check to judge). The design is the source: saving writes both fields from it."""
    if not isinstance(locales, dict):
        return locales
    out = {}
    for loc, fields in locales.items():
        email = fields.get("email") if isinstance(fields, dict) else None
        if isinstance(email, dict) and "design" in email:
            path = f"locales.{loc}.email.design"
            subject = email.get("subject") or fields.get("subject") or ""
            design = check(email["design"], path)
            email = {
                **email,
                "design": design,
                "html": to_html(design, subject=subject if isinstance(subject, str) else "", path=path),
                "text": to_text(design, path=path),
            }
            fields = {**fields, "email": email}
        out[loc] = fields
    return out


def without_design(locales: Any) -> Any:
    """The locales as templates.check and render know them: the designs left out."""
    if not isinstance(locales, dict):
        return locales
    return {
        loc: {**fields, "email": {k: v for k, v in fields["email"].items() if k != "design"}}
        if isinstance(fields, dict) and isinstance(fields.get("email"), dict)
        else fields
        for loc, fields in locales.items()
    }
