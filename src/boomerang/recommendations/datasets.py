"""The public datasets offline evaluation runs on, as interaction frames (`customer_id`, `sku`, `at`, `weight`,
`basket`): purchases only, returns and lines without a customer dropped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def online_retail(path: Path) -> pd.DataFrame:
    """UCI Online Retail: InvoiceNo, StockCode, Quantity, InvoiceDate, CustomerID (a 'C' invoice is a return)."""
    raw = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
    raw = raw[raw["CustomerID"].notna() & (raw["Quantity"] > 0) & ~raw["InvoiceNo"].str.startswith("C")]
    return pd.DataFrame(
        {
            "customer_id": raw["CustomerID"].str.removesuffix(".0"),
            "sku": raw["StockCode"].str.upper(),
            "at": pd.to_datetime(raw["InvoiceDate"]),
            "weight": raw["Quantity"].astype(float),
            "basket": raw["InvoiceNo"],
        }
    )


def complete_journey(path: Path) -> pd.DataFrame:
    """dunnhumby's The Complete Journey transactions: household_id, basket_id, product_id, quantity, timestamp."""
    raw = pd.read_csv(path, dtype={"household_id": str, "basket_id": str, "product_id": str})
    raw = raw[raw["quantity"] > 0]
    at = pd.to_datetime(raw["transaction_timestamp"], utc=True).dt.tz_localize(None)
    return pd.DataFrame(
        {
            "customer_id": raw["household_id"],
            "sku": raw["product_id"],
            "at": at,
            "weight": raw["quantity"].astype(float),
            "basket": raw["basket_id"],
        }
    )
