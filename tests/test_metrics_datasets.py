"""Metrics on the shared Online Retail file against the same figures computed straight from the CSV with pandas."""

from __future__ import annotations

import pandas as pd
import pytest

from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.events.importers import online_retail
from boomerang.metrics import service
from conftest import DATA

RETAIL = DATA / "uci-online-retail" / "online_retail_to_2011-09-30.csv.gz"
pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    ws = open_workspace(Settings(home=tmp_path_factory.mktemp("retail-metrics") / "ws"))
    online_retail.run(ws.uow, ws.log, RETAIL, now=ws.now())
    return ws


@pytest.fixture(scope="module")
def invoices() -> pd.DataFrame:
    """One row per invoice of a known customer that is not a cancellation: customer, time (UTC), value."""
    raw = pd.read_csv(RETAIL, dtype=str)
    raw = raw[raw["CustomerID"].notna() & raw["InvoiceNo"].str[0].str.isdigit()]
    raw["amount"] = raw["Quantity"].astype(float) * raw["UnitPrice"].astype(float)
    local = pd.to_datetime(raw["InvoiceDate"]).dt.tz_localize("Europe/London", ambiguous=False)
    raw["at"] = local.dt.tz_convert("UTC").dt.tz_localize(None)
    return raw.groupby("InvoiceNo").agg(customer=("CustomerID", "first"), at=("at", "min"), value=("amount", "sum"))


def test_cohorts_match_pandas(retail, invoices):
    result = service.run(retail.uow, retail.log, "cohorts", {})
    first = invoices.groupby("customer")["at"].min().rename("first")
    rows = invoices.join(first, on="customer")
    rows["cohort"] = rows["first"].dt.to_period("M")
    rows["offset"] = (rows["at"].dt.to_period("M") - rows["cohort"]).apply(lambda d: d.n)
    sizes = rows.groupby("cohort")["customer"].nunique()
    assert [(c["cohort"], c["customers"]) for c in result["cohorts"]] == [(str(k), v) for k, v in sizes.items()]
    assert result["cohorts"][0]["customers"] == 885  # December 2010
    buyers = rows.groupby(["cohort", "offset"])["customer"].nunique()
    december = result["cohorts"][0]["buyers"]
    assert december == [int(buyers.get((sizes.index[0], k), 0)) for k in range(len(december))]


def test_order_kpis_match_pandas(retail, invoices):
    aov = service.run(retail.uow, retail.log, "average_order_value", {})
    assert aov["details"]["orders"] == len(invoices) == 14_873 - 1_702  # the orders of known customers
    assert aov["value"] == pytest.approx(invoices["value"].mean(), rel=1e-6)
    per_customer = invoices.groupby("customer").size()
    rpr = service.run(retail.uow, retail.log, "repeat_purchase_rate", {})
    assert rpr["value"] == pytest.approx((per_customer >= 2).mean(), rel=1e-6)
    assert rpr["details"]["customers"] == len(per_customer) == 3_616
