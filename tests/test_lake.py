"""The event log as a lake (events.lake), alone: the same answers as the DuckDB file, exact dedup under concurrent
appends from several processes, S3-compatible storage (moto's server on loopback), erasure and compaction."""

from __future__ import annotations

import multiprocessing
from datetime import datetime

import boto3
import pandas as pd
import pytest

from boomerang.events.lake import LakeLog
from boomerang.events.lake_store import Store
from boomerang.events.log import EVENT_COLUMNS, PROFILE_COLUMNS, EventLog


def frame(ids: list[int], *, customer: str = "c1") -> pd.DataFrame:
    rows = [
        {
            "message_id": f"m{i}",
            "type": "track",
            "event": "Order Completed" if i % 3 == 0 else "Product Viewed",
            "customer_id": customer if i % 5 else f"c{i % 7}",
            "anonymous_id": f"a{i % 4}",
            "user_id": f"u{i % 7}",
            "timestamp": f"2024-0{1 + i % 3}-{10 + i % 9} 10:00:0{i % 10}",
            "received_at": "2024-04-01 00:00:00",
            "source": "server",
            "properties": f'{{"revenue": {i}, "order_id": "o-m{i}"}}',
            "context": '{"ip": "10.0.0.1"}',
        }
        for i in ids
    ]
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


@pytest.fixture
def logs(ws, tmp_path):
    lake = LakeLog(Store.at(str(tmp_path / "lake")))
    lake.create()
    return ws.log, lake


def test_the_lake_answers_as_the_duckdb_file(logs):
    duck, lake = logs
    for log in (duck, lake):
        assert log.append(frame(list(range(40)))) == 40
        assert log.append(frame(list(range(30, 60))), merges=[("c1", "c9"), ("c9", "c8")]) == 20
        people = pd.DataFrame(
            {
                "customer_id": ["c8", "c2", "c3"],
                "email": ["x@example.com", None, "y@example.com"],
                "birthday": [None, "1990-05-04", None],
                "first_seen_at": [datetime(2024, 1, 1)] * 3,
                "attributes": ['{"age": 41}', None, "{}"],
                "merged_into_id": [None, None, "c8"],
            }
        ).reindex(columns=[*PROFILE_COLUMNS, "merged_into_id"])
        consents = pd.DataFrame({"customer_id": ["c8", "c2"], "channel": ["email", "sms"], "granted": [True, False]})
        log.write_profiles(people, consents, synced_at=datetime(2024, 4, 1))
        log.save_traits("rfm", pd.DataFrame({"customer_id": ["c8", "c2"], "score": [5, 1]}))
    assert lake.count() == duck.count() == 60
    assert lake.summary() == duck.summary()
    assert lake.latest("Order Completed").sort_values("customer_id").to_dict("records") == (
        duck.latest("Order Completed").sort_values("customer_id").to_dict("records")
    )
    assert lake.customer_history(["c8"], user_ids=["u2"]) == duck.customer_history(["c8"], user_ids=["u2"])
    page, total = lake.customer_events("c8", limit=5, offset=3)
    expected, expected_total = duck.customer_events("c8", limit=5, offset=3)
    assert total == expected_total and page.to_dict("records") == expected.to_dict("records")
    assert lake.customer_traits(["c8"]) == duck.customer_traits(["c8"])
    assert lake.last_profile_sync() == duck.last_profile_sync() == datetime(2024, 4, 1)
    for log in logs:
        with log.reader() as r:
            assert sorted(r.profiles.execute()["customer_id"]) == ["c2", "c8"]
            assert r.consents.count().execute() == 2
            assert r.trait_kinds() == ["rfm"] and r.trait("lifecycle") is None
    with lake.reader() as r:  # what the lake does not keep at write is read from the events, not counted each time
        assert r.kept_rollup is None and r.totals is None and r.cancelled is None and r.segment_changes is None
    with duck.reader() as r:
        assert None not in (r.kept_rollup, r.totals, r.cancelled, r.segment_changes)
    before = lake.fingerprint()
    counts = {log: log.erase_customers(["c8"], "erased-1", user_ids=["u2"], anonymous_ids=["a1"]) for log in logs}
    assert counts[lake] == counts[duck] and counts[lake]["events"] > 0
    assert lake.fingerprint() != before
    assert lake.customer_history(["erased-1"]) == duck.customer_history(["erased-1"])
    assert lake.customer_history(["c8"], user_ids=["u2"]) == []
    assert lake.traits("rfm").sort_values("customer_id").to_dict("records") == (
        duck.traits("rfm").sort_values("customer_id").to_dict("records")
    )


def _append(root: str, start: int) -> int:
    return LakeLog(Store.at(root)).append(frame(list(range(start, start + 300))))


def test_processes_appending_at_once_store_each_event_once(tmp_path):
    lake = LakeLog(Store.at(str(tmp_path / "lake")))
    lake.create()
    with multiprocessing.get_context("spawn").Pool(3) as pool:  # overlapping batches, as two flushes of one inbox
        added = pool.starmap(_append, [(lake.path, 0), (lake.path, 100), (lake.path, 0), (lake.path, 200)])
    assert sum(added) == lake.count() == 500
    lake.compact()
    assert lake.count() == 500
    with lake.store.table("events") as table:
        files = table.file_uris()
    assert len(files) == len({f.rsplit("/", 2)[1] for f in files})  # one file per day after compaction


def test_the_lake_on_s3_compatible_storage():
    moto = pytest.importorskip("moto.server")
    server = moto.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        keys = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys).create_bucket(Bucket="shop")
        store = Store.at("s3://shop/lake", endpoint=endpoint, key_id="test-key", secret="test-secret")
        lake = LakeLog(store)
        lake.create()
        assert lake.append(frame(list(range(50)))) == 50
        assert lake.append(frame(list(range(25, 75)))) == 25
        lake.save_traits("rfm", pd.DataFrame({"customer_id": ["c1"], "score": [3]}))
        lake.compact()
        assert lake.count() == 75
        assert lake.summary()["by_event"] == {"Product Viewed": 50, "Order Completed": 25}
        with lake.reader() as r:
            assert r.trait_kinds() == ["rfm"]
        assert EventLog  # the DuckDB file's class stays the default: the lake is chosen by settings
    finally:
        server.stop()
