"""Serving blocks: the saved model and the live catalog held in memory, the request's context completed from the
store (who the visitor is, their open cart, what they bought lately), a share of visitors served the control, and
every product explained. The model file is read again when training replaces it, and the catalog when it
changes (checked every few seconds, rebuilt in the background while the old one keeps serving)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.catalog.models import Product
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers import bulk
from boomerang.customers.merge import live_ids
from boomerang.customers.service import lookup
from boomerang.orders.models import Cart, Order, OrderLine
from boomerang.recommendations import model as trained
from boomerang.recommendations import store
from boomerang.recommendations.blocks import Block
from boomerang.recommendations.catalog_index import CatalogIndex
from boomerang.recommendations.serving import Context, Filler, Pick

log = logging.getLogger("boomerang.recommendations")
CHECK_SECONDS = 5.0  # how often the model file and the catalog are looked at
ORDERS_SECONDS = 60.0  # new orders reach "bought together" this often at most (a rebuild each time)
BASKET_DAYS = 365  # the orders that say what is bought together
REASONS = {
    "personal": "picked for them from customers who bought what they bought",
    "repeat": "they buy it again about now",
    "als": "learned from what they bought, carted and viewed",
    "item_knn": "customers who bought it also bought this",
    "bought_together": "often in the same order",
    "similar": "alike",
    "recently_viewed": "they viewed it lately",
    "popular_in_category": "a best seller of the category",
    "trending": "selling more this week",
    "popular": "a best seller",
}


@dataclass(frozen=True)
class Visitor:
    """Who asks, as the request names them: any id (the secret key), or the ids of a browser (the write key)."""

    customer: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None

    @property
    def key(self) -> str | None:
        return self.customer or self.user_id or self.anonymous_id


def _catalog_frame(session: Session) -> pd.DataFrame:
    sold = sa.select(OrderLine.sku, sa.func.count().label("n")).group_by(OrderLine.sku).subquery()
    rows = session.execute(
        sa.select(
            Product.sku,
            Product.name,
            Product.category,
            Product.brand,
            Product.price,
            Product.currency,
            Product.in_stock,
            Product.url,
            Product.image_url,
            Product.attributes,
            sold.c.n,
        ).outerjoin(sold, sold.c.sku == Product.sku)
    ).all()
    columns = ["sku", "name", "category", "brand", "price", "currency", "in_stock", "url", "image_url", "attributes"]
    frame = pd.DataFrame(rows, columns=[*columns, "sold"])
    attrs = frame["attributes"].map(lambda a: a if isinstance(a, dict) else {})
    frame["was"] = attrs.map(lambda a: a.get("compare_at_price") or a.get("regular_price"))
    return frame.drop(columns="attributes")


def _versions(session: Session) -> tuple[tuple, tuple]:
    """What tells that the catalog changed, and that orders came in."""
    products = tuple(session.execute(sa.select(sa.func.count(), sa.func.max(Product.updated_at))).one())
    orders = tuple(session.execute(sa.select(sa.func.count(), sa.func.max(Order.updated_at))).one())
    return products, orders


def _baskets(session: Session) -> pd.DataFrame:
    """basket, sku, at: the lines of the orders of the last year (up to the latest order), but cancelled ones."""
    latest = session.scalar(sa.select(sa.func.max(Order.placed_at)))
    if latest is None:
        return pd.DataFrame(columns=["basket", "sku", "at"])
    since = latest - timedelta(days=BASKET_DAYS)
    rows = session.execute(
        sa.select(OrderLine.order_id, OrderLine.sku, Order.placed_at)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.placed_at >= since, Order.status != "cancelled", OrderLine.sku.is_not(None))
    ).all()
    return pd.DataFrame(rows, columns=["basket", "sku", "at"])


class Recommendations:
    def __init__(self, sessions: Callable[[], Any], model_path: Path, *, now: Callable[[], datetime]) -> None:
        self._sessions, self._path, self._now = sessions, model_path, now
        self._lock = threading.Lock()
        self._filler: Filler | None = None
        self._model_mtime: float | None = None
        self._checked = self._built = 0.0
        self._rebuilding = False

    # -- what serving holds ---------------------------------------------------------------------------------

    def filler(self, session: Session) -> Filler:
        """The current model and catalog; looked at again every few seconds."""
        if self._filler is None or time.monotonic() - self._checked > CHECK_SECONDS:
            self._checked = time.monotonic()
            self._refresh(session)
        return self._filler

    def _refresh(self, session: Session) -> None:
        """A new model is read at once; a changed catalog, or new orders once a minute, rebuild the catalog in
        the background while the old one serves (a catalog of thousands takes a moment)."""
        mtime = self._path.stat().st_mtime if self._path.exists() else None
        products, orders = _versions(session)
        current = self._filler
        if current is None:
            catalog = self._build(session)
            with self._lock:
                self._filler, self._model_mtime = Filler(catalog, self._load(mtime)), mtime
            return
        if mtime != self._model_mtime:
            model = self._load(mtime)
            with self._lock:
                self._filler, self._model_mtime = Filler(self._filler.catalog, model), mtime
        built_products, built_orders = current.catalog.version
        stale = built_products != products or (
            built_orders != orders and time.monotonic() - self._built > ORDERS_SECONDS
        )
        if stale and not self._rebuilding:
            self._rebuilding = True
            threading.Thread(target=self._rebuild_catalog, name="reco-catalog", daemon=True).start()

    def _build(self, session: Session) -> CatalogIndex:
        self._built = time.monotonic()
        return CatalogIndex.build(_catalog_frame(session), _versions(session), baskets=_baskets(session))

    def _load(self, mtime: float | None) -> trained.Model | None:
        return trained.load(self._path) if mtime is not None else None

    def _rebuild_catalog(self) -> None:
        try:
            with self._sessions() as session:
                catalog = self._build(session)
            with self._lock:
                self._filler = Filler(catalog, self._filler.model if self._filler else None)
        except Exception:  # noqa: BLE001 - the old catalog keeps serving; the next check tries again
            log.exception("rebuilding the recommendations' catalog failed")
        finally:
            self._rebuilding = False

    def forget(self, customer_ids: list[str]) -> int:
        """Take erased customers out of the saved model (serving reads it again); how many it held."""
        with self._lock:
            model = trained.load(self._path)
            found = trained.forget(model, customer_ids) if model is not None else 0
            if found:
                trained.save(model, self._path)
        self.reload()
        return found

    def reload(self) -> None:
        """Read the model and the catalog again at the next request (after training, in tests)."""
        self._filler = None

    # -- answering ------------------------------------------------------------------------------------------

    def recommend(
        self,
        session: Session,
        name: str,
        visitor: Visitor = Visitor(),
        *,
        product: str | None = None,
        category: str | None = None,
        cart: list[str] | None = None,
        recent: list[str] = (),
        block: Block | None = None,
        size: int | None = None,
        control: bool | None = None,
    ) -> dict[str, Any]:
        """The block's products for this visitor and context, with the variant served and why each was picked;
        `block` shows a definition being edited, `control` forces the variant (a preview shows the block)."""
        block = block or store.get(session, name)
        if size is not None:
            block = block.model_copy(update={"size": size})
        filler = self.filler(session)
        if product is not None and filler.catalog.rows([product])[0] < 0:
            raise NotFound(f"no product with sku {product!r}", field="product")
        if block.context == "product" and product is None:
            raise ValidationFailed(
                [
                    {
                        "field": "product",
                        "reason": f"the block {block.name!r} shows products for a product page: give the product's sku",
                    }
                ]
            )
        customer_id = self._customer(session, visitor)
        together = "bought_together" in block.chain
        if cart is None and (together or block.filters.exclude_cart or block.context == "cart"):
            cart = self._open_cart(session, customer_id)
        context = Context(
            customer_id=customer_id,
            product=product,
            category=category,
            cart=tuple(cart or ()),
            recent=tuple(recent),
            bought_recently=self._bought_since(session, customer_id, block.filters.exclude_bought_days),
            last_order=self._last_order(session, customer_id) if together and not (product or cart) else (),
        )
        control = _in_control(block, visitor.key) if control is None else control
        picks = filler.fill(block, context, control=control)
        return {
            "block": block.name,
            "title": block.title,
            "variant": "control" if control else "block",
            "customer_id": customer_id,
            "model_trained_at": filler.model.trained_at if filler.model is not None else None,
            "items": [_shown(filler, p, i) for i, p in enumerate(picks, start=1)],
        }

    def _customer(self, session: Session, visitor: Visitor) -> str | None:
        """The live customer the visitor is; None for one the shop does not know (they get the anonymous chain)."""
        if visitor.customer:
            found = lookup(session, visitor.customer)
            return found.id if found is not None else None
        for kind, value in (("user", visitor.user_id), ("anonymous", visitor.anonymous_id)):
            if value:
                found = bulk.lookup(session, kind, [value]).get(value)
                if found:
                    return live_ids(session, [found]).get(found)
        return None

    def _open_cart(self, session: Session, customer_id: str | None) -> tuple[str, ...]:
        if customer_id is None:
            return ()
        lines = session.scalar(
            sa.select(Cart.lines)
            .where(Cart.customer_id == customer_id, Cart.order_id.is_(None))
            .order_by(Cart.updated_at.desc())
            .limit(1)
        )
        return tuple(str(line["sku"]) for line in lines or () if isinstance(line, dict) and line.get("sku"))

    def _bought_since(self, session: Session, customer_id: str | None, days: int | None) -> frozenset[str]:
        if customer_id is None or not days:
            return frozenset()
        since = self._now() - timedelta(days=days)
        skus = session.scalars(
            sa.select(OrderLine.sku)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.customer_id == customer_id, Order.placed_at >= since, OrderLine.sku.is_not(None))
        )
        return frozenset(skus)

    def _last_order(self, session: Session, customer_id: str | None) -> tuple[str, ...]:
        if customer_id is None:
            return ()
        latest = (
            sa.select(Order.id).where(Order.customer_id == customer_id).order_by(Order.placed_at.desc()).limit(1)
        ).scalar_subquery()
        return tuple(
            session.scalars(sa.select(OrderLine.sku).where(OrderLine.order_id == latest, OrderLine.sku.is_not(None)))
        )


def _in_control(block: Block, key: str | None) -> bool:
    """Whether this visitor sees the block's control: the same answer for them on every visit."""
    if block.control_share <= 0:
        return False
    if key is None:
        import random

        return random.random() < block.control_share  # noqa: S311 - a split, not a secret
    digest = hashlib.sha256(f"{block.name}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < block.control_share


def _shown(filler: Filler, pick: Pick, position: int) -> dict[str, Any]:
    because = filler.catalog.skus[pick.because] if pick.because >= 0 else None
    again = pick.source == "personal" and pick.because == pick.row  # the chain's repeat model put it there
    reason = REASONS["repeat" if again else pick.source]
    if because is not None and not again and pick.source in ("similar", "bought_together", "item_knn", "personal"):
        reason = f"{reason}: {filler.catalog.name[pick.because]}"
    return {
        **filler.catalog.shown[pick.row],
        "position": position,
        "source": pick.source,
        "because": because,
        "reason": reason,
    }
