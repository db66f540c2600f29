"""Predictions on a workspace: read the purchase history, fit, predict, store traits."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from boomerang.core.errors import ValidationFailed
from boomerang.core.vocab import CHANNELS
from boomerang.customers.models import Customer
from boomerang.db import UnitOfWork, in_chunks
from boomerang.events.log import EventLog
from boomerang.metrics import rfm, source
from boomerang.metrics.service import consent_changes
from boomerang.predictions import churn, clv, forecast, summary

TRAIT = "predictions"
IDENTITY_COLUMNS = ("external_id", "email")


class Options(BaseModel):
    """What to fit and predict; field names are the CLI options' and the query parameters' names."""

    model_config = ConfigDict(extra="forbid")

    until: date | None = Field(default=None, description="end of calibration, included (default: the last purchase)")
    unit: Literal["day", "week"] = "week"
    horizon_days: int = Field(default=90, ge=1, le=3650, description="how far ahead to predict")
    churn: bool = Field(
        default=True,
        description="fit the gradient-boosted models for churn probability, purchases and next purchase "
        "(without: BG/NBD's)",
    )


def parse(model: type[BaseModel], params: dict[str, Any]):
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
    return parse(Options, params)


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


def features(data: History, models: clv.Models, day: date, horizon_days: int, categories: list[str]) -> pd.DataFrame:
    """The gradient-boosted models' matrix as of `day`: BTYD outputs, RFM, orders, categories and channels per customer."""
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


def forecaster(
    data: History, until: date, horizon_days: int, unit: str
) -> tuple[forecast.Forecaster | None, str | None]:
    """The gradient-boosted models trained on (until - horizon, until], or None and the reason why not."""
    start = churn.shifted(until, horizon_days)
    try:
        past = clv.fit(data.daily, start, unit)
    except ValueError as exc:
        return None, f"gradient-boosted models not fitted: {exc} before {start}"
    train_x = features(data, past, start, horizon_days, churn.top_categories(data.lines))
    try:
        return forecast.fit(
            train_x, forecast.window(data.daily, train_x.index, start, horizon_days), horizon_days
        ), None
    except ValueError as exc:
        return None, f"gradient-boosted models not fitted: {exc}"


def _identities(uow: UnitOfWork, customer_ids: pd.Series) -> pd.DataFrame:
    """The shop's own id (external_id) and the email of each customer, by our customer_id."""
    with uow.session() as session:
        rows = in_chunks(
            session,
            lambda chunk: sa.select(Customer.id, Customer.external_id, Customer.email).where(Customer.id.in_(chunk)),
            customer_ids.tolist(),
        )
    found = pd.DataFrame(rows, columns=["customer_id", "external_id", "email"]).astype({"customer_id": str})
    return found.set_index("customer_id").reindex(customer_ids)


def _use_forecast(frame: pd.DataFrame, models: clv.Models, predicted: pd.DataFrame) -> pd.DataFrame:
    """The BTYD frame with the gradient-boosted purchase probability, purchases and next purchase in their place."""
    ahead = predicted.reindex(frame["customer_id"])
    probability, expected = ahead["purchase_probability"].to_numpy(), ahead["expected_purchases"].to_numpy()
    days = np.ceil(ahead["next_purchase_days"].to_numpy())
    # A next purchase is only dated for those more likely to buy in the horizon than not, as BG/NBD's median.
    days = np.where(probability >= 0.5, days, np.nan)
    end = pd.Timestamp(models.until)
    next_day = pd.to_datetime([end + pd.Timedelta(days=float(d)) if np.isfinite(d) else pd.NaT for d in days])
    return frame.assign(
        expected_purchases=expected,
        purchase_probability=probability,
        churn_probability=1 - probability,
        predicted_clv=expected * frame["predicted_spend"].to_numpy(),
        expected_next_purchase=next_day.astype("datetime64[us]"),
    )


def predict(uow: UnitOfWork, log: EventLog, **params: Any) -> tuple[dict[str, Any], pd.DataFrame]:
    """The fit's JSON and one row of predictions per customer who bought up to `until`."""
    opts = options(**params)
    started = time.perf_counter()
    data, until = history(uow, log, opts.until, features_back=opts.horizon_days if opts.churn else None)
    models = clv.fit(data.daily, until, opts.unit)
    frame = clv.predict(models, opts.horizon_days)
    info = clv.describe(models)
    info["model"] = "bgnbd"
    if opts.churn:
        now = features(data, models, until, opts.horizon_days, churn.top_categories(data.lines))
        fitted, reason = forecaster(data, until, opts.horizon_days, opts.unit)
        info["gradient_boosting"] = {"fitted": fitted is not None, "reason": reason}
        if fitted is not None:
            frame = _use_forecast(frame, models, forecast.apply(fitted, now))
            info["model"] = "gradient_boosting"
        else:
            info["warnings"].append(reason)
    frame = frame.assign(as_of=pd.Timestamp(until).as_unit("us"), horizon_days=opts.horizon_days)
    identities = _identities(uow, frame["customer_id"])
    frame.insert(1, "external_id", identities["external_id"].to_numpy())
    frame.insert(2, "email", identities["email"].to_numpy())
    info.update(horizon_days=opts.horizon_days, seconds=round(time.perf_counter() - started, 3))
    return info, frame


def store(log: EventLog, frame: pd.DataFrame) -> int:
    """Replace the stored `predictions` traits with `frame` (without the identities, which live on the profile)."""
    return log.save_traits(TRAIT, frame.drop(columns=list(IDENTITY_COLUMNS), errors="ignore"))
