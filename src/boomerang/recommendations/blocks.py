"""Blocks: a named place on the shop's pages or in its messages that shows products, as data. A block is an ordered
chain of algorithms, filters every product must pass, and a size; the first algorithm fills what it can, the next
fills the slots left, and the chain always ends with the shop's in-stock best sellers, so a block is never empty
while the catalog has an in-stock product. A share of each block's visitors (`control_share`) sees plain popularity
instead, so that what the block adds is measured against what any list would have done."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# What each algorithm needs from the request to say anything: a customer, a product, a category, a cart.
ALGORITHMS: dict[str, str] = {
    "personal": "the customer's repeat purchases when due, then new products learned from customers like them",
    "repeat": "products the customer buys again, when their cycle says they are due",
    "als": "implicit-feedback matrix factorisation over purchases, carts and views",
    "item_knn": "products bought by the customers who bought the customer's products",
    "bought_together": "products in the same orders as the context product, the cart or the customer's last order",
    "similar": "alike in category, brand, price and name, and viewed by the same visitors",
    "recently_viewed": "what the visitor looked at last",
    "popular_in_category": "best sellers of the context category (or product's, or the customer's favourite)",
    "trending": "products whose sales grew most over the last week",
    "popular": "the shop's best sellers",
}
CONTEXTS = ("none", "customer", "product", "category", "cart")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
RESERVED = {"blocks", "train", "performance", "widget"}  # paths of the API beside /recommendations/{block}


class Filters(BaseModel):
    """What every recommended product must be; the context product itself is never shown."""

    model_config = ConfigDict(extra="forbid")

    in_stock: bool = True
    has_image: bool = False
    discounted_only: bool = False
    exclude_bought_days: int | None = Field(default=None, ge=1, le=3650)
    exclude_cart: bool = True
    categories: list[str] = Field(default_factory=list, max_length=50)  # prefixes: "Kitchen" covers "Kitchen > Mugs"
    price_min_ratio: float | None = Field(default=None, ge=0, le=100)  # of the context product's price
    price_max_ratio: float | None = Field(default=None, ge=0, le=100)
    max_per_brand: int | None = Field(default=None, ge=1, le=50)

    @model_validator(mode="after")
    def _ratios(self) -> Filters:
        low, high = self.price_min_ratio, self.price_max_ratio
        if low is not None and high is not None and low > high:
            raise ValueError("price_min_ratio is above price_max_ratio: no product could match")
        return self


class Block(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str
    title: str = Field(default="", max_length=120)  # what the shop shows above the products
    description: str = Field(default="", max_length=500)
    context: Literal["none", "customer", "product", "category", "cart"] = "none"
    chain: list[str] = Field(min_length=1, max_length=10)
    filters: Filters = Field(default_factory=Filters)
    size: int = Field(default=8, ge=1, le=50)
    control_share: float = Field(default=0.1, ge=0, le=0.5)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("must be 1-60 lower-case letters, digits, '_' or '-', starting with a letter or digit")
        if value in RESERVED:
            raise ValueError(f"{value!r} is a path of the API; choose another name")
        return value

    @field_validator("chain")
    @classmethod
    def _chain(cls, value: list[str]) -> list[str]:
        unknown = [a for a in value if a not in ALGORITHMS]
        if unknown:
            raise ValueError(f"unknown algorithm {unknown[0]!r}; one of {', '.join(ALGORITHMS)}")
        if len(set(value)) != len(value):
            raise ValueError("an algorithm appears twice")
        return value

    @model_validator(mode="after")
    def _context(self) -> Block:
        relative = self.filters.price_min_ratio is not None or self.filters.price_max_ratio is not None
        if relative and self.context != "product":
            raise ValueError("filters.price_min_ratio and price_max_ratio need context 'product'")
        return self


def _ready(name: str, title: str, context: str, chain: list[str], **more) -> Block:
    return Block(name=name, title=title, context=context, chain=chain, description=more.pop("description"), **more)


READY_MADE: dict[str, Block] = {
    b.name: b
    for b in (
        _ready(
            "product_page",
            "You may also like",
            "product",
            ["similar", "bought_together", "popular_in_category", "popular"],
            description="On a product page: alternatives first (they keep the customer when it is out of stock).",
            filters=Filters(max_per_brand=3, price_min_ratio=0.5, price_max_ratio=2.0),
        ),
        _ready(
            "bought_together",
            "Frequently bought together",
            "product",
            ["bought_together", "similar", "popular_in_category"],
            description="On a product page, beside the buy button: what goes with it.",
            filters=Filters(exclude_bought_days=90),
            size=4,
        ),
        _ready(
            "cart",
            "Complete your order",
            "cart",
            ["bought_together", "personal", "popular"],
            description="In the cart: what goes with what is in it.",
            size=6,
        ),
        _ready(
            "home",
            "Picked for you",
            "customer",
            ["personal", "recently_viewed", "trending", "popular"],
            description="On the home page: personal picks, or what is in demand for a new visitor.",
            filters=Filters(max_per_brand=3),
        ),
        _ready(
            "empty_search",
            "Popular right now",
            "none",
            ["trending", "popular"],
            description="When a search finds nothing.",
        ),
        _ready(
            "not_found",
            "Maybe you were looking for",
            "customer",
            ["recently_viewed", "personal", "popular"],
            description="On the 404 page.",
        ),
        _ready(
            "email",
            "Picked for you",
            "customer",
            ["personal", "popular"],
            description="In messages (win-back, welcome, after a purchase): personal picks with images.",
            filters=Filters(has_image=True, exclude_bought_days=30, max_per_brand=2),
            size=4,
            control_share=0.0,
        ),
    )
}
