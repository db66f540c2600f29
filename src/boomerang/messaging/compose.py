"""From a queued message to what its channel sends: the template rendered in the customer's locale
for the channel chosen, links tracked, an open pixel and the unsubscribe and preference links added.

`Composer` works on a batch: templates are read once, customer data in a few queries for all
(`ContextLoader`), and each compiled template is rendered many times. Recommendations are asked of the
recommender only when a template reads them, once per customer, block and context in the batch.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from boomerang.catalog.models import Product
from boomerang.channels.base import Button, Outbound
from boomerang.config import MessagingSettings
from boomerang.core.errors import BoomerangError
from boomerang.core.urls import host_of
from boomerang.messaging import templates
from boomerang.messaging.context import ContextLoader, product_dict
from boomerang.messaging.links import Links
from boomerang.messaging.models import Message, Template
from boomerang.messaging.picks import Recommend

HREF = re.compile(r'href="(https?://[^"]+)"')


def _tracked_hrefs(markup: str, track) -> str:
    """Every http(s) link in autoescaped HTML through `track`, with its &amp; read back as & first."""
    return HREF.sub(lambda m: f'href="{html.escape(track(html.unescape(m.group(1))))}"', markup)


URL = re.compile(r"https?://[^\s<>\"'()\[\]]+[^\s<>\"'()\[\].,;:!?]")


def _tracked_text(text: str, track) -> str:
    """Every http(s) link in plain text through `track` (a full stop or comma after a link stays out of it)."""
    return URL.sub(lambda m: track(m.group(0)), text)


FOOTER = {
    "en": ("You get this because you are a customer of {shop}.", "Choose what you get", "Unsubscribe"),
    "ru": ("Вы получили это письмо как покупатель {shop}.", "Настроить рассылки", "Отписаться"),
    "uk": ("Ви отримали цей лист як покупець {shop}.", "Налаштувати розсилки", "Відписатися"),
}
LAYOUT = (
    '<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" '
    'content="width=device-width"><title>{title}</title></head><body style="margin:0;padding:24px;'
    'background:#f6f6f4;font-family:Arial,sans-serif;color:#222"><div style="max-width:600px;margin:0 auto;'
    'background:#fff;padding:24px;border-radius:8px">{body}</div><p style="max-width:600px;margin:16px auto;'
    'font-size:12px;color:#777;text-align:center">{why}<br><a href="{prefs}" style="color:#777">{choose}</a>'
    ' &middot; <a href="{unsub}" style="color:#777">{unsubscribe}</a></p><img src="{pixel}" width="1" '
    'height="1" alt="" style="display:block;border:0"></body></html>'
)


class CannotCompose(BoomerangError):
    """A message that cannot be rendered (its template is gone or broken): it fails, and says why."""


class Composer:
    def __init__(
        self,
        session: Session,
        links: Links,
        shop: MessagingSettings,
        *,
        now: datetime,
        recommend: Recommend | None = None,
    ) -> None:
        self.session, self.links, self.shop_name, self.shop_url = session, links, shop.shop_name, shop.shop_url
        self.hosts = {host_of(shop.shop_url), *(h.lower() for h in shop.link_domains)}
        self.sources: dict[str, str] = {}
        self.loader = ContextLoader(session, shop, now=now, recommend=recommend)
        self.data: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, Template | None] = {}

    def template(self, name: str) -> Template | None:
        if name not in self.templates:
            self.templates[name] = self.session.get(Template, name)
        return self.templates[name]

    def prepare(self, customer_ids: set[str]) -> None:
        """Load the template data of these customers (one batch of queries)."""
        missing = {c for c in customer_ids if c not in self.data}
        if missing:
            self.data.update(self.loader.load(missing))

    def product_of(self, message: Message) -> dict[str, Any] | None:
        """The product a message is about, when its subject is a SKU (back in stock, price drop, replenishment);
        for a price drop, with the price before it (`old_price`)."""
        product = self.session.get(Product, message.subject) if message.subject else None
        if product is None:
            return None
        trigger = message.trigger or {}
        was = (trigger.get("properties") or {}).get("old_price") if trigger.get("event") == "Price Dropped" else None
        return {**product_dict(product), "old_price": was if isinstance(was, int | float) else None}

    def compose(self, message: Message, channel: str, address: str | None, *, sandbox: bool = False) -> Outbound:
        """The message as `channel` sends it; CannotCompose when its template is missing or breaks (the sandbox,
        which delivers nothing, records a message whose template is not written yet, empty)."""
        self.prepare({message.customer_id})
        data = self.data[message.customer_id]
        if channel == "webhook":
            return Outbound(
                key=message.key,
                message_id=message.id,
                customer_id=message.customer_id,
                channel=channel,
                to=message.template,
                text="",
                data={
                    "source": message.source,
                    "node": message.node,
                    "instance_id": message.instance_id,
                    "customer": data["customer"],
                    "template": message.template,
                },
            )
        row = self.template(message.template)
        if row is None and sandbox:
            return Outbound(
                key=message.key,
                message_id=message.id,
                customer_id=message.customer_id,
                channel=channel,
                to=address,
                text="",
                data={"template": message.template, "missing": True},
            )
        if row is None:
            raise CannotCompose(f"template {message.template!r} does not exist", field="template")
        locale = templates.choose_locale(row.variants, data.get("locale"), row.default_locale)
        links = {
            "preferences": self.links.preferences(message.customer_id),
            "unsubscribe": self.links.unsubscribe(message.id),
        }
        about = self.loader.about(message.trigger, message.subject)
        product = self.product_of(message)
        cart = [line["sku"] for line in about["cart"]["lines"]] if "cart" in about else None
        try:
            content = templates.render(
                row.variants,
                channel,
                locale,
                {
                    **data,
                    **about,
                    "links": links,
                    "product": product,
                    "recommend": self.loader.picker.helper(
                        message.customer_id, cart=cart, product=product["sku"] if product else None
                    ),
                    "message": {"channel": channel},
                },
            )
        except BoomerangError as exc:
            raise CannotCompose(f"template {row.name!r}: {exc.message}", field="template") from None

        def track(url: str) -> str:
            return self.links.click(message.id, self._destination(url, row))

        buttons = tuple(Button(label, track(url)) for label, url in content.buttons)
        base = dict(
            key=message.key,
            message_id=message.id,
            customer_id=message.customer_id,
            channel=channel,
            to=address,
            locale=locale,
            buttons=buttons,
            data={"template": row.name, "topic": row.topic},
        )
        if channel == "email":
            return Outbound(
                **base,
                subject=content.subject or row.title,
                text=self._text_footer(_tracked_text(content.text, track), locale, links),
                html=self._layout(content, locale, links, message.id, track),
                headers=self._headers(message, links),
            )
        if channel == "telegram":
            return Outbound(**base, text=_tracked_hrefs(content.text, track))
        url = track(content.url) if content.url else None
        return Outbound(**base, subject=content.subject, text=content.text, url=url)

    def _destination(self, url: str, row: Template) -> str:
        """Where a tracked link may lead: the shop's own hosts, those in `link_domains`, or a link the template's
        author wrote; any other (a product URL a browser slipped in, say) leads to the shop instead, so the
        shop's signed redirect never takes a customer elsewhere."""
        if host_of(url) in self.hosts or url in self._source(row):
            return url
        return self.shop_url

    def _source(self, row: Template) -> str:
        if row.name not in self.sources:
            self.sources[row.name] = json.dumps(row.variants, ensure_ascii=False)
        return self.sources[row.name]

    def _layout(self, content: templates.Content, locale: str, links: dict, message_id: int, track) -> str:
        why, choose, unsubscribe = FOOTER.get(locale.split("-")[0], FOOTER["en"])
        body = _tracked_hrefs(content.html or "", track)
        esc = html.escape
        return LAYOUT.format(
            lang=esc(locale),
            title=esc(content.subject or ""),
            body=body,
            why=esc(why.format(shop=self.shop_name)),
            prefs=esc(links["preferences"]),
            choose=choose,
            unsub=esc(links["unsubscribe"]),
            unsubscribe=unsubscribe,
            pixel=esc(self.links.pixel(message_id)),
        )

    def _text_footer(self, text: str, locale: str, links: dict) -> str:
        why, choose, unsubscribe = FOOTER.get(locale.split("-")[0], FOOTER["en"])
        return (
            f"{text}\n\n--\n{why.format(shop=self.shop_name)}\n"
            f"{choose}: {links['preferences']}\n{unsubscribe}: {links['unsubscribe']}"
        )

    @staticmethod
    def _headers(message: Message, links: dict) -> dict[str, str]:
        """RFC 8058 one-click unsubscribe on everything but transactional mail."""
        if message.category == "transactional":
            return {}
        return {"List-Unsubscribe": f"<{links['unsubscribe']}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
