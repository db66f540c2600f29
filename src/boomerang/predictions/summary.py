"""Purchase logs as the per-customer summaries the BTYD models read (pure pandas, no I/O).

The BTYD convention: all purchases of one customer on one calendar day are one transaction (their
values summed). frequency = repeat transaction days, recency = the last transaction since the first,
T = the first transaction to the end of calibration (the end day included), in days or weeks (days / 7);
monetary_value = the mean value of the repeat transactions (0 without any).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

UNIT_DAYS = {"day": 1.0, "week": 7.0}
COLUMNS = ["customer_id", "frequency", "recency", "T", "monetary_value", "first", "last"]


def transactions(purchases: pd.DataFrame, until: date | None = None) -> pd.DataFrame:
    """customer_id, day, value: one row per customer and day with purchases (up to `until`, included)."""
    frame = pd.DataFrame(
        {
            "customer_id": purchases["customer_id"].astype(str),
            "day": pd.to_datetime(purchases["ts"]).dt.floor("D").astype("datetime64[us]"),
            "value": pd.to_numeric(purchases["value"], errors="coerce").fillna(0.0).astype(float),
        }
    )
    if until is not None:
        frame = frame[frame["day"] <= pd.Timestamp(until)]
    return frame.groupby(["customer_id", "day"], as_index=False, sort=True)["value"].sum()


def summarise(daily: pd.DataFrame, end: date, unit: str) -> pd.DataFrame:
    """One row per customer of `transactions()`: frequency, recency, T, monetary_value in `unit`, first, last."""
    days = UNIT_DAYS[unit]
    end_day = pd.Timestamp(end)
    daily = daily[daily["day"] <= end_day].sort_values(["customer_id", "day"])
    if daily.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in COLUMNS}).astype({"customer_id": str})
    grouped = daily.groupby("customer_id", sort=True)
    first, last = grouped["day"].min(), grouped["day"].max()
    count = grouped.size()
    total, first_value = grouped["value"].sum(), grouped["value"].first()
    repeat = count - 1
    repeat_value = (total - first_value).where(repeat > 0, 0.0)
    return pd.DataFrame(
        {
            "customer_id": first.index.astype(str),
            "frequency": repeat.to_numpy(dtype=float),
            "recency": ((last - first).dt.days / days).to_numpy(dtype=float),
            "T": ((end_day - first).dt.days / days).to_numpy(dtype=float),
            "monetary_value": np.where(repeat > 0, repeat_value / repeat.clip(lower=1), 0.0),
            "first": first.to_numpy(),
            "last": last.to_numpy(),
        }
    ).reset_index(drop=True)
