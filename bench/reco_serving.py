"""bench/reco.py's serving part: every ready-made block filled in process beside a naive dense baseline, and the
whole HTTP path at the demo scale (`boomerang demo`, `reco train`, `serve`, GET /api/recommendations/{block})."""

from __future__ import annotations

import inspect
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from boomerang.recommendations import model as trained
from boomerang.recommendations.blocks import READY_MADE, Block
from boomerang.recommendations.catalog_index import CatalogIndex
from boomerang.recommendations.serving import Context, Filler
from reco_shop import AIM_P99_MS, WARM_UP, say, timed

# -- serving ----------------------------------------------------------------------------------------------------


@dataclass
class Requests:
    """Who asks: known customers with their purchases, skus by traffic."""

    customers: np.ndarray  # ids the model knows
    skus: np.ndarray  # catalog skus
    traffic: np.ndarray  # per sku, the chance a page shows it
    bought: dict[str, list[tuple[np.datetime64, str, str]]]  # customer -> (at, order, sku)
    now: datetime

    @classmethod
    def of(cls, purchases: pd.DataFrame, customers, skus, traffic: np.ndarray | None, now: datetime) -> Requests:
        p = purchases.sort_values("at")
        bought: dict[str, list] = {}
        for cid, at, basket, sku in zip(p["customer_id"], p["at"].to_numpy(), p["basket"], p["sku"]):
            bought.setdefault(str(cid), []).append((at, str(basket), str(sku)))
        skus = np.asarray(skus, dtype=object)
        if traffic is None or len(traffic) != len(skus) or not traffic.sum():
            traffic = np.ones(len(skus))
        return cls(np.asarray(customers, dtype=object), skus, traffic / traffic.sum(), bought, now)

    def contexts(self, block: Block, n: int, rng: np.random.Generator) -> list[Context]:
        out = []
        for _ in range(n):
            known = {"product": 0.5, "cart": 0.6, "customer": 0.75, "none": 0.0}[block.context]
            known = 1.0 if block.name == "email" else known
            cid = str(rng.choice(self.customers)) if rng.random() < known and len(self.customers) else None
            product = self.sku(rng) if block.context == "product" else None
            cart = tuple(self.sku(rng) for _ in range(rng.integers(1, 6))) if block.context == "cart" else ()
            recent = () if cid else tuple(self.sku(rng) for _ in range(rng.integers(0, 4)))
            days = block.filters.exclude_bought_days
            history = self.bought.get(cid, []) if cid else []
            since = np.datetime64(self.now - timedelta(days=days or 0))
            recently = frozenset(s for at, _, s in history if days and at >= since)
            together = "bought_together" in block.chain and not (product or cart) and history
            last = tuple(s for _, o, s in history if o == history[-1][1]) if together else ()
            out.append(
                Context(
                    customer_id=cid,
                    product=product,
                    cart=cart,
                    recent=recent,
                    bought_recently=recently,
                    last_order=last,
                )
            )
        return out

    def sku(self, rng: np.random.Generator) -> str:
        if rng.random() < 0.5:
            return str(self.skus[rng.choice(len(self.skus), p=self.traffic)])
        return str(self.skus[rng.integers(len(self.skus))])


