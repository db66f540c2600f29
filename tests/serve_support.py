"""`boomerang serve` in its own process for tests that need the real server on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(home, env: dict[str, str]) -> tuple[str, subprocess.Popen]:
    """The server's base URL and process, once it answers /health; `env` is the process's whole environment."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "boomerang", "--home", str(home), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return base, proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(proc.stdout.read())
