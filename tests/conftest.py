"""Fixtures: a fresh workspace on real stores (SQLite + DuckDB, or PostgreSQL + DuckDB)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from boomerang.bootstrap import Workspace, open_workspace
from boomerang.config import Settings
from browser_support import ARGS, CHROMIUM
from serve_support import free_port

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data"


# The modules that take longest on one worker (seconds measured on 2 cores), in that order, before the rest: the
# workers get them first (xdist spreads whole modules, --dist loadscope, in this order with --no-loadscope-reorder:
# by default xdist starts the modules with the most tests first, which left these two for last) and share the short
# ones at the end instead of one waiting for a long module started last (test_readme runs every README command).
LONGEST_FIRST = (
    "test_readme.py",  # 463
    "test_scale_out.py",  # 272 on a loaded machine: a Spark cluster, two servers and PostgreSQL
    "test_serve_and_cli.py",  # 244
    "test_importers.py",  # 132
    "test_metrics_spark.py",  # 96
    "test_dashboard_browser.py",  # 78
    "test_api_fuzz.py",  # 70
    "test_reco_dashboard.py",  # 65
    "test_dashboard_loyalty_browser.py",  # 61
    "test_dashboard_journeys_browser.py",  # 48
    "test_journeys_worker.py",  # 39
)
RANK = {name: i for i, name in enumerate(LONGEST_FIRST)}


def pytest_collection_modifyitems(config, items):
    """The longest modules first; tests that need the shared datasets skip only when ../shared is not there at all."""
    items.sort(key=lambda item: RANK.get(item.path.name, len(RANK)))  # stable: the rest keep their order
    if DATA.exists():
        return
    skip = pytest.mark.skip(reason=f"shared datasets not found at {DATA}")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "ws")


@pytest.fixture(scope="session")
def migrated_home(tmp_path_factory) -> Path:
    """A freshly migrated workspace folder, made once and copied by each test (migrations take ~1 s)."""
    home = tmp_path_factory.mktemp("template") / "ws"
    open_workspace(Settings(home=home)).engine.dispose()
    return home


@pytest.fixture
def ws(settings: Settings, migrated_home: Path) -> Workspace:
    """A migrated workspace on SQLite and DuckDB in a temporary folder."""
    shutil.copytree(migrated_home, settings.home)
    return open_workspace(settings)


def _pg_bin() -> Path | None:
    for version in ("17", "16", "15", "14"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin")
        if (candidate / "initdb").exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def postgres_server():
    """A throw-away PostgreSQL server on loopback (from Debian's postgresql package)."""
    if os.environ.get("BOOMERANG_TEST_PG_URL"):
        yield os.environ["BOOMERANG_TEST_PG_URL"]
        return
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="boomerang-pg-"))
    data = root / "data"
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: str) -> str:
    """The URL of a fresh, empty PostgreSQL database on the throw-away server."""
    import sqlalchemy as sa

    name = f"b{int(time.time() * 1000)}_{os.getpid()}"
    admin = sa.create_engine(
        f"postgresql+psycopg://{postgres_server.split('://', 1)[1]}/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{postgres_server}/{name}"


@pytest.fixture
def pg_ws(pg_url: str, tmp_path: Path, migrated_home: Path) -> Workspace:
    """A migrated workspace whose operational store is a fresh PostgreSQL database."""
    (tmp_path / "ws").mkdir()
    shutil.copy(migrated_home / "events.duckdb", tmp_path / "ws" / "events.duckdb")
    ws = open_workspace(Settings(home=tmp_path / "ws", database_url=pg_url))
    yield ws
    ws.engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_ws(request) -> Workspace:
    """The same test on both operational stores."""
    if request.param == "sqlite":
        return request.getfixturevalue("ws")
    return request.getfixturevalue("pg_ws")


# The browser tests: each module defines `server`; see browser_support.py.


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, request):
    """A fresh browser context; console errors and page errors (a CSP violation, say) fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server["base"])
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    tab.problems = problems
    yield tab
    context.close()
    expected = getattr(request.module, "EXPECTED_ERRORS", ())
    assert [p for p in problems if not any(e in p for e in expected)] == []
