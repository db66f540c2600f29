"""Predictions on a workspace: read the purchase history, fit, predict, store traits, evaluate the churn model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from boomerang.core.errors import ValidationFailed
from boomerang.core.vocab import CHANNELS
from boomerang.db import UnitOfWork
from boomerang.events.log import EventLog
from boomerang.metrics import rfm, source
from boomerang.metrics.service import consent_changes
from boomerang.predictions import churn, clv, summary

TRAIT = "predictions"


class Options(BaseModel):
    """What to fit and predict; field names are the CLI options' and the query parameters' names."""

    model_config = ConfigDict(extra="forbid")

    until: date | None = Field(default=None, description="end of calibration, included (default: the last purchase)")
    unit: Literal["day", "week"] = "week"
    horizon_days: int = Field(default=90, ge=1, le=3650, description="how far ahead to predict")
    churn: bool = Field(default=True, description="also fit the churn classifier (churn_risk)")


class Evaluation(BaseModel):
    """A time-split evaluation: fit on the purchases up to `cutoff`, check who buys in the weeks after."""

    model_config = ConfigDict(extra="forbid")

    cutoff: date
    horizon_weeks: int = Field(default=13, ge=1, le=520)
    unit: Literal["day", "week"] = "week"


def _parse(model: type[BaseModel], params: dict[str, Any]):
    try:
        return model.model_validate({k: v for k, v in params.items() if v is not None})
    except ValidationError as exc:
        raise ValidationFailed(
            [
                {"field": ".".join(str(p) for p in e["loc"]) or "options", "reason": e["msg"]}
                for e in exc.errors(include_url=False)
            ]
        ) from None


def options(**params: Any) -> Options:
    """Options from loose parameters (strings from the CLI or a query string); errors name the option."""
    return _parse(Options, params)


@dataclass
class History:
    """Everything the models read, up to the latest snapshot asked for."""

    purchases: pd.DataFrame  # customer_id, order_id, ts, value
    daily: pd.DataFrame  # summary.transactions()
    lines: pd.DataFrame  # customer_id, order_id, ts, sku, category, quantity
    consents: pd.DataFrame  # customer_id, channel, granted, at
    rfm: dict[date, pd.DataFrame]  # rfm.scores() at the snapshot days, by customer_id


def _after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time())


def history(
    uow: UnitOfWork, log: EventLog, until: date | None, *, field: str = "until", features_back: int | None = None
) -> tuple[History, date]:
    """The purchase history and `until` filled in and checked; with `features_back`, also the order lines,
    consents and RFM scores that the classifier's features need at `until` and that many days before it."""
    with log.reader() as r:
        events = r.events
        purchases = source.purchases(events).execute()
        if purchases.empty:
            raise ValidationFailed([{"field": field, "reason": "the event log holds no purchase yet"}])
        first, last = purchases["ts"].min().date(), purchases["ts"].max().date()
        until = until or last
        if until < first:
            raise ValidationFailed([{"field": field, "reason": f"{until} is before the first purchase ({first})"}])
        lines, scores = pd.DataFrame(columns=["customer_id", "order_id", "ts", "sku", "category", "quantity"]), {}
        if features_back is not None:
            lines = source.order_lines(events, _after(until)).execute()
            days = (until, churn.shifted(until, features_back))
            scores = {day: rfm.scores(events, _after(day)).execute().set_index("customer_id") for day in days}
    purchases = purchases.astype({"customer_id": str})
    consents = pd.DataFrame(columns=["customer_id", "channel", "granted", "at"])
    if features_back is not None:
        with uow.session() as session:
            consents = consent_changes(session)
    return History(purchases, summary.transactions(purchases), lines, consents, scores), until


def fit(uow: UnitOfWork, log: EventLog, **params: Any) -> dict[str, Any]:
    """Fit BG/NBD and Gamma-Gamma on the calibration period; their parameters and diagnostics as JSON."""
    opts = options(**params)
    started = time.perf_counter()
    data, until = history(uow, log, opts.until)
    models = clv.fit(data.daily, until, opts.unit)
    return {**clv.describe(models), "seconds": round(time.perf_counter() - started, 3)}


