"""The demo shop: a seeded, reproducible year of a coffee, tea, cosmetics and home-goods shop, in loadable chunks.

Customers sign up over the period (after some anonymous visits), browse their favourite categories,
leave carts behind, buy on a BG/NBD-like process with replenishment cycles for consumables, return
some orders, answer NPS surveys and drop out. `simulate` yields `Chunk`s of whole customers (about
`chunk_events` events each) so memory stays flat at any size; the same config gives the same frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import numpy as np

from boomerang.demo import behaviour as bh
from boomerang.demo import catalog as cat
from boomerang.demo import followups, frames
from boomerang.demo import sessions as se
from boomerang.demo.people import People, places, profiles
from boomerang.events.bulk import Chunk

# Streams of the seed: one per purpose, so that changing one part leaves the others' draws alone.
CATALOG, SIGNUPS, SLICE, PILOT = range(4)
PILOT_CUSTOMERS = 1500  # enough for the event estimate to land within a few percent


@dataclass(frozen=True)
class SimConfig:
    """What to simulate; the same config (seed included) always gives the same chunks."""

    customers: int = 5000
    days: int = 365
    start: date = field(default_factory=lambda: date(2025, 1, 1))
    seed: int = 42
    currency: str = "EUR"
    visitors: float = 0.4  # people who browse and never sign up, per customer
    chunk_events: int = 100_000  # about how many events one chunk carries (load() pays a fixed cost per chunk)

    def __post_init__(self) -> None:
        if self.customers < 1 or self.days < 1 or self.chunk_events < 1 or self.visitors < 0:
            raise ValueError("customers, days and chunk_events must be positive and visitors not negative")


def _rng(config: SimConfig, *keys: int) -> np.random.Generator:
    return np.random.default_rng([config.seed % 2**63, *keys])


@dataclass
class Slice:
    """Everything simulated for some customers and visitors, still as arrays."""

    people: People
    customers: bh.Customers
    purchases: bh.Purchases
    lines: bh.Lines
    orders: bh.Orders
    sessions: se.Sessions
    steps: se.Steps


def _simulate_slice(
    rng: np.random.Generator,
    numbers: np.ndarray,
    signup: np.ndarray,
    visitors: int,
    config: SimConfig,
    cal: bh.Calendar,
    catalog: cat.Catalog,
) -> Slice:
    width = max(5, len(str(config.customers)))
    people = profiles(rng, numbers, seed=config.seed, first_day=config.start, width=width)
    local = bh.local_time(rng, signup, people.offset)
    signup = np.where((local >= 0) & (local < config.days - 0.1), local, np.clip(signup, 0, config.days - 0.1))
    c = bh.customers(rng, signup, people.offset, catalog)
    p = bh.purchases(rng, c, cal, catalog)
    lines = bh.lines(rng, c, p, cal, catalog)
    _, offset = places(rng, visitors)
    guests = se.Visitors(offset=offset, favourites=bh.favourites(rng, visitors, catalog))
    s = se.plan(rng, c, guests, p, lines, cal, catalog)
    steps = se.steps(rng, s, np.r_[c.signup, np.full(visitors, np.inf)], catalog)
    placing = steps.code == se.ORDER
    placed = np.empty(len(p.customer))
    placed[steps.order[placing]] = steps.t[placing]
    o = bh.money_and_lifecycle(rng, c, p, lines, placed, cal, catalog)
    later = np.array([x is not None for x in people.late], bool)
    withdraws = np.array([x is not None and "telegram_chat_id" not in x for x in people.late], bool)
    steps = se.Steps.concat(
        [
            steps,
            followups.after_orders(rng, c, p, lines, o, placed, config.days, catalog),
            followups.profile_updates(rng, c, p, later, withdraws, config.days),
        ]
    )
    return Slice(people, c, p, lines, o, s, steps)


@lru_cache(maxsize=8)
def _pilot(config: SimConfig) -> tuple[float, float, float]:
    """Events per customer as a + b * days left after sign-up, and events per visitor, from a small sample."""
    n = min(config.customers, PILOT_CUSTOMERS)
    cal = bh.calendar(config.start, config.days)
    catalog = cat.build(_rng(config, CATALOG), config.currency)
    rng = _rng(config, PILOT)
    signup = bh.sign_ups(rng, n, cal)
    visitors = int(round(n * config.visitors))
    sim = _simulate_slice(rng, np.arange(1, n + 1), signup, visitors, config, cal, catalog)
    per_actor = np.bincount(sim.steps.actor, minlength=n + visitors)
    left = config.days - sim.customers.signup
    b, a = np.polyfit(left, per_actor[:n], 1) if n > 2 else (0.0, float(per_actor[:n].mean()))
    per_visitor = float(per_actor[n:].mean()) if visitors else 0.0
    return float(a), float(b), per_visitor


def _plan(config: SimConfig) -> tuple[bh.Calendar, np.ndarray, np.ndarray, float]:
    """Sign-up times of all customers and the expected events of each, for cutting chunks and the estimate."""
    cal = bh.calendar(config.start, config.days)
    signup = bh.sign_ups(_rng(config, SIGNUPS), config.customers, cal)
    a, b, per_visitor = _pilot(config)
    expected = np.maximum(a + b * (config.days - signup), 1.0)
    return cal, signup, expected, per_visitor * config.customers * config.visitors


def estimate_events(config: SimConfig) -> int:
    """About how many events `simulate(config)` yields (within a few percent at the default size)."""
    _, _, expected, visitors = _plan(config)
    return int(round(expected.sum() + visitors))


def simulate(config: SimConfig) -> Iterator[Chunk]:
    """Chunks of whole customers, in sign-up order; the first carries the catalog."""
    cal, signup, expected, visitor_events = _plan(config)
    catalog = cat.build(_rng(config, CATALOG), config.currency)
    products = frames.Products(catalog, config.currency)
    total = expected.sum() + visitor_events
    pieces = max(1, int(np.ceil(total / config.chunk_events)))
    # Cut where the expected events reach each piece's share: early customers have more days to act in.
    cuts = np.searchsorted(np.cumsum(expected), expected.sum() * np.arange(1, pieces) / pieces)
    bounds = np.unique(np.r_[0, cuts, config.customers])
    all_visitors = int(round(config.customers * config.visitors))
    width = max(5, len(str(config.customers)))
    session_base = order_base = message_base = 0
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        v_lo, v_hi = all_visitors * lo // config.customers, all_visitors * hi // config.customers
        rng = _rng(config, SLICE, k)
        numbers = np.arange(lo + 1, hi + 1)
        sim = _simulate_slice(rng, numbers, signup[lo:hi], v_hi - v_lo, config, cal, catalog)
        naming = frames.Naming(
            seed=config.seed,
            currency=config.currency,
            start=config.start,
            external=[f"demo-{i:0{width}d}" for i in numbers] + [None] * (v_hi - v_lo),
            anonymous=[f"anon-{config.seed}-{i:0{width}d}" for i in numbers]
            + [f"anon-{config.seed}-v{j:0{width}d}" for j in range(v_lo + 1, v_hi + 1)],
            session_base=session_base,
            order_base=order_base,
            message_base=message_base,
        )
        yield frames.build(
            sim.steps,
            sim.sessions,
            sim.lines,
            sim.orders,
            sim.purchases.customer,
            sim.people,
            naming,
            products,
            catalog,
            with_products=k == 0,
        )
        session_base += len(sim.sessions.actor)
        order_base += len(sim.orders.total)
        message_base += len(sim.steps.t)
