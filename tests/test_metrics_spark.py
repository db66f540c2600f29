"""The same metrics on Spark (local mode) give the same answers as on DuckDB."""

from __future__ import annotations

import math
import os
import shutil

import ibis
import pytest

import metrics_data
from boomerang.metrics import service
from boomerang.metrics.base import REGISTRY, Data
from test_metrics import PERIOD, duckdb_data

if not os.environ.get("CI"):  # in CI a missing Spark is a failure, not a skip
    pytest.importorskip("pyspark", reason="the Spark tests need pyspark: pip install -e '.[spark]'")
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        pytest.skip("the Spark tests need Java: apt-get install openjdk-17-jre-headless", allow_module_level=True)

PARAMS = {"retention_rate": {"window_days": 60}, "churn_rate": {"window_days": 60}, "lifecycle": {"window_days": 60}}


@pytest.fixture(scope="module")
def spark_data(tmp_path_factory):
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("boomerang-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    session.createDataFrame(metrics_data.events()).createOrReplaceTempView("events")
    session.createDataFrame(metrics_data.consents()).createOrReplaceTempView("consents")
    con = ibis.pyspark.connect(session)
    yield Data(events=con.table("events"), consents=con.table("consents"))
    session.stop()


def same(a, b, path="result"):
    """Equal JSON answers, floats to 9 significant digits."""
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{path}: {a} != {b}"
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{path}: {set(a) ^ set(b)}"
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_spark_and_duckdb_agree(spark_data, name):
    m = REGISTRY[name]
    query = service.parse(m, {**PERIOD, **PARAMS.get(name, {})})
    same(m.calculate(duckdb_data(), query), m.calculate(spark_data, query))


@pytest.mark.parametrize("name", ["rfm", "lifecycle"])
def test_per_customer_results_agree(spark_data, name):
    m = REGISTRY[name]
    query = service.parse(m, {**PERIOD, **PARAMS.get(name, {})})
    duck = m.per_customer(duckdb_data(), query).to_dict("records")
    spark = m.per_customer(spark_data, query).to_dict("records")
    same([{k: str(v) for k, v in row.items()} for row in duck], [{k: str(v) for k, v in row.items()} for row in spark])
