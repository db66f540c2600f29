"""The real server on loopback beside CLI commands, crash durability, and the CLI's JSON and errors."""

from __future__ import annotations

import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import httpx
import pytest
import typer
from typer.testing import CliRunner

from boomerang.cli.app import app as cli
from serve_support import start_serve


def _cli(home, *args, env=None, check=True, cwd=None):
    done = subprocess.run(
        [sys.executable, "-m", "boomerang", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )
    if check and done.returncode:
        raise AssertionError(f"boomerang {' '.join(args)} failed: {done.stderr}")
    return done


def _start(home, interval: float, env: dict | None = None):
    """`boomerang serve` in its own process, its pipeline running every `interval` seconds."""
    return start_serve(home, {**os.environ, **(env or {}), "BOOMERANG_INGEST__FLUSH_INTERVAL_SECONDS": str(interval)})


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
        for _ in range(100):  # (a new workspace's ready-made segments may log Segment Entered events beside it)
            status = httpx.get(f"{base}/api/status", headers=auth).json()
            if status["orders"] == 1 and not status["events"]["pending"]:
                break
            time.sleep(0.1)
        assert (status["orders"], status["revenue"], status["events"]["pending"]) == (1, 20.0, 0)
        proc.terminate()  # uvicorn shuts down gracefully, then exits by the signal it got
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        assert "Traceback" not in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_starting_a_campaign_to_a_never_computed_segment_does_not_stall_tracking(tmp_path, store, request):
    """The campaign's audience is computed while events stream in: tracking answers as before (it took 52 s
    when the start held SQLite's write lock and waited for it in a second session)."""
    env = {"BOOMERANG_DATABASE_URL": request.getfixturevalue("pg_url")} if store == "postgres" else {}
    home = tmp_path / "ws"
    keys = {
        kind: json.loads(_cli(home, "keys", "create", "--kind", kind, "--json", env=env).stdout)["key"]
        for kind in ("write", "secret")
    }
    base, proc = _start(home, 0.2, env)
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {keys['secret']}"}, timeout=120)
    track = httpx.Client(base_url=base, auth=(keys["write"], ""), timeout=120)
    try:
        for start in range(0, 400, 100):
            batch = [
                message
                for i in range(start, start + 100)
                for message in (
                    {"type": "identify", "userId": f"u{i}", "traits": {"email": f"u{i}@example.com"}},
                    {"type": "track", "userId": f"u{i}", "event": "Product Viewed", "properties": {"sku": "S1"}},
                )
            ]
            assert track.post("/v1/batch", json={"batch": batch}).status_code == 200
        assert api.post("/api/templates/library").status_code == 200
        rule = {"name": "viewers", "rule": {"event": "Product Viewed", "op": "gte", "value": 1}}
        assert api.post("/api/segments", json=rule).status_code == 201
        campaign = {"name": "flash", "segment": "viewers", "template": "welcome_1", "holdout_percent": 0}
        assert api.post("/api/campaigns", json=campaign).status_code == 201

        latencies: list[float] = []
        refused: list[str] = []
        streaming = threading.Event()
        streaming.set()

        def stream() -> None:
            n = 0
            while streaming.is_set():
                began = time.perf_counter()
                answer = track.post("/v1/track", json={"userId": f"s{n}", "event": "Page Viewed"})
                latencies.append(time.perf_counter() - began)
                if answer.status_code != 200:
                    refused.append(answer.text)
                n += 1

        streamer = threading.Thread(target=stream)
        streamer.start()
        try:
            assert api.post("/api/campaigns/flash/schedule").status_code == 200
            for _ in range(600):
                started = api.get("/api/campaigns/flash").json()
                if started["status"] != "scheduled":
                    break
                time.sleep(0.1)
            count = len(latencies)
            for _ in range(1200):  # tracking after the start, too
                if len(latencies) >= count + 20 or not streamer.is_alive():
                    break
                time.sleep(0.05)
        finally:
            streaming.clear()
            streamer.join()
        assert refused == []
        assert (started["status"], started["audience"]) in {("sending", 400), ("sent", 400)}
        print(f"/v1/track during the start: {len(latencies)} calls, slowest {max(latencies):.3f} s")
        assert max(latencies) < 10, f"slowest /v1/track took {max(latencies):.1f} s"
    finally:
        api.close()
        track.close()
        proc.kill()
        proc.wait()


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
    second = _cli(home, "import", "events", str(good)).stdout
    assert first["events_new"] == 3 and "nothing new" in second
    assert first["home"] == str(home.resolve()) and f"workspace: {home.resolve()}" in second
    status = json.loads(_cli(home, "status", "--json").stdout)
    assert status["home"] == str(home.resolve()) and str(home.resolve()) in _cli(home, "status").stdout
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


def test_tables_sent_to_a_pipe_are_whole_and_readable(tmp_path):
    """Piped, no cell is cut to fit 80 columns, and nested values read as text, not as Python reprs."""
    home = tmp_path / "ws"
    segments = _cli(home, "segments", "list").stdout
    assert "high_value_at_risk" in segments and "One-time buyers 30 days after their order" in segments
    journeys = _cli(home, "journeys", "list").stdout
    assert "event: Product Added, key: cart_id" in journeys and "segment: category_viewers, on: entered" in journeys
    assert "…" not in segments + journeys and "None" not in journeys and "{}" not in journeys


def test_hints_name_the_command_as_it_was_run(tmp_path):
    """Where the PATH has no `boomerang` (a venv not activated), a hint names the program that ran."""
    home, venv_bin = tmp_path / "ws", Path(sys.executable).parent
    others = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != venv_bin.resolve()]
    outside = _cli(home, "journeys", "install", env={"PATH": os.pathsep.join(others)}, cwd=tmp_path).stdout
    assert f"activate one with: {venv_bin.absolute() / 'boomerang'} journeys activate NAME" in outside
    inside = _cli(home, "journeys", "install", env={"PATH": os.pathsep.join([str(venv_bin), *others])}).stdout
    assert "activate one with: boomerang journeys activate NAME" in inside


