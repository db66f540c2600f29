"""The same segment definitions give the same members on Spark (local mode) as on DuckDB."""

from __future__ import annotations

import os
import shutil

import ibis
import pytest

import segments_data
from boomerang.segments import library
from boomerang.segments.compile import Compiler, Tables
from boomerang.segments.definition import InSegment, Trait, leaves, parse_rule

if not os.environ.get("CI"):  # in CI a missing Spark is a failure, not a skip
    pytest.importorskip("pyspark", reason="the Spark tests need pyspark: pip install -e '.[spark]'")
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        pytest.skip("the Spark tests need Java: apt-get install openjdk-17-jre-headless", allow_module_level=True)

RULES = [rule for rule, _ in segments_data.RULES] + [
    {"bucket": [0, 50], "salt": "ab"},
    {"attribute": "birthday", "op": "before", "value": "1989-01-01"},
]


def test_spark_and_duckdb_find_the_same_members(ws, tmp_path):
    from pyspark.sql import SparkSession

    ids = segments_data.load(ws)
    ws.segments.sync()
    files = {name: tmp_path / f"{name}.parquet" for name in ("events", "profiles", "profile_consents")}
    with ws.log.connect() as conn:  # typed columns for Spark; JSON as text, as Spark keeps it
        for name, path in files.items():
            conn.execute(f"COPY (SELECT * FROM {name}) TO '{path}' (FORMAT parquet)")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("boomerang-segments")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(tmp_path / "warehouse"))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    try:
        for name, path in files.items():
            session.read.parquet(str(path)).createOrReplaceTempView(name)
        con = ibis.pyspark.connect(session)
        tables = Tables(
            events=con.table("events"), profiles=con.table("profiles"), consents=con.table("profile_consents")
        )
        definitions = {d.name: d.tree for d in library.definitions()}
        rules = RULES + [
            d.rule
            for d in library.definitions()  # traits are tables of their own, tested apart
            if not any(isinstance(leaf, (Trait, InSegment)) for leaf in leaves(d.tree))
        ]
        spark = Compiler(tables, as_of=segments_data.NOW, resolve=definitions.__getitem__)
        checked = 0
        for rule in rules:
            expected = set(ws.segments.members({"name": "probe", "rule": rule})["customer_id"])
            got = set(spark.members(parse_rule(rule)).execute()["customer_id"])
            assert got == expected, rule
            checked += 1
        assert checked >= 25 and set(ids.values()) >= expected
    finally:
        session.stop()
