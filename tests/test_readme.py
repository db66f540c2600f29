"""The README's commands, run as written, the way a newcomer runs them: `boomerang` on the PATH from the venv, in
an empty folder beside `../shared`. The "Using it" section (API keys, `serve`, the tracking and REST calls, every
importer) and the sections after it that work on the same `./shop` workspace, in the README's order.

Only what cannot be typed as written is substituted: the keys the `keys create` lines print go into `WRITE_KEY`
and `SECRET_KEY`, and the blocking `serve --port 8600` is started in the background on a free port, which the
curl calls are pointed at. curl reports each answer's HTTP status through a `.curlrc` of the test's own."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import SHARED
from serve_support import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# the sections whose examples use ./shop, in README order
SECTIONS = ("Using it", "Dashboard", "Loyalty", "Recommendations", "Experiments", "Metrics", "Privacy")
README_PORT = "8600"
KEY = re.compile(r"\bbk_([ws])_[A-Za-z0-9_-]+")
STATUS = "\n--status %{http_code}"

# What each README request must answer (besides a 200 with JSON): path -> check of the body.
ANSWERS = {
    "/v1/track": lambda body: body["success"] is True and body["accepted"] == 1,
    "/api/customers": lambda body: [c["external_id"] for c in body["items"]] == ["u1"],
    "/api/loyalty/holds": lambda body: (body["points"], body["state"]) == (30, "held"),
    "/api/loyalty/holds/o2/confirm": lambda body: body["state"] == "confirmed",
}
ORDERS_CSV = (
    "client_id;created;line_total;order;sku;qty;list_price;title;category\n"
    "c-1;14.05.2024 10:00;30.00;A-1;MUG-1;2;15.00;Mug;Kitchen > Mugs\n"
    "c-1;14.05.2024 10:00;4.50;A-1;SPOON-1;1;4.50;Spoon;Kitchen > Cutlery\n"
    "c-2;15.05.2024 18:30;12.00;A-2;TEA-1;1;12.00;Green tea;Food > Tea\n"
)
EVENTS = [
    {"type": "identify", "userId": "u2", "traits": {"email": "u2@example.org"}, "timestamp": "2024-05-01T10:00:00Z"},
    {"type": "track", "userId": "u2", "event": "Product Viewed", "properties": {"sku": "MUG-1"}},
]


def section(name: str) -> str:
    text = README.read_text("utf-8")
    start = text.index(f"\n## {name}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def commands(text: str) -> list[str]:
    """The commands of the ```bash blocks: a line ending in a backslash, or inside an open quote, goes on."""
    found: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        pending = ""
        for line in block.splitlines():
            pending = f"{pending}\n{line}" if pending else line
            if not pending.strip() or pending.rstrip().endswith("\\"):
                continue
            try:
                shlex.split(pending, comments=True)
            except ValueError:  # an open quote: the command goes on
                continue
            found.append(pending)
            pending = ""
        assert not pending, f"unfinished command in README: {pending}"
    return found


def test_the_sections_hold_the_commands_this_test_expects():
    using = commands(section("Using it"))
    assert any(" serve " in f" {c} " for c in using) and sum("curl " in c for c in using) == 2
    assert all(c.startswith(("boomerang --home ./shop ", "curl ")) for s in SECTIONS for c in commands(section(s)))


def _environment(tmp_path: Path) -> dict[str, str]:
    """A newcomer's shell after `source .venv/bin/activate`: no BOOMERANG_* settings, the venv first on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOMERANG_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    (tmp_path / "curl").mkdir()
    (tmp_path / "curl" / ".curlrc").write_text(f"silent\nshow-error\nwrite-out = {json.dumps(STATUS)}\n")
    env["CURL_HOME"] = str(tmp_path / "curl")
    return env


def _inputs(work: Path) -> None:
    """The files the examples name: the importers' as a shop would have them, the earn rules as the README shows."""
    (work / "rules.yaml").write_text(re.search(r"```yaml\n(.*?)```", section("Loyalty"), flags=re.S)[1], "utf-8")
    (work / "export.csv").write_text(ORDERS_CSV, "utf-8")
    (work / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS), "utf-8")
    shutil.copy(ROOT / "tests" / "data" / "catalog" / "shop.yml", work / "feed.yml")
    if SHARED.exists():
        (work.parent / "shared").symlink_to(SHARED)


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _serve(command: str, cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = str(free_port())
    line = command.replace(f"--port {README_PORT}", f"--port {port}")
    assert line != command, f"the README's serve line names no --port {README_PORT}: {command}"
    log = open(cwd.parent / "serve.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        assert proc.poll() is None, (cwd.parent / "serve.log").read_text()
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError((cwd.parent / "serve.log").read_text())


def _curl(command: str, cwd: Path, env: dict[str, str]) -> None:
    """Run a README curl call until its answer is what the README says (effects follow within about a second)."""
    path = re.search(r"http://127\.0\.0\.1:\d+(/[^?'\" ]*)", command).group(1)
    check = ANSWERS.get(path, lambda body: True)
    for _ in range(60):
        done = _run(command, cwd, env)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        body, _, status = done.stdout.rpartition("\n--status ")
        assert status == "200", f"{command}\nanswered {status}: {body}"
        if check(json.loads(body)):
            return
        time.sleep(0.5)
    raise AssertionError(f"{command}\nanswered {body}")


def test_the_readme_commands_run_as_written(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = _environment(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    _inputs(work)
    server: subprocess.Popen | None = None
    port = README_PORT
    ran: list[str] = []
    try:
        for command in [c for name in SECTIONS for c in commands(section(name))]:
            if "../shared/" in command and not SHARED.exists():
                continue  # the shared datasets are not here: the other commands still run
            if " serve " in f" {command} ":
                server, port = _serve(command, work, env)
                continue
            command = command.replace(f"127.0.0.1:{README_PORT}", f"127.0.0.1:{port}")
            if command.startswith("curl "):
                _curl(command, work, env)
                ran.append(command)
                continue
            done = _run(command, work, env)
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            for kind, key in ((m.group(1), m.group(0)) for m in KEY.finditer(done.stdout)):
                env["WRITE_KEY" if kind == "w" else "SECRET_KEY"] = key
            ran.append(command)
        assert server is not None and server.poll() is None
        assert {"WRITE_KEY", "SECRET_KEY"} <= set(env)
        status = json.loads(_run("boomerang --home ./shop status --json", work, env).stdout)
        assert status["home"] == str((work / "shop").resolve())
        assert status["orders"] >= 3  # the curl call's order and the two of export.csv, at least
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    assert len(ran) >= 10
