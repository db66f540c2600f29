"""The demo shop's catalog: coffee, tea, cosmetics, sweets and home goods in a category tree."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

SHOP_URL = "https://shop.example.com"

# Leaf category, replenishment cycle in days (None: a durable good), median price, how many products,
# how popular it is, its brands and the variants its products are named after.
LEAVES = [
    (
        "Coffee > Beans > Espresso",
        30,
        9.9,
        14,
        9,
        "coffee",
        "Brazil Santos|Colombia Huila|Ethiopia Sidamo|Guatemala Antigua|Crema Blend|Dark Roast|Italian Blend|House Blend",
    ),
    (
        "Coffee > Beans > Filter",
        30,
        10.9,
        12,
        7,
        "coffee",
        "Kenya AA|Ethiopia Yirgacheffe|Rwanda Nyamasheke|Costa Rica Tarrazu|Honduras Lempira|Light Roast",
    ),
    ("Coffee > Ground", 28, 6.9, 10, 6, "coffee", "Breakfast Blend|Moka Grind|Turkish Grind|Decaf|Mild Roast"),
    ("Coffee > Capsules", 21, 4.9, 14, 8, "coffee", "Lungo|Ristretto|Decaf|Vanilla|Caramel|Intenso|Arpeggio"),
    ("Tea > Black", 40, 5.9, 14, 6, "tea", "Assam|Ceylon|Darjeeling|Earl Grey|English Breakfast|Lapsang|Masala Chai"),
    ("Tea > Green", 40, 6.9, 14, 6, "tea", "Sencha|Gunpowder|Jasmine|Matcha|Genmaicha|Bancha|Mint Green"),
    ("Tea > Herbal", 40, 4.9, 12, 5, "tea", "Chamomile|Rooibos|Peppermint|Hibiscus|Ivan Chai|Linden|Sea Buckthorn"),
    ("Tea > Oolong", 45, 9.9, 8, 2, "tea", "Tie Guan Yin|Da Hong Pao|Milk Oolong|Dong Ding"),
    (
        "Cosmetics > Skincare > Face Creams",
        45,
        21.0,
        14,
        5,
        "cosmetics",
        "Hydrating Cream|Night Cream|SPF 30 Day Cream|Rich Cream|Light Gel Cream|Repair Balm",
    ),
    (
        "Cosmetics > Skincare > Serums",
        50,
        27.0,
        10,
        3,
        "cosmetics",
        "Vitamin C Serum|Hyaluronic Serum|Retinol Serum|Niacinamide Serum",
    ),
    (
        "Cosmetics > Skincare > Cleansers",
        40,
        10.9,
        10,
        3,
        "cosmetics",
        "Foam Cleanser|Micellar Water|Cleansing Oil|Gentle Gel",
    ),
    (
        "Cosmetics > Body > Shower Gels",
        35,
        5.9,
        10,
        3,
        "cosmetics",
        "Lavender Shower Gel|Citrus Shower Gel|Oat Shower Gel|Mint Shower Gel",
    ),
    (
        "Cosmetics > Body > Body Lotions",
        45,
        9.9,
        10,
        2,
        "cosmetics",
        "Shea Body Lotion|Almond Body Lotion|Aloe Body Lotion",
    ),
    (
        "Cosmetics > Hair > Shampoos",
        40,
        7.9,
        12,
        3,
        "cosmetics",
        "Volume Shampoo|Repair Shampoo|Daily Shampoo|Anti-dandruff Shampoo",
    ),
    (
        "Sweets > Chocolate",
        25,
        3.5,
        14,
        5,
        "sweets",
        "Dark 70%|Milk Hazelnut|Sea Salt|Orange Dark|White Raspberry|Ruby",
    ),
    ("Sweets > Honey & Jams", 50, 5.9, 8, 2, "sweets", "Acacia Honey|Buckwheat Honey|Apricot Jam|Cherry Jam"),
    (
        "Home > Kitchen > Mugs",
        None,
        12.9,
        16,
        4,
        "home",
        "Stoneware Mug|Glass Mug|Enamel Mug|Travel Mug|Espresso Cup|Latte Cup",
    ),
    ("Home > Kitchen > Teapots", None, 34.0, 10, 2, "home", "Glass Teapot|Cast Iron Teapot|Ceramic Teapot|Kyusu"),
    ("Home > Kitchen > Coffee Grinders", None, 69.0, 8, 1, "home", "Hand Grinder|Burr Grinder|Travel Grinder"),
    ("Home > Kitchen > French Presses", None, 29.0, 8, 1, "home", "French Press|Cold Brew Jar|Pour-over Set|Moka Pot"),
    ("Home > Kitchen > Coffee Machines", None, 249.0, 6, 1, "home", "Espresso Machine|Drip Brewer|Capsule Machine"),
    ("Home > Textiles > Towels", None, 19.9, 10, 2, "home", "Bath Towel|Waffle Towel|Linen Towel|Hand Towel"),
    ("Home > Textiles > Blankets", None, 49.0, 8, 1, "home", "Wool Blanket|Knitted Throw|Cotton Blanket"),
    (
        "Home > Decor > Candles",
        60,
        14.9,
        12,
        3,
        "home",
        "Amber Candle|Cedar Candle|Vanilla Candle|Fig Candle|Sea Salt Candle",
    ),
    ("Home > Decor > Vases", None, 29.0, 8, 1, "home", "Clay Vase|Glass Vase|Bud Vase"),
    (
        "Gifts > Gift Sets",
        None,
        39.0,
        8,
        2,
        "gifts",
        "Coffee Lover Set|Tea Ceremony Set|Spa Evening Set|Sweet Box|Barista Starter Set|Winter Tea Set|Chocolate Tasting Set|Self-care Box",
    ),
    ("Gifts > Gift Cards", None, 50.0, 3, 1, "gifts", "Gift Card 25|Gift Card 50|Gift Card 100"),
]
BRANDS = {
    "coffee": ["Roast & Co", "Kava Lab", "Black Crow", "Morning Ritual", "Lviv Roasters"],
    "tea": ["Mountain Leaf", "Chaika Tea", "Silk Road", "Green Hill"],
    "cosmetics": ["Lumi", "Skin Theory", "Botanica", "Pure Ritual", "Nordic Dew"],
    "sweets": ["Choco Loco", "Bee Happy", "Sweet Carpathia"],
    "home": ["Hygge Home", "Clay & Co", "Linen Lane", "Barista Pro", "Aroma Lab"],
    "gifts": ["Boomerang Shop"],
}
SIZES = {
    "coffee": ["250 g", "500 g", "1 kg"],
    "tea": ["50 g", "100 g", "20 bags"],
    "cosmetics": ["50 ml", "100 ml", "200 ml"],
    "sweets": ["100 g", "250 g"],
    "home": [""],
    "gifts": [""],
}
SIZES["Coffee > Capsules"] = ["10 capsules", "30 capsules"]
SIZES["Tea > Oolong"] = ["50 g", "100 g"]
# Price of a size relative to the smallest one of its family (the leaf's median is for the smallest).
SIZE_PRICE = {
    "500 g": 1.8,
    "1 kg": 3.3,
    "100 g": 1.8,
    "100 ml": 1.6,
    "200 ml": 2.6,
    "250 g": 2.2,
    "20 bags": 0.8,
    "30 capsules": 2.7,
}
PREFIX = {"coffee": "COF", "tea": "TEA", "cosmetics": "COS", "sweets": "SWT", "home": "HOM", "gifts": "GFT"}


@dataclass
class Catalog:
    """Products as a frame for loading and as arrays for sampling (products are grouped by leaf category)."""

    products: pd.DataFrame
    leaf: np.ndarray  # leaf index of each product
    price: np.ndarray
    in_stock: np.ndarray  # bool
    available: np.ndarray  # the product itself, or an in-stock product of its leaf to buy instead
    quality: np.ndarray  # mean review rating
    leaf_names: list[str]
    leaf_cycle: np.ndarray  # replenishment days, 0 for durables
    leaf_weight: np.ndarray  # leaf popularity, sums to 1
    _cum: np.ndarray  # leaf index + cumulative popularity inside the leaf, for vectorised picks

    @property
    def size(self) -> int:
        return len(self.price)

    def pick(self, rng: np.random.Generator, leaves: np.ndarray) -> np.ndarray:
        """One product from each given leaf, popular products more often."""
        at = np.searchsorted(self._cum, leaves + rng.random(len(leaves)) * 0.999999, side="right")
        return np.minimum(at, self.size - 1)

    def random_leaves(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(len(self.leaf_names), size=n, p=self.leaf_weight)


def slug(text: str) -> str:
    """Lower-case words joined by dashes, for URLs."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _price(rng: np.random.Generator, median: float, factor: float) -> float:
    """Log-normal around the median (times the brand's and the size's factors), ending in .90 or .99."""
    raw = median * factor * float(np.exp(rng.normal(0, 0.2)))
    return max(round(raw) - (0.01 if rng.random() < 0.5 else 0.1), 1.99)