class Naive:
    """Every product scored densely per request, masked and sorted whole: the computation serving avoids."""

    def __init__(self, filler: Filler) -> None:
        self.f, m = filler, filler.model
        self.rows = filler._to_row  # model item -> catalog row
        together = getattr(filler.catalog, "together", None)  # catalog rows (now), or model items (before)
        self.together_rows = together is not None
        together = together if together is not None else getattr(m, "together", None)
        self.together = together.tocsr() if together is not None else None
        self.coviewed = m.coviewed.tocsr()

    def fill(self, block: Block, context: Context) -> list[int]:
        f, m = self.f, self.f.model
        user = m.row(context.customer_id)
        anchors = [s for s in ((context.product,) if context.product else context.cart)]
        items = m.items.get_indexer(pd.Index(anchors)) if anchors else np.zeros(0, dtype=np.int64)
        items = items[items >= 0]
        extra = np.zeros(len(f.catalog))
        if len(items):
            scores = np.asarray(self.coviewed[items].toarray().sum(axis=0)).ravel()
            if self.together is not None and self.together_rows:
                rows = f.catalog.rows(anchors)
                extra = np.asarray(self.together[rows[rows >= 0]].toarray().sum(axis=0)).ravel()
            elif self.together is not None:
                scores = scores + np.asarray(self.together[items].toarray().sum(axis=0)).ravel()
        elif user >= 0:
            scores = m.item_factors @ m.user_factors[user]
        else:
            scores = m.trending + 1e-6 * m.popular
        full = np.full(len(f.catalog), -np.inf)
        known = self.rows >= 0
        full[self.rows[known]] = scores[known]
        full += extra
        allowed = f._static_mask(block).copy()
        skip = f.catalog.rows(list(context.cart) + list(context.bought_recently) + [context.product or ""])
        allowed[skip[skip >= 0]] = False
        full[~allowed] = -np.inf
        order = np.argsort(-full, kind="stable")
        return [int(r) for r in order[: block.size]]


@dataclass
class Latency:
    block: str
    ms: np.ndarray
    naive: np.ndarray | None = None
    short: int = 0  # lists shorter than the block's size

    def stats(self, which: np.ndarray) -> tuple[float, float, float]:
        return float(np.percentile(which, 50)), float(np.percentile(which, 99)), float(which.max())


def serve_all(filler: Filler, requests: Requests, n: int, seed: int, label: str) -> list[Latency]:
    rng = np.random.default_rng(seed)
    naive = Naive(filler) if filler.model is not None else None
    out = []
    for block in READY_MADE.values():
        contexts = requests.contexts(block, n + WARM_UP, rng)
        say(f"{label}: {n:,} fills of {block.name}")
        times, short = [], 0
        for i, context in enumerate(contexts):
            started = time.perf_counter_ns()
            picks = filler.fill(block, context)
            elapsed = time.perf_counter_ns() - started
            if i >= WARM_UP:
                times.append(elapsed / 1e6)
                short += len(picks) < block.size
        naive_ms = None
        if naive is not None:
            try:
                naive_ms = []
                for context in contexts[WARM_UP:]:
                    started = time.perf_counter_ns()
                    naive.fill(block, context)
                    naive_ms.append((time.perf_counter_ns() - started) / 1e6)
                naive_ms = np.asarray(naive_ms)
            except Exception as e:  # noqa: BLE001 - the model's shape moved: ours is still measured
                say(f"{label}: the naive baseline failed: {type(e).__name__}: {e}")
                naive_ms = None
        out.append(Latency(block.name, np.asarray(times), naive_ms, short))
    return out


def print_serving(title: str, results: list[Latency], aim: bool) -> None:
    print(f"\n{title}")
    print(
        f"  {'block':16} {'chain':52} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  "
        f"{'naive p50':>9} {'naive p99':>9} {'p50 ratio':>9} {'p99 ratio':>9}  short" + ("  aim" if aim else "")
    )
    for r in results:
        p50, p99, top = r.stats(r.ms)
        chain = " > ".join(READY_MADE[r.block].chain)
        line = f"  {r.block:16} {chain:52} {p50:7.2f} {p99:7.2f} {top:7.2f}  "
        if r.naive is not None:
            n50, n99, _ = r.stats(r.naive)
            line += f"{n50:9.2f} {n99:9.2f} {p50 / n50:9.2f} {p99 / n99:9.2f}"
        else:
            line += f"{'-':>9} {'-':>9} {'-':>9} {'-':>9}"
        line += f"  {r.short:5}"
        if aim:
            line += "  met" if p99 <= AIM_P99_MS else f"  MISSED ({p99:.1f} > {AIM_P99_MS:.0f} ms)"
        print(line)
    print("  ratio: ours / naive (below 1: serving is faster than scoring everything); short: lists under the size")


