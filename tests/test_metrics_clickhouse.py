"""Every metric compiled to ClickHouse SQL by Ibis, run in chdb (embedded ClickHouse), gives DuckDB's answers."""

from __future__ import annotations

import os

import pytest

import metrics_data
from boomerang.metrics import service
from boomerang.metrics.base import REGISTRY, Data
from test_metrics import PERIOD, duckdb_data
from test_metrics_spark import PARAMS, same

if not os.environ.get("CI"):  # in CI a missing chdb is a failure, not a skip
    pytest.importorskip("chdb", reason="the ClickHouse check needs chdb: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def clickhouse_data(tmp_path_factory):
    from chdb_ibis import Chdb  # noqa: PLC0415 - imports chdb

    backend = Chdb(tmp_path_factory.mktemp("chdb"))
    yield Data(
        events=backend.load("events", metrics_data.events()), consents=backend.load("consents", metrics_data.consents())
    )
    backend.close()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_clickhouse_and_duckdb_agree(clickhouse_data, name):
    m = REGISTRY[name]
    query = service.parse(m, {**PERIOD, **PARAMS.get(name, {})})
    same(m.calculate(duckdb_data(), query), m.calculate(clickhouse_data, query))


@pytest.mark.parametrize("name", ["rfm", "lifecycle"])
def test_per_customer_results_agree(clickhouse_data, name):
    m = REGISTRY[name]
    query = service.parse(m, {**PERIOD, **PARAMS.get(name, {})})
    duck = m.per_customer(duckdb_data(), query).to_dict("records")
    clickhouse = m.per_customer(clickhouse_data, query).to_dict("records")
    same(
        [{k: str(v) for k, v in row.items()} for row in duck],
        [{k: str(v) for k, v in row.items()} for row in clickhouse],
    )
