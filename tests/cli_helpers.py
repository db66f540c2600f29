"""The CLI run in-process (Typer's runner) with a subprocess's answer: exit code, stdout and stderr apart. A
subprocess would import the whole application again for each command (seconds each); the commands that start
processes, threads or signal handlers of their own (serve, worker, demo) still run as one."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from boomerang.cli.app import app

OWN_PROCESS = {"serve", "worker", "demo"}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_cli(home: Path | str, *args: str) -> Ran:
    """`boomerang --home HOME ARGS...` as a user runs it."""
    if args and args[0] in OWN_PROCESS:
        done = subprocess.run(
            [sys.executable, "-m", "boomerang", "--home", str(home), *args], capture_output=True, text=True, timeout=180
        )
        return Ran(done.returncode, done.stdout, done.stderr)
    result = CliRunner().invoke(app, ["--home", str(home), *args], catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)