def test_a_missing_ready_made_journey_segment_or_template_suggests_installing(ws):
    runner, home = CliRunner(), ["--home", str(ws.settings.home)]  # made empty, as an older workspace is
    for args, install in (
        (["journeys", "activate", "abandoned_cart"], "journeys install"),
        (["segments", "preview", "churned"], "segments install"),
        (["templates", "preview", "welcome_1"], "templates install"),
    ):
        result = runner.invoke(cli, [*home, *args])
        assert result.exit_code == 2 and install in result.output, result.output
    unknown = runner.invoke(cli, [*home, "journeys", "activate", "no_such_journey"])
    assert unknown.exit_code == 2 and "no journey named 'no_such_journey'" in unknown.output
    assert "install" not in unknown.output


def test_serve_on_a_port_in_use_fails_at_once_naming_the_option(ws):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli(ws.settings.home, "serve", "--port", str(port), check=False)
    assert done.returncode == 2 and "--port" in done.stderr and "already in use" in done.stderr


def test_help_lists_every_command_and_a_command_loads_only_its_own_module(tmp_path):
    """The top-level group builds a command from its module when it runs; --help still lists them all. A command
    that only opens the workspace loads no other command and no pandas."""
    from boomerang.cli.app import SUBCOMMANDS

    shown = CliRunner().invoke(cli, ["--help"], catch_exceptions=False)
    assert shown.exit_code == 0
    assert all(f" {name} " in shown.stdout for name in [*SUBCOMMANDS, "status", "serve", "version"])
    group = typer.main.get_group(cli)
    for name, (_, _, line) in SUBCOMMANDS.items():
        assert CliRunner().invoke(cli, [name, "--help"], catch_exceptions=False).exit_code == 0, name
        own = group.get_command(click.Context(group), name).help  # the module's, loaded
        assert line == inspect.cleandoc(own).split("\n\n")[0], name  # what --help lists, without loading it
    listing = (  # a fresh interpreter: --help lists the commands by their line, importing none of their modules
        "import sys; from typer.testing import CliRunner; from boomerang.cli.app import app; "
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('boomerang.cli.'))))"
    )
    done = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["boomerang.cli.app", "boomerang.cli.output"]
    probe = (  # a fresh interpreter: which of the CLI's modules `users list` imported
        "import sys; from typer.testing import CliRunner; from boomerang.cli.app import app; "
        "assert CliRunner().invoke(app, ['--home', sys.argv[1], 'users', 'list']).exit_code == 0; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('boomerang.cli.') or m == 'pandas')))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "ws")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["boomerang.cli.app", "boomerang.cli.output", "boomerang.cli.users"]