def _features(data: History, models: clv.Models, day: date, horizon_days: int, categories: list[str]) -> pd.DataFrame:
    """The classifier's matrix as of `day`: BTYD outputs, RFM, orders, categories and channels per customer."""
    btyd = clv.predict(models, horizon_days).set_index("customer_id")
    base = btyd[
        [
            "frequency",
            "recency",
            "T",
            "monetary_value",
            "p_alive",
            "expected_purchases",
            "purchase_probability",
            "predicted_spend",
        ]
    ]
    scores = data.rfm[day][["recency_days", "frequency", "monetary", "r_score", "f_score", "m_score"]].add_prefix(
        "rfm_"
    )
    return churn.assemble(
        base,
        scores,
        churn.order_features(data.purchases, day),
        churn.line_features(data.lines, day, categories),
        churn.channel_features(data.consents, day, CHANNELS),
    )


def _classifier(data: History, until: date, horizon_days: int, unit: str, now: pd.DataFrame):
    """Train on (until - horizon) labelled by (until - horizon, until]; P(buy) for `now`'s customers, or a reason why not."""
    start = churn.shifted(until, horizon_days)
    try:
        past = clv.fit(data.daily, start, unit)
    except ValueError as exc:
        return None, f"churn classifier not fitted: {exc} before {start}"
    categories = churn.top_categories(data.lines)
    train_x = _features(data, past, start, horizon_days, categories)
    try:
        model = churn.train(train_x, churn.labels(train_x.index, data.purchases, start, horizon_days))
    except ValueError as exc:
        return None, f"churn classifier not fitted: {exc}"
    return churn.buy_probability(model, now), None


def predict(uow: UnitOfWork, log: EventLog, **params: Any) -> tuple[dict[str, Any], pd.DataFrame]:
    """The fit's JSON and one row of predictions per customer who bought up to `until`."""
    opts = options(**params)
    started = time.perf_counter()
    data, until = history(uow, log, opts.until, features_back=opts.horizon_days if opts.churn else None)
    models = clv.fit(data.daily, until, opts.unit)
    frame = clv.predict(models, opts.horizon_days)
    info = clv.describe(models)
    if opts.churn:
        now = _features(data, models, until, opts.horizon_days, churn.top_categories(data.lines))
        buy, reason = _classifier(data, until, opts.horizon_days, opts.unit, now)
        info["churn_classifier"] = {"fitted": buy is not None, "reason": reason}
        if buy is not None:
            frame["churn_risk"] = 1 - pd.Series(buy, index=now.index).reindex(frame["customer_id"]).to_numpy()
        else:
            info["warnings"].append(reason)
    frame = frame.assign(as_of=pd.Timestamp(until).as_unit("us"), horizon_days=opts.horizon_days)
    info.update(horizon_days=opts.horizon_days, seconds=round(time.perf_counter() - started, 3))
    return info, frame


def store(log: EventLog, frame: pd.DataFrame) -> int:
    """Replace the stored `predictions` traits with `frame`."""
    return log.save_traits(TRAIT, frame)


def evaluate(uow: UnitOfWork, log: EventLog, **params: Any) -> dict[str, Any]:
    """ROC AUCs for 'buys in the `horizon_weeks` after `cutoff`': the classifier, BG/NBD's expected purchases, recency."""
    opts = _parse(Evaluation, params)
    started = time.perf_counter()
    days = opts.horizon_weeks * 7
    data, cut = history(uow, log, opts.cutoff, field="cutoff", features_back=days)
    last = data.purchases["ts"].max().date()
    if cut + timedelta(days=days) > last:
        reason = f"{cut} + {days} days runs past the last purchase ({last}): nothing to check against"
        raise ValidationFailed([{"field": "horizon_weeks", "reason": reason}])
    models = clv.fit(data.daily, cut, opts.unit)
    now = _features(data, models, cut, days, churn.top_categories(data.lines))
    y = churn.labels(now.index, data.purchases, cut, days)
    buy, reason = _classifier(data, cut, days, opts.unit, now)
    fitted = clv.describe(models)
    return {
        "cutoff": cut.isoformat(),
        "horizon_weeks": opts.horizon_weeks,
        "customers": int(len(y)),
        "buyers": int(y.sum()),
        "roc_auc": {
            "classifier": churn.auc(y, buy) if buy is not None else None,
            "bgnbd_expected_purchases": churn.auc(y, now["expected_purchases"].to_numpy()),
            "recency": churn.auc(y, -now["rfm_recency_days"].to_numpy()),
        },
        "classifier": {"fitted": buy is not None, "reason": reason, "features": list(now.columns)},
        "bgnbd": fitted["bgnbd"],
        "gamma_gamma": fitted["gamma_gamma"],
        "warnings": fitted["warnings"] + ([reason] if reason else []),
        "seconds": round(time.perf_counter() - started, 3),
    }