# -- the HTTP path at the demo scale ----------------------------------------------------------------------------


def build_catalog(frame: pd.DataFrame, baskets: pd.DataFrame | None) -> CatalogIndex:
    """CatalogIndex.build, with the order lines bought-together is learned from where it takes them."""
    if baskets is not None and "baskets" in inspect.signature(CatalogIndex.build).parameters:
        return CatalogIndex.build(frame, baskets=baskets)
    return CatalogIndex.build(frame)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "boomerang", "--home", str(home), *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"boomerang {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


@dataclass
class Demo:
    summary: dict
    train: dict
    demo_s: float
    train_s: float
    filler: Filler
    requests: Requests
    http: list[Latency] = field(default_factory=list)


def demo_path(home: Path, customers: int, days: int, n: int, seed: int) -> Demo:
    import httpx
    import orjson
    import sqlalchemy as sa

    from boomerang.bootstrap import open_workspace
    from boomerang.config import Settings
    from boomerang.orchestration import reco_training
    from boomerang.recommendations.service import _catalog_frame

    say(f"demo: boomerang demo --no-serve --customers {customers} --days {days} into {home}")
    summary, demo_s = timed(
        lambda: orjson.loads(
            cli(home, "demo", "--no-serve", "--json", "--customers", str(customers), "--days", str(days))
        )
    )
    say("demo: boomerang reco train")
    result, train_s = timed(lambda: orjson.loads(cli(home, "reco", "train", "--json")))
    ws = open_workspace(Settings(home=home))
    model = trained.load(ws.settings.reco_model_path)
    from boomerang.recommendations import service

    with ws.uow.session() as session:
        baskets = service._baskets(session) if hasattr(service, "_baskets") else None
        catalog = build_catalog(_catalog_frame(session), baskets)
    purchases, signals = reco_training.read(ws.log, now=ws.now(), history_days=ws.settings.recommendations.history_days)
    traffic = catalog.skus.get_indexer(signals["sku"].astype(str))
    traffic = np.bincount(traffic[traffic >= 0], minlength=len(catalog)).astype(float)
    with ws.uow.session() as session:
        from boomerang.customers.models import Customer

        ids = set(session.scalars(sa.select(Customer.id)))
    known = [c for c in model.customers if c in ids]
    requests = Requests.of(purchases, known, catalog.skus, traffic, ws.now())
    ws.engine.dispose()
    filler = Filler(catalog, model)
    demo = Demo(summary, result, demo_s, train_s, filler, requests)

    port = _port()
    env = {**os.environ, "BOOMERANG_HOME": str(home)}
    say(f"demo: boomerang serve on 127.0.0.1:{port}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "boomerang", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/health")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        rng = np.random.default_rng(seed + 1)
        headers = {"Authorization": f"Bearer {summary['secret_key']}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for block in READY_MADE.values():
                say(f"demo: {n:,} GET /api/recommendations/{block.name}")
                times, short = [], 0
                for i, context in enumerate(requests.contexts(block, n + WARM_UP, rng)):
                    params: dict[str, Any] = {}
                    if context.customer_id:
                        params["customer"] = context.customer_id
                    if context.product:
                        params["product"] = context.product
                    if context.cart:
                        params["cart"] = ",".join(context.cart)
                    started = time.perf_counter_ns()
                    r = client.get(f"/api/recommendations/{block.name}", params=params)
                    elapsed = time.perf_counter_ns() - started
                    if r.status_code != 200:
                        raise RuntimeError(f"GET {block.name} {params}: {r.status_code} {r.text[:300]}")
                    if i >= WARM_UP:
                        times.append(elapsed / 1e6)
                        short += len(r.json()["items"]) < block.size
                demo.http.append(Latency(block.name, np.asarray(times), None, short))
    finally:
        proc.terminate()
        proc.wait()
    return demo
