"""Recommended products in messages: `recommendations` (the "email" block: personal picks) and the templates'
`recommend(block, size=4)` (any block, in the message's context: its cart, its product). Both ask the recommender
(the workspace's recommendations service, handed over by bootstrap) only when a template reads them, once per
customer, block, context and size in a batch; without one, or when it fails, the shop's best sellers stand in."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound, ValidationFailed

log = logging.getLogger("boomerang.messaging")

RECOMMENDED = 4
MAX_RECOMMENDED = 50  # what one recommend() may ask for (a block's largest size)
EMAIL_BLOCK = "email"  # the block `recommendations` shows
# the best sellers standing in: (favourite category, skus to leave out, how many) -> products
Fallback = Callable[[str | None, set[str], int], list[dict[str, Any]]]


class Recommend(Protocol):
    """A block's products for a customer (None: an anonymous visitor) in a message's context. It raises NotFound
    naming `block` for a block the shop does not have, NotFound naming `product` for a product not in the
    catalog, and ValidationFailed naming `product` for a product page's block asked without one."""

    def __call__(
        self,
        session: Session,
        *,
        customer_id: str | None,
        block: str,
        cart: list[str] | None = None,
        product: str | None = None,
        size: int | None = None,
    ) -> list[dict[str, Any]]: ...


class Picks(Sequence):
    """A block's products, asked the first time a template reads them: most templates never do, and a batch
    composes hundreds of messages."""

    def __init__(self, ask: Callable[[], list[dict[str, Any]]]) -> None:
        self._ask, self._items = ask, None

    def _got(self) -> list[dict[str, Any]]:
        if self._items is None:
            self._items = self._ask()
        return self._items

    def __getitem__(self, index):
        return self._got()[index]

    def __len__(self) -> int:
        return len(self._got())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._got())

    def __repr__(self) -> str:
        return f"Picks({self._items!r})" if self._items is not None else "Picks(not asked yet)"


class Picker:
    """The picks of one batch of messages."""

    def __init__(self, session: Session, recommend: Recommend | None, fallback: Fallback) -> None:
        self.session, self.recommender, self.fallback = session, recommend, fallback
        self.known: dict[str, tuple[str | None, set[str]]] = {}  # per customer: favourite category, last order's skus
        self._asked: dict[tuple, Picks] = {}

    def recommendations(self, customer_id: str) -> Sequence[dict[str, Any]]:
        """What `recommendations` shows the customer."""
        if self.recommender is None:
            return self.fallback(*self.known.get(customer_id, (None, set())), RECOMMENDED)
        return self.picks(customer_id, EMAIL_BLOCK)

    def helper(
        self, customer_id: str | None, *, cart: list[str] | None = None, product: str | None = None
    ) -> Callable[..., Picks]:
        """The templates' `recommend(block, size=4)` for this customer, in this context (a cart's skus, the
        product a message is about)."""

        def recommend(block: str, size: int = RECOMMENDED) -> Picks:
            if not isinstance(block, str) or type(size) is not int or not 1 <= size <= MAX_RECOMMENDED:
                reason = f"recommend(block, size): a block's name and a size from 1 to {MAX_RECOMMENDED}"
                raise ValidationFailed([{"field": "template", "reason": reason}])
            return self.picks(customer_id, block, cart=cart, product=product, size=size)

        return recommend

    def picks(
        self,
        customer_id: str | None,
        block: str,
        *,
        cart: list[str] | None = None,
        product: str | None = None,
        size: int = RECOMMENDED,
    ) -> Picks:
        """A block's products, asked once for the same customer, context and size: a template often reads one
        block in several fields (the email's html and text, a button's label and its link)."""
        key = (customer_id, block, None if cart is None else tuple(cart), product, size)
        if key not in self._asked:
            self._asked[key] = Picks(lambda: self._ask(customer_id, block, cart, product, size))
        return self._asked[key]

    def _ask(
        self, customer_id: str | None, block: str, cart: list[str] | None, product: str | None, size: int
    ) -> list[dict[str, Any]]:
        favourite, bought = self.known.get(customer_id or "", (None, set()))
        exclude = bought | set(cart or ()) | ({product} if product else set())
        if self.recommender is None:
            return self.fallback(favourite, exclude, size)
        try:
            return list(
                self.recommender(
                    self.session, customer_id=customer_id, block=block, cart=cart, product=product, size=size
                )
            )
        except (NotFound, ValidationFailed) as exc:
            if exc.field != "product":  # a template naming a block the shop does not have is a broken template
                raise ValidationFailed([{"field": "template", "reason": f"recommend(): {exc.message}"}]) from None
            return []  # the message's product has left the catalog, or a product page's block in a message about none
        except Exception:  # noqa: BLE001 - a failing recommender (a broken model file) must not hold back the batch
            log.exception("recommendations for block %r failed; best sellers shown instead", block)
            return self.fallback(favourite, exclude, size)
