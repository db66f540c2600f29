"""Training the recommendations: the purchases, carts and views of the last `history_days` read from the event log,
every algorithm fitted (`recommendations.model.train`), their quality measured on the shop's own purchases (the
last four weeks held out), and the model saved where serving picks it up. The pipeline runs it in a thread of its
own when the model is older than `train_every_hours`, so neither serving nor the pipeline waits for it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from boomerang.events.log import EventLog
from boomerang.metrics import source
from boomerang.recommendations import algorithms, evaluate
from boomerang.recommendations import model as trained

log = logging.getLogger("boomerang.recommendations")
SIGNALS = {"Product Viewed": "view", "Product Added": "cart"}
HELD_OUT_WEEKS = 4
QUALITY_MODELS = ("popularity", "top_frequency", "bought_together", "item_knn", "als", "tifu_knn")


def read(log_: EventLog, *, now: datetime, history_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Purchases (customer_id, sku, at, basket) and signals (customer_id, sku, at, kind) of the `history_days`
    before the latest event (a shop whose history was imported later still learns its last months)."""
    with log_.reader() as r:
        events = r.events.filter(r.events.timestamp < now)
        latest = events.timestamp.max().execute()
        if latest is not None and not pd.isna(latest):  # an empty log: the queries below find nothing
            events = events.filter(events.timestamp >= pd.Timestamp(latest) - timedelta(days=history_days))
        lines = source.order_lines(events, now)
        lines = lines.filter(lines.sku.notnull())
        purchases = lines.select("customer_id", "sku", at=lines.ts, basket=lines.order_id).to_pandas()
        e = events.filter(events.event.isin(list(SIGNALS)) & events.customer_id.notnull())
        sku = source.text(e, "sku").coalesce(source.text(e, "product_id"))
        kind = ibis.cases(*((e.event == name, k) for name, k in SIGNALS.items()))
        signals = e.select("customer_id", sku=sku, at=e.timestamp, kind=kind)
        signals = signals.filter(signals.sku.notnull()).to_pandas()
    return purchases, signals


def quality(purchases: pd.DataFrame, *, now: datetime, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """Recall and NDCG of the algorithms and the personal chain on the last weeks of the shop's own purchases."""
    cutoff = now - timedelta(weeks=HELD_OUT_WEEKS)
    frame = purchases.assign(weight=1.0)
    data = evaluate.split(frame, cutoff, HELD_OUT_WEEKS)
    if not len(data.users):
        return []
    chosen = [m for name, m in algorithms.catalogue().items() if name in QUALITY_MODELS]
    return evaluate.evaluate(data, chosen, progress=lambda name: progress(f"quality: {name}"))


def train(
    log_: EventLog,
    path: Path,
    *,
    now: datetime,
    history_days: int = 730,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Train, measure and save; returns what was learned from (counts), the quality table and the seconds."""
    started = time.perf_counter()
    progress("reading the event log")
    purchases, signals = read(log_, now=now, history_days=history_days)
    if purchases.empty and signals.empty:
        return {"trained": False, "reason": "no purchases or product views in the event log yet"}
    # as of the latest interaction: a shop's last months, even when its history was imported years later
    latest = max(pd.to_datetime(frame["at"]).max() for frame in (purchases, signals) if len(frame))
    as_of = min(now, pd.Timestamp(latest).to_pydatetime())
    model = trained.train(purchases.assign(weight=1.0), signals, now=as_of, progress=progress)
    model.quality = quality(purchases, now=as_of, progress=progress) if not purchases.empty else []
    model.trained_at, model.data_until = now, as_of
    progress("saving")
    trained.save(model, path)
    return {
        "trained": True,
        "trained_at": now,
        "data_until": as_of,
        "counts": model.counts,
        "quality": model.quality,
        "seconds": round(time.perf_counter() - started, 2),
    }


def due(path: Path, *, now: datetime, every_hours: float) -> bool:
    """Whether the saved model is missing or older than `every_hours`."""
    about = trained.summary(path)
    return about is None or now - about["trained_at"] >= timedelta(hours=every_hours)


class Trainer:
    """One training at a time per model file, in a thread of its own, with the step it is at while it runs and
    how it ended (the dashboard shows both)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state: dict[str, Any] = {"running": False}

    def start(self, log_: EventLog, path: Path, *, now: datetime, history_days: int) -> bool:
        """Start training; False when one is already running."""
        with self._lock:
            if self.state.get("running"):
                return False
            self.state = {"running": True, "step": "starting", "started": time.time()}
        thread = threading.Thread(
            target=self._run, args=(log_, path, now, history_days), name="reco-training", daemon=True
        )
        thread.start()
        return True

    def _step(self, step: str) -> None:
        self.state = {**self.state, "step": step}

    def _run(self, log_: EventLog, path: Path, now: datetime, history_days: int) -> None:
        try:
            result = train(log_, path, now=now, history_days=history_days, progress=self._step)
            outcome = {"trained": result["trained"], "reason": result.get("reason")}
            log.info("recommendations trained: %s", result.get("counts") or result.get("reason"))
        except Exception as exc:  # noqa: BLE001 - serving keeps the model it had; the next round tries again
            log.exception("training the recommendations failed; will retry")
            outcome = {"trained": False, "reason": f"training failed: {exc}"}
        self.state = {"running": False, "finished": time.time(), **outcome}


_TRAINERS: dict[Path, Trainer] = {}


def trainer(path: Path) -> Trainer:
    """The trainer of this model file (the process's one)."""
    return _TRAINERS.setdefault(path, Trainer())
