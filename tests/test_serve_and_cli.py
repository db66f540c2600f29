"""The real server on loopback beside CLI commands, crash durability, and the CLI's JSON and errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest


def _cli(home, *args, env=None, check=True):
    done = subprocess.run(
        [sys.executable, "-m", "boomerang", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    if check and done.returncode:
        raise AssertionError(f"boomerang {' '.join(args)} failed: {done.stderr}")
    return done


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(home, interval: float):
    """`boomerang serve` in its own process, its pipeline running every `interval` seconds."""
    port = _port()
    env = {**os.environ, "BOOMERANG_INGEST__FLUSH_INTERVAL_SECONDS": str(interval)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "boomerang", "--home", str(home), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return base, proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(proc.stdout.read())


@pytest.fixture
def server(tmp_path):
    """A server whose pipeline waits an hour between rounds, so accepted events stay in the inbox."""
    home = tmp_path / "ws"
    base, proc = _start(home, 3600)
    yield home, base, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_the_server_processes_and_flushes_in_the_background(tmp_path):
    home = tmp_path / "ws"
    keys = {
        kind: json.loads(_cli(home, "keys", "create", "--kind", kind, "--json").stdout)["key"]
        for kind in ("write", "secret")
    }
    base, proc = _start(home, 0.2)
    try:
        order = {"order_id": "o-1", "total": 20, "products": [{"sku": "S1", "price": 10, "quantity": 2}]}
        sent = httpx.post(
            f"{base}/v1/track",
            auth=(keys["write"], ""),
            json={"userId": "u1", "event": "Order Completed", "properties": order},
        )
        assert sent.status_code == 200
        auth = {"Authorization": f"Bearer {keys['secret']}"}
        for _ in range(100):
            status = httpx.get(f"{base}/api/status", headers=auth).json()
            if status["events"]["total"] == 1 and not status["events"]["pending"]:
                break
            time.sleep(0.1)
        assert (status["orders"], status["revenue"], status["events"]["pending"]) == (1, 20.0, 0)
        proc.terminate()  # uvicorn shuts down gracefully, then exits by the signal it got
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        assert "Traceback" not in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_acknowledged_events_survive_a_crash_and_cli_works_beside_the_server(server):
    home, base, proc = server
    key = json.loads(_cli(home, "keys", "create", "--kind", "write", "--json").stdout)["key"]
    batch = {
        "batch": [
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": f"a{i}",
                "messageId": f"m{i}",
                "properties": {"sku": "S1", "price": 2},
            }
            for i in range(50)
        ]
    }
    assert httpx.post(f"{base}/v1/batch", json=batch, auth=(key, "")).status_code == 200
    during = json.loads(_cli(home, "status", "--json").stdout)  # beside the running server
    assert during["events"]["total"] == 50
    assert (
        httpx.post(
            f"{base}/v1/track", json={"event": "Late", "userId": "u", "messageId": "late"}, auth=(key, "")
        ).status_code
        == 200
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = json.loads(_cli(home, "status", "--json").stdout)
    assert after["events"]["total"] == 51
    assert after["events"]["by_type"] == {"Product Viewed": 50, "Late": 1}
    assert after["customers"] == {"total": 51, "identified": 1, "anonymous": 50}


def test_events_import_is_idempotent_and_reports_bad_lines(tmp_path):
    home = tmp_path / "ws"
    good = tmp_path / "events.jsonl"
    good.write_text(
        "\n".join(
            json.dumps(m)
            for m in [
                {
                    "type": "identify",
                    "userId": "u1",
                    "traits": {"email": "a@example.org"},
                    "timestamp": "2024-05-01T10:00:00Z",
                },
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": "u1",
                    "timestamp": "2024-05-01T10:05:00Z",
                    "properties": {"order_id": "o1", "total": 12.5, "products": [{"sku": "A", "price": 12.5}]},
                },
                {"type": "page", "anonymousId": "v1", "name": "Home", "timestamp": "2024-05-02T08:00:00Z"},
            ]
        )
        + "\n"
    )
    first = json.loads(_cli(home, "import", "events", str(good), "--json").stdout)
    second = json.loads(_cli(home, "import", "events", str(good), "--json").stdout)
    assert (first["events_new"], second["events_new"]) == (3, 0)
    status = json.loads(_cli(home, "status", "--json").stdout)
    assert (status["orders"], status["revenue"], status["customers"]["total"]) == (1, 12.5, 2)
    assert status["events"]["first"] == "2024-05-01T10:00:00"

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "track", "userId": "u", "event": "A"}\n{oops\n{"type": "track", "event": "B"}\n')
    done = _cli(home, "import", "events", str(bad), check=False)
    assert done.returncode == 2
    assert "line 2" in done.stderr and "line 3" in done.stderr
    assert json.loads(_cli(home, "status", "--json").stdout)["events"]["total"] == 3  # nothing half-written


def test_keys_cli_and_bad_kind(tmp_path):
    home = tmp_path / "ws"
    made = json.loads(_cli(home, "keys", "create", "--kind", "secret", "--json").stdout)
    listed = json.loads(_cli(home, "keys", "list", "--json").stdout)
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    bad = _cli(home, "keys", "create", "--kind", "root", check=False)
    assert bad.returncode == 2 and "kind" in bad.stderr
