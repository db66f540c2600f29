"""Lifecycle transitions (metrics.lifecycle.history, one pass over each customer's purchase days) against a plain
state machine that walks each customer's days in time, for random purchase histories and windows."""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from boomerang.metrics.lifecycle import history

START = datetime(2024, 1, 1)
CON = ibis.duckdb.connect()


def walked(days: dict[str, list[int]], window: int, end: datetime) -> set[tuple]:
    """The stages each customer enters, by the module's rules, one day after another."""
    out = set()
    for customer, offsets in days.items():
        stage = None

        def enter(at: datetime, new: str) -> None:
            nonlocal stage
            if at < end and new != stage:
                out.add((customer, at, new, stage))
                stage = new

        bought = sorted({START + timedelta(days=d) for d in offsets if START + timedelta(days=d) < end})
        for i, day in enumerate(bought):
            if i == 0:
                enter(day, "new")
            else:
                enter(day, "reactivated" if (day - bought[i - 1]).days > window else "active")
            gap = (bought[i + 1] - day).days if i + 1 < len(bought) else None
            if gap is None or gap > window / 2:
                enter(day + timedelta(days=window // 2), "sleeping")
            if gap is None or gap > window:
                enter(day + timedelta(days=window), "churned")
    return out


@settings(max_examples=80, deadline=None)
@given(
    days=st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]), st.lists(st.integers(0, 400), min_size=1, max_size=10), min_size=1
    ),
    window=st.integers(30, 121),
    hours=st.lists(st.integers(0, 23), min_size=10, max_size=10),
    end=st.integers(1, 500),
)
def test_the_transitions_are_the_walk_through_each_customers_days(days, window, hours, end):
    rows = [
        (customer, START + timedelta(days=d, hours=hours[i % len(hours)]))  # a day's orders at any hour
        for customer, offsets in days.items()
        for i, d in enumerate(offsets)
    ]
    purchases = ibis.memtable(pd.DataFrame(rows, columns=["customer_id", "ts"]).astype({"ts": "datetime64[us]"}))
    until = START + timedelta(days=end)
    found = CON.execute(history(purchases, window=window, end=until))
    got = {
        (r.customer_id, pd.Timestamp(r.at).to_pydatetime(), r.stage, None if pd.isna(r.previous) else r.previous)
        for r in found.itertuples()
    }
    assert len(found) == len(got)  # no transition twice
    assert got == walked(days, window, until)
