"""Every segment rule compiled to ClickHouse SQL by Ibis, run in chdb (embedded ClickHouse), finds the same
members as on DuckDB: JSON access and hashing go through metrics.source's per-engine functions."""

from __future__ import annotations

import os

import pytest

import segments_data
from boomerang.segments import library
from boomerang.segments.compile import Compiler, Tables
from boomerang.segments.definition import leaves, parse_rule

if not os.environ.get("CI"):  # in CI a missing chdb is a failure, not a skip
    pytest.importorskip("chdb", reason="the ClickHouse check needs chdb: pip install -e '.[test]'")
TABLES = {"events": "events", "profiles": "profiles", "consents": "profile_consents"}
TRAITS = ("lifecycle", "predictions")


def test_clickhouse_sql_finds_the_same_members(ws, tmp_path):
    from chdb_ibis import Chdb  # noqa: PLC0415 - imports chdb

    segments_data.load(ws)
    with ws.uow.session() as session:  # the ready-made segments, which some of them name
        library.install(session, now=ws.now())
    with ws.log.connect() as conn:  # traits for the ready-made segments that read them
        conn.execute("CREATE TABLE trait_lifecycle AS SELECT customer_id, 'churned' AS stage FROM profiles")
        conn.execute(
            "CREATE TABLE trait_predictions AS SELECT customer_id, hash(customer_id) % 1000 * 1.0 AS predicted_clv, "
            "hash(customer_id) % 7 / 6.0 AS churn_probability FROM profiles"
        )
    ws.segments.sync()
    ch = Chdb(tmp_path)
    with ws.log.connect() as conn:
        loaded = {
            name: ch.load(name, conn.sql(f"SELECT * FROM {name}").to_arrow_table())
            for name in [*TABLES.values(), *(f"trait_{kind}" for kind in TRAITS)]
        }
    tables = Tables(
        **{key: loaded[name] for key, name in TABLES.items()}, traits={kind: loaded[f"trait_{kind}"] for kind in TRAITS}
    )
    by_name = {d.name: d for d in library.definitions()}
    compiler = Compiler(tables, as_of=segments_data.NOW, resolve=lambda name: by_name[name].tree)
    rules = [rule for rule, _ in segments_data.RULES] + [d.rule for d in library.definitions()]
    for rule in rules:
        got = set(compiler.members(parse_rule(rule)).execute()["customer_id"])
        expected = set(ws.segments.members({"name": "probe", "rule": rule})["customer_id"])
        assert got == expected, rule
    assert {type(leaf).__name__ for rule in rules for leaf in leaves(parse_rule(rule))} >= {
        "Attribute",
        "Event",
        "Anniversary",
        "Trait",
        "Reachable",
        "InSegment",
        "Bucket",
    }  # every kind of condition ran on ClickHouse
    ch.close()