def build(rng: np.random.Generator, currency: str = "EUR") -> Catalog:
    """A catalog of about 300 products; the same generator state gives the same catalog."""
    rows, leaf_of, quality = [], [], []
    counters: dict[str, int] = {}
    premium = {brand: float(np.exp(rng.normal(0, 0.2))) for family in BRANDS.values() for brand in family}
    for index, (category, cycle, median, count, _, family, variants) in enumerate(LEAVES):
        sizes = SIZES.get(category, SIZES[family])
        combos = [(b, v, s) for b in BRANDS[family] for v in variants.split("|") for s in sizes]
        chosen = rng.choice(len(combos), size=min(count, len(combos)), replace=False)
        for brand, variant, size in (combos[i] for i in sorted(chosen)):
            counters[family] = counters.get(family, 0) + 1
            sku = f"{PREFIX[family]}-{counters[family]:04d}"
            name = " ".join(part for part in (brand, variant, size) if part)
            if category.endswith("Gift Cards"):
                price = float(variant.rsplit(" ", 1)[1])
            else:
                price = _price(rng, median, SIZE_PRICE.get(size, 1.0) * premium[brand])
            stock = int(rng.integers(3, 400))
            attributes = {"consumable": cycle is not None}
            if cycle is not None:
                attributes["replenish_days"] = cycle
            rows.append(
                {
                    "sku": sku,
                    "name": name,
                    "category": category,
                    "brand": brand,
                    "price": price,
                    "currency": currency,
                    "in_stock": True,
                    "stock_quantity": stock,
                    "url": f"{SHOP_URL}/p/{slug(name)}-{sku.lower()}",
                    "image_url": f"{SHOP_URL}/img/{sku.lower()}.jpg",
                    "attributes": attributes,
                }
            )
            leaf_of.append(index)
            quality.append(float(rng.uniform(3.3, 4.9)))
    products = pd.DataFrame(rows)
    n = len(products)
    # A few products are sold out; never the only one of its leaf, so every leaf can still be bought.
    leaf = np.array(leaf_of)
    out = rng.random(n) < 0.04
    first_of_leaf = np.r_[True, leaf[1:] != leaf[:-1]]
    out &= ~first_of_leaf
    products.loc[out, "in_stock"] = False
    products.loc[out, "stock_quantity"] = 0
    available = np.arange(n)
    for i in np.flatnonzero(out):
        available[i] = i - 1 if not out[i - 1] else available[i - 1]
    # Popularity inside a leaf follows a power law; the cumulative sums are offset by the leaf index.
    weights = np.empty(n)
    for index in range(len(LEAVES)):
        members = np.flatnonzero(leaf == index)
        ranks = rng.permutation(len(members)) + 1
        w = ranks**-0.9
        weights[members] = np.cumsum(w) / w.sum()
    leaf_weight = np.array([float(spec[4]) for spec in LEAVES])
    return Catalog(
        products=products,
        leaf=leaf,
        price=products["price"].to_numpy(float),
        in_stock=products["in_stock"].to_numpy(bool),
        available=available,
        quality=np.array(quality),
        leaf_names=[spec[0] for spec in LEAVES],
        leaf_cycle=np.array([spec[1] or 0 for spec in LEAVES], float),
        leaf_weight=leaf_weight / leaf_weight.sum(),
        _cum=leaf + weights,
    )
