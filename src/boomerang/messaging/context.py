"""What templates may say about a customer, loaded for a whole batch of customers in a few queries:
profile, last order with its lines, loyalty balance and promo code, favourite category, and products to
recommend (`messaging.picks`: `recommendations` and `recommend(block, size=4)`; without a recommender, as a loader
built alone in tests, the in-stock best sellers of the customer's favourite category, then the shop's)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.catalog.models import Product
from boomerang.config import MessagingSettings
from boomerang.customers.models import Customer
from boomerang.db import chunked
from boomerang.loyalty import achievements_store, programme, referrals_links
from boomerang.loyalty import service as loyalty
from boomerang.messaging.picks import RECOMMENDED, Picker, Recommend
from boomerang.orders.models import Cart, Order, OrderLine


def product_dict(p: Product) -> dict[str, Any]:
    return {
        "sku": p.sku,
        "name": p.name,
        "price": p.price,
        "currency": p.currency,
        "url": p.url,
        "image_url": p.image_url,
        "category": p.category,
    }


def shop_data(shop: MessagingSettings) -> dict[str, str]:
    """What templates know of the shop: `shop.name`, `shop.url`."""
    return {"name": shop.shop_name, "url": shop.shop_url.rstrip("/")}


def _order_item(line: Any, product: Any) -> dict[str, Any]:
    return {
        "name": line.name,
        "sku": line.sku,
        "quantity": line.quantity,
        "price": line.unit_price,
        "category": line.category,
        "url": product.url if product else None,
        "image_url": product.image_url if product else None,
    }


def _cart_line(line: dict[str, Any], product: Product | None) -> dict[str, Any]:
    """A cart line as templates read it: the catalog's name, price, link and image where it knows the product
    (what a browser sent is only the fallback)."""
    known = product_dict(product) if product else {}
    return {
        "sku": line["sku"],
        "quantity": line.get("quantity") or 1,
        **{f: known.get(f) or line.get(f) for f in ("name", "price", "url", "image_url")},
        "currency": known.get("currency"),
    }


class ContextLoader:
    """Template data per customer id."""

    def __init__(
        self, session: Session, shop: MessagingSettings, *, now: datetime, recommend: Recommend | None = None
    ) -> None:
        self.session, self.shop, self.now = session, shop_data(shop), now
        self._popular: list[dict[str, Any]] | None = None
        self.picker = Picker(session, recommend, fallback=self._recommend)

    def load(self, customer_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = set(customer_ids)
        customers = {
            c.id: c
            for chunk in chunked(ids)
            for c in self.session.scalars(sa.select(Customer).where(Customer.id.in_(chunk)))
        }
        orders, bought = self._orders(ids)
        loyalty = self._loyalty(ids)
        out = {}
        for cid in ids:
            c = customers.get(cid)
            order = orders.get(cid)
            favourite = Counter(bought[cid]).most_common(1)[0][0] if bought[cid] else None
            self.picker.known[cid] = (favourite, {i["sku"] for i in (order or {}).get("items", [])})
            currency = (order or {}).get("currency") or next(
                (p["currency"] for p in self.popular() if p["currency"]), None
            )
            out[cid] = {
                "customer": {
                    "id": cid,
                    "first_name": c.first_name if c else None,
                    "last_name": c.last_name if c else None,
                    "email": c.email if c else None,
                    "city": c.city if c else None,
                    "attributes": dict(c.attributes or {}) if c else {},
                },
                "first_name": (c.first_name or "") if c else "",
                "locale": c.locale if c else None,
                "shop": self.shop,
                "order": order,
                "loyalty": loyalty.get(cid, {"points": 0}),
                "favourite_category": favourite.split(" > ")[-1] if favourite else None,
                "recommendations": self.picker.recommendations(cid),
                "recommend": self.picker.helper(cid),
                "currency": currency,
            }
        return out

    def _orders(self, ids: set[str]) -> tuple[dict[str, dict], dict[str, list[str]]]:
        """Each customer's last order with its lines, and the categories of everything they bought: plain rows
        in three simple queries per chunk (a join over orders, lines and products lets SQLite scan every line)."""
        last: dict[str, dict] = {}
        categories: dict[str, list[str]] = defaultdict(list)
        for chunk in chunked(ids):
            orders = self.session.execute(
                sa.select(
                    Order.id, Order.customer_id, Order.total, Order.currency, Order.placed_at, Order.coupon
                ).where(Order.customer_id.in_(chunk))
            ).all()
            owner = {o.id: o.customer_id for o in orders}
            for o in orders:
                if o.customer_id not in last or o.placed_at > last[o.customer_id]["placed_at"]:
                    last[o.customer_id] = {
                        "id": o.id,
                        "total": o.total,
                        "currency": o.currency,
                        "placed_at": o.placed_at,
                        "coupon": o.coupon,
                        "items": [],
                    }
            lines = [
                row
                for part in chunked(owner)
                for row in self.session.execute(
                    sa.select(
                        OrderLine.order_id,
                        OrderLine.name,
                        OrderLine.sku,
                        OrderLine.quantity,
                        OrderLine.unit_price,
                        OrderLine.category,
                    )
                    .where(OrderLine.order_id.in_(part))
                    .order_by(OrderLine.order_id, OrderLine.line_no)
                )
            ]
            shown = [line for line in lines if last[owner[line.order_id]]["id"] == line.order_id]
            links = {
                row.sku: row
                for part in chunked({line.sku for line in shown if line.sku})
                for row in self.session.execute(
                    sa.select(Product.sku, Product.url, Product.image_url).where(Product.sku.in_(part))
                )
            }
            for line in lines:
                if line.category:
                    categories[owner[line.order_id]].append(line.category)
            for line in shown:
                last[owner[line.order_id]]["items"].append(_order_item(line, links.get(line.sku)))
        return last, categories

    def about(self, trigger: dict[str, Any] | None, subject: str | None) -> dict[str, Any]:
        """What a journey's message is about, from the event that started the journey: `event` (its name and
        properties); for a journey keyed by cart, the cart as it is now (`cart`); by order, that order."""
        if not trigger:
            return {}
        out: dict[str, Any] = {"event": {"name": trigger.get("event"), "properties": trigger.get("properties") or {}}}
        if subject and trigger.get("key") == "cart_id":
            out["cart"] = self.cart(subject)
        if subject and trigger.get("key") == "order_id" and (order := self.order(subject)) is not None:
            out["order"] = order
        return out

    def cart(self, cart_id: str) -> dict[str, Any]:
        """The cart's current lines (name, image, price, quantity, link: the catalog's where it knows the
        product), their total and count."""
        cart = self.session.get(Cart, cart_id)
        lines = list(cart.lines or []) if cart else []
        known = self._products({line["sku"] for line in lines})
        shown = [_cart_line(line, known.get(line["sku"])) for line in lines]
        return {
            "id": cart_id,
            "lines": shown,
            "quantity": sum(i["quantity"] for i in shown),
            "total": round(sum((i["price"] or 0) * i["quantity"] for i in shown), 2),
            "currency": (cart.currency if cart else None)
            or next((i["currency"] for i in shown if i["currency"]), None),
        }

    def order(self, order_id: str) -> dict[str, Any] | None:
        """One order with its lines, as `order` reads in templates."""
        o = self.session.get(Order, order_id)
        if o is None:
            return None
        lines = self.session.scalars(
            sa.select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no)
        ).all()
        known = self._products({line.sku for line in lines if line.sku})
        return {
            "id": o.id,
            "total": o.total,
            "currency": o.currency,
            "placed_at": o.placed_at,
            "coupon": o.coupon,
            "items": [_order_item(line, known.get(line.sku)) for line in lines],
        }

    def _products(self, skus: set[str]) -> dict[str, Product]:
        return {
            p.sku: p
            for part in chunked(skus)
            for p in self.session.scalars(sa.select(Product).where(Product.sku.in_(part)))
        }

    def _loyalty(self, ids: set[str]) -> dict[str, dict]:
        """The programme as templates read it: `loyalty.points` (spendable; `balance` too), `pending`,
        `points_expiring` and `points_expire_at` (the next expiry within 30 days), `tier`, `next_tier`,
        `missing_to_next_tier` (spend; `missing_orders_to_next_tier`), `tier_benefits`, `codes` and the latest
        (`promo_code`, `discount_percent`, `expires_at`), `unit`, `referral_link` (made on first use),
        `achievements` (the badges earned: key, title, badge, points, earned_at)."""
        out = {}
        unit = programme.of(self.session).unit_name
        refer = programme.of(self.session).referrals.enabled
        links = referrals_links.links_of(self.session, ids, shop_url=self.shop["url"], now=self.now) if refer else {}
        badges = achievements_store.badges(self.session, ids)
        for cid, wallet in loyalty.wallets(self.session, ids, now=self.now).items():
            code = wallet.latest_code
            tier = wallet.tier
            out[cid] = {
                "points": wallet.points,
                "balance": wallet.points,
                "pending": wallet.pending,
                "points_expiring": wallet.expiring,
                "points_expire_at": wallet.expiring_at,
                "tier": tier.tier if tier else None,
                "tier_benefits": tier.benefits if tier else {},
                "next_tier": tier.next_tier if tier else None,
                "missing_to_next_tier": tier.missing_spend if tier else None,
                "missing_orders_to_next_tier": tier.missing_orders if tier else None,
                "codes": [
                    {"code": c.code, "discount_percent": c.discount_percent, "expires_at": c.expires_at}
                    for c in wallet.codes
                ],
                "unit": unit,
                "referral_link": links.get(cid),
                "achievements": badges.get(cid, []),
            } | (
                {"promo_code": code.code, "discount_percent": code.discount_percent, "expires_at": code.expires_at}
                if code
                else {}
            )
        return out

    def popular(self) -> list[dict[str, Any]]:
        """In-stock best sellers (by order lines), loaded once per loader."""
        if self._popular is None:
            sold = (
                sa.select(OrderLine.sku, sa.func.count().label("n"))
                .where(OrderLine.sku.is_not(None))
                .group_by(OrderLine.sku)
                .subquery()
            )
            self._popular = [
                product_dict(p)
                for p in self.session.scalars(
                    sa.select(Product)
                    .outerjoin(sold, sold.c.sku == Product.sku)
                    .where(Product.in_stock.is_(True))
                    .order_by(sa.func.coalesce(sold.c.n, 0).desc(), Product.sku)
                    .limit(200)
                )
            ]
        return self._popular

    def _recommend(self, category: str | None, exclude: set[str], size: int = RECOMMENDED) -> list[dict[str, Any]]:
        """The best sellers of the customer's favourite category first, then the shop's; none they just bought."""
        picked = [p for p in self.popular() if category and p["category"] == category and p["sku"] not in exclude]
        for p in self.popular():
            if len(picked) >= size:
                break
            if p["sku"] not in exclude and p not in picked:
                picked.append(p)
        return picked[:size]
