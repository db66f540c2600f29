"""The scale-out deployment end to end: a Spark standalone master and worker on loopback (started with pyspark's own
scripts), two API processes (`boomerang serve`, each with its pipeline worker) on one PostgreSQL, writing the event
log as a lake; segments and metrics read on the Spark cluster give the same answers as the single-process default
(SQLite and a DuckDB file) fed the same events."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import segments_data
from api_helpers import basic
from boomerang.auth.service import create_key
from boomerang.bootstrap import open_workspace
from boomerang.config import EventsSettings, Settings
from boomerang.core.clock import FixedClock
from boomerang.events import lake_read
from boomerang.events.ingest import record
from boomerang.metrics import rolled, service
from boomerang.orchestration.rounds import move_events
from serve_support import free_port, start_serve
from test_metrics_spark import same

if not os.environ.get("CI"):  # in CI a missing Spark is a failure, not a skip
    pytest.importorskip("pyspark", reason="the scale-out test needs pyspark: pip install -e '.[spark]'")
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        pytest.skip("the scale-out test needs Java: apt-get install openjdk-17-jre-headless", allow_module_level=True)

pytestmark = pytest.mark.slow
RULES = [  # a handful of the segment tests' rules: events, properties, the profile mirror, consents
    {"event": "Order Completed", "op": "gte", "value": 2},
    {"event": "Order Completed", "measure": "sum", "property": "revenue", "op": "gte", "value": 100},
    {"all": [{"attribute": "city", "op": "eq", "value": "Kyiv"}, {"not": {"event": "Order Completed"}}]},
    {"event": "Product Viewed", "per": "category", "within_days": 7, "op": "gte", "value": 3},
]
METRICS = {"average_order_value": {}, "retention_rate": {"window_days": 60}, "funnel": {}}
PERIOD = {"date_from": "2024-01-01", "date_to": "2024-04-30", "interval": "month"}


def messages() -> list[dict]:
    """The segment tests' shop, and 60 more customers' orders: enough for both pipelines to have work."""
    out = segments_data.messages()
    for i in range(60):
        for k in range(1 + i % 4):
            out.append(
                {
                    "type": "track",
                    "userId": f"u{i}",
                    "event": "Order Completed",
                    "messageId": f"u{i}-o{k}",
                    "timestamp": segments_data._at(5 + 17 * k + i % 13),
                    "properties": {"order_id": f"u{i}-{k}", "revenue": 10.0 + i + k, "currency": "USD"},
                }
            )
    for i, message in enumerate(out):
        message.setdefault("messageId", f"m{i}")
    return out


@pytest.fixture
def spark_cluster(tmp_path):
    """A standalone master and one worker on loopback, as a cluster's machines start them."""
    import pyspark

    spark_home = str(Path(pyspark.__file__).parent)
    env = {**os.environ, "SPARK_HOME": spark_home, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    port, ui = free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    spark_class = [f"{spark_home}/bin/spark-class"]
    logs = [open(tmp_path / name, "w") for name in ("master.log", "worker.log")]  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [*spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port)]
            + ["--webui-port", str(ui)],
            env=env,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        )
    ]
    procs.append(
        subprocess.Popen(
            [*spark_class, "org.apache.spark.deploy.worker.Worker", master, "--host", "127.0.0.1", "--cores", "2"]
            + ["--memory", "1g", "--webui-port", str(free_port()), "--work-dir", str(tmp_path / "spark-work")],
            env=env,
            stdout=logs[1],
            stderr=subprocess.STDOUT,
        )
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{ui}/json/").json().get("aliveworkers"):
                    break
            except (httpx.HTTPError, json.JSONDecodeError):
                pass
            time.sleep(0.5)
        else:
            raise AssertionError((tmp_path / "master.log").read_text() + (tmp_path / "worker.log").read_text())
        yield master
    finally:
        lake_read.stop_sessions()  # before the cluster: a session left on a stopped master would hang later tests
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(30)
        for log in logs:
            log.close()


def test_two_servers_write_the_lake_and_spark_reads_it_as_duckdb_does(tmp_path, pg_url, spark_cluster):
    lake = EventsSettings(backend="lake", path=str(tmp_path / "lake"), engine="spark", spark_master=spark_cluster)
    settings = Settings(home=tmp_path / "shared-home", database_url=pg_url, events=lake)
    scaled = open_workspace(settings)  # migrated once, before the servers start
    with scaled.uow.session() as session:
        _, secret = create_key(session, kind="secret", name="shop backend", now=scaled.now())
    env = {
        **os.environ,
        "BOOMERANG_DATABASE_URL": pg_url,
        "BOOMERANG_EVENTS__BACKEND": "lake",
        "BOOMERANG_EVENTS__PATH": lake.path,
        "BOOMERANG_INGEST__FLUSH_INTERVAL_SECONDS": "0.2",
    }
    servers = [start_serve(settings.home, env) for _ in range(2)]
    sent = messages()
    try:
        identifies = [m for m in sent if m["type"] == "identify"]
        rest = [m for m in sent if m["type"] != "identify"]
        for i, (base, _) in enumerate(servers):  # profiles first, then each server gets every other event
            chunk = identifies if i == 0 else []
            chunk += rest[i::2]
            answer = httpx.post(f"{base}/v1/batch", json={"batch": chunk}, headers=basic(secret), timeout=30)
            assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 120
        duck_view = open_workspace(settings.model_copy(update={"events": lake.model_copy(update={"engine": "duckdb"})}))
        while duck_view.log.count() < len(sent) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert duck_view.log.count() == len(sent)  # each event once, though two pipelines flushed at once
    finally:
        for _, proc in servers:
            proc.terminate()
            proc.wait(60)

    single = open_workspace(Settings(home=tmp_path / "single"))  # the default: SQLite and a DuckDB file
    with single.uow.session() as session:
        record(session, sent, now=segments_data.NOW, limits=single.settings.ingest, source="server")
    move_events(single)
    assert single.log.count() == len(sent)

    for ws in (scaled, single, duck_view):
        ws.clock = FixedClock(segments_data.NOW)
    users = {ws: _users(ws) for ws in (scaled, single, duck_view)}
    for rule in RULES:
        expected = {users[single][c] for c in single.segments.members({"name": "p", "rule": rule})["customer_id"]}
        assert expected, rule
        for ws in (scaled, duck_view):  # Spark on the cluster, and DuckDB on this machine, over the same files
            got = {users[ws][c] for c in ws.segments.members({"name": "p", "rule": rule})["customer_id"]}
            assert got == expected, (rule, ws.settings.events.engine)
    for name, params in METRICS.items():
        query = {**PERIOD, **params}
        expected = service.run(single.uow, single.log, name, query)  # over the events
        for ws in (single, scaled, duck_view):  # as the API answers: from the rollup where the log keeps one
            same(expected, rolled.answer(ws.uow, ws.log, name, query))


def _users(ws) -> dict[str, str]:
    with ws.engine.connect() as conn:
        return dict(conn.exec_driver_sql("SELECT id, external_id FROM customers").all())
