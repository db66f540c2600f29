"""Dashboard sessions kept in the store (logout, disabling, a new password, idle and absolute lifetimes), the
login throttle, and a workspace readable by its owner only."""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from boomerang.api.app import create_app
from boomerang.auth import users as service
from boomerang.auth.models import DashboardSession, LoginFailure
from boomerang.bootstrap import open_workspace
from boomerang.config import Settings
from boomerang.core.clock import FixedClock
from boomerang.dashboard.auth import COOKIE, Keys

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct-horse"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _login(client: TestClient, username: str, password: str = PASSWORD):
    token = _csrf(client.get("/login").text)
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}, follow_redirects=False
    )


def _in(client: TestClient, path: str = "/customers") -> bool:
    """Whether the client's cookie opens a page (else the dashboard sends it to the login page)."""
    response = client.get(path, follow_redirects=False)
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


def _ann_id(ws) -> str:
    with ws.uow.session() as s:
        return service.get_user(s, "ann").id


def _rows(ws, model) -> list:
    with ws.uow.session() as s:
        return list(s.scalars(sa.select(model)))


@pytest.fixture
def clock(ws) -> FixedClock:
    ws.clock = FixedClock(NOW)
    return ws.clock


@pytest.fixture
def app(ws, clock):
    for username, role in (("ann", "viewer"), ("root", "admin")):
        with ws.uow.session() as s:
            service.create_user(s, username=username, role=role, password=PASSWORD, now=ws.now())
    return create_app(ws, background=False)


def _client(app, address: str = "10.0.0.1", **kwargs) -> TestClient:
    return TestClient(app, client=(address, 50000), **kwargs)


# --- sessions ------------------------------------------------------------------------------------------


def test_the_cookie_carries_a_token_the_store_keeps_only_hashed(ws, app):
    client = _client(app)
    response = _login(client, "ann")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    token = client.cookies[COOKIE]
    [row] = _rows(ws, DashboardSession)
    assert token not in row.token_hash and len(row.token_hash) == 64
    assert row.user_id and row.ended_at is None and row.expires_at == ws.now() + timedelta(hours=12)
    over_https = _client(app, base_url="https://testserver")
    assert "Secure" in _login(over_https, "ann").headers["set-cookie"]


def test_logout_ends_the_session_in_the_store(ws, app):
    client = _client(app)
    _login(client, "ann")
    old = client.cookies[COOKIE]
    assert _in(client)
    out = client.post("/logout", data={"csrf_token": _csrf(client.get("/customers").text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert [row.ended_at for row in _rows(ws, DashboardSession)] == [ws.now()]
    thief = _client(app, cookies={COOKIE: old})  # the cookie, replayed after logging out
    response = thief.get("/customers", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/customers"


def test_a_disabled_users_sessions_end_from_the_cli_or_the_users_page(ws, app):
    ann = _client(app)
    _login(ann, "ann")
    with ws.uow.session() as s:  # what `boomerang users disable` does
        service.disable_user(s, "ann", now=ws.now())
    assert not _in(ann)
    assert all(row.ended_at is not None for row in _rows(ws, DashboardSession) if row.user_id == _ann_id(ws))
    with ws.uow.session() as s:
        service.set_password(s, username="ann", password=PASSWORD, now=ws.now())  # enabled again
    assert not _in(ann)  # the old session stays over
    _login(ann, "ann")
    root = _client(app, "10.0.0.2")
    _login(root, "root")
    page = root.get("/users").text
    assert root.post("/users/ann/disable", data={"csrf_token": _csrf(page)}, follow_redirects=False).status_code == 303
    assert not _in(ann) and _in(root)


def test_a_new_password_ends_the_other_sessions_not_ones_own(ws, app):
    laptop, phone = _client(app), _client(app, "10.0.0.2")
    _login(laptop, "ann")
    _login(phone, "ann")
    page = laptop.get("/account")
    assert page.status_code == 200 and 'id="change-password"' in page.text
    form = {
        "current": PASSWORD,
        "password": "battery-staple",
        "repeat": "battery-staple",
        "csrf_token": _csrf(page.text),
    }
    for wrong, reason in (({"repeat": "other-thing"}, "differ"), ({"current": "not-it-at-all"}, "is wrong")):
        refused = laptop.post("/account/password", data={**form, **wrong})
        assert refused.status_code == 400 and reason in refused.text
    assert laptop.post("/account/password", data={**form, "password": "short", "repeat": "short"}).status_code == 400
    changed = laptop.post("/account/password", data=form)
    assert changed.status_code == 200 and 'id="changed"' in changed.text
    assert _in(laptop) and not _in(phone)
    assert _login(phone, "ann", PASSWORD).status_code == 401
    assert _login(phone, "ann", "battery-staple").status_code == 303


def test_a_session_ends_when_idle_and_after_its_lifetime(ws, app, clock):
    ws.settings.dashboard.session_idle_minutes = 30
    ws.settings.dashboard.session_max_hours = 2
    client = _client(app)
    _login(client, "ann")
    for _ in range(5):  # busy: every 25 minutes, for 2 hours and 5 minutes
        clock.at += timedelta(minutes=25)
        assert _in(client) == (clock.at < NOW + timedelta(hours=2))
    client = _client(app)
    _login(client, "ann")
    clock.at += timedelta(minutes=29)
    assert _in(client)
    clock.at += timedelta(minutes=31)  # 31 idle minutes since the page before
    assert not _in(client)
    page = client.get("/login")  # a dead session's browser gets a visitor's token for the form
    assert page.status_code == 200 and client.cookies[COOKIE].startswith("v.")


def test_expired_sessions_are_forgotten_at_the_next_login(ws, app, clock):
    _login(_client(app), "ann")
    clock.at += timedelta(hours=13)
    _login(_client(app), "root")
    assert len(_rows(ws, DashboardSession)) == 1


def test_a_made_up_or_visitors_token_is_no_session(ws, app):
    client = _client(app)
    client.get("/login")
    assert client.cookies[COOKIE].startswith("v.") and not _in(client)
    for value in ("x" * 43, "garbage", "v." + "a" * 40, "../" * 20):
        assert not _in(_client(app, cookies={COOKIE: value}))
    keys = Keys(ws.secret)
    assert keys.session("a" * 43).csrf != keys.session("b" * 43).csrf  # each token its own CSRF token
    assert Keys(b"x" * 32).session("a" * 43).csrf != keys.session("a" * 43).csrf
    assert keys.read("a" * 43).csrf == keys.session("a" * 43).csrf and keys.read("a b") is None


# --- the login throttle ----------------------------------------------------------------------------------


def test_wrong_passwords_pause_a_username_then_the_window_opens_it(ws, app, clock):
    ws.settings.dashboard.login_failures_per_user = 3
    client = _client(app)
    for _ in range(3):
        clock.at += timedelta(minutes=1)
        assert _login(client, "ann", "wrong-password").status_code == 401
    paused = _login(client, "ann")  # the right password, during the pause: not even checked
    assert paused.status_code == 429 and "Too many wrong passwords" in paused.text and "Try again in" in paused.text
    assert int(paused.headers["retry-after"]) == 13 * 60  # the first of the three leaves the window then
    assert not _in(client) and _rows(ws, DashboardSession) == []
    elsewhere = _client(app, "10.9.9.9")  # the username is paused, from any address
    assert _login(elsewhere, "ann").status_code == 429
    assert _login(elsewhere, "root").status_code == 303  # other users are not
    clock.at += timedelta(minutes=13)
    assert _login(client, "ann").status_code == 303 and _in(client)


def test_a_right_password_resets_the_usernames_count(ws, app, clock):
    ws.settings.dashboard.login_failures_per_user = 3
    client = _client(app)
    for _ in range(3):
        assert _login(client, "ann", "wrong-password").status_code == 401
        assert _login(client, "ann", "wrong-password").status_code == 401
        assert _login(client, "ann").status_code == 303
        client.cookies.clear()


def test_wrong_passwords_from_one_address_pause_it_for_every_username(ws, app, clock):
    ws.settings.dashboard.login_failures_per_ip = 4
    guesser = _client(app, "203.0.113.7")
    for name in ("a1", "a2", "ann", "root"):
        assert _login(guesser, name, "wrong-password").status_code == 401
    refused = _login(guesser, "root")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) == 15 * 60
    assert _login(_client(app, "198.51.100.1"), "root").status_code == 303
    clock.at += timedelta(minutes=15)
    assert _login(guesser, "root").status_code == 303


def test_failures_are_kept_hashed_and_forgotten_after_the_window(ws, app, clock):
    client = _client(app)
    _login(client, "bob@example.org", "wrong-password")
    rows = _rows(ws, LoginFailure)
    assert len(rows) == 2 and not any("bob" in row.key or "10.0.0.1" in row.key for row in rows)
    clock.at += timedelta(minutes=16)
    _login(client, "ann", "wrong-password")
    assert {row.at for row in _rows(ws, LoginFailure)} == {ws.now()}


def test_the_password_form_is_throttled_too(ws, app, clock):
    ws.settings.dashboard.login_failures_per_user = 2
    client = _client(app)
    _login(client, "ann")
    token = _csrf(client.get("/account").text)
    form = {"password": "battery-staple", "repeat": "battery-staple", "csrf_token": token}
    for _ in range(2):
        assert client.post("/account/password", data={**form, "current": "guess-guess"}).status_code == 400
    paused = client.post("/account/password", data={**form, "current": PASSWORD})
    assert paused.status_code == 429 and "retry-after" in paused.headers
    assert _login(_client(app, "10.0.0.3"), "ann", "battery-staple").status_code == 429  # unchanged, and paused


# --- files ----------------------------------------------------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def loose_umask():
    """The usual umask (022), as a process has before it opens a workspace."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_a_new_workspace_is_readable_by_its_owner_only(tmp_path, loose_umask):
    home = tmp_path / "ws"
    ws = open_workspace(Settings(home=home))
    with ws.uow.session() as s:  # the SQLite store with its -wal and -shm open
        service.create_user(s, username="ann", role="viewer", password=PASSWORD, now=ws.now())
        assert ws.secret
    with ws.log.connect() as conn:  # DuckDB makes its write-ahead log afresh
        conn.execute("CREATE TABLE scratch (x INTEGER)")
        conn.execute("INSERT INTO scratch VALUES (1)")
        made = sorted(path.name for path in home.iterdir())
        modes = {path.name: _mode(path) for path in home.iterdir()}
    assert _mode(home) == 0o700
    assert {"boomerang.sqlite", "boomerang.sqlite-wal", "events.duckdb", "dashboard-secret"} <= set(made)
    assert modes == dict.fromkeys(made, 0o600)
    ws.engine.dispose()


def test_opening_a_workspace_tightens_what_is_already_there(tmp_path, loose_umask):
    home = tmp_path / "ws"
    open_workspace(Settings(home=home)).engine.dispose()
    (home / "exports").mkdir()
    (home / "exports" / "customers.json").write_text("{}")
    (home / "run.sh").write_text("#!/bin/sh\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the workspace's")
    (home / "link").symlink_to(outside)
    for path, mode in [
        (home, 0o755),
        (home / "boomerang.sqlite", 0o644),
        (home / "events.duckdb", 0o664),
        (home / "exports", 0o755),
        (home / "exports" / "customers.json", 0o644),
        (home / "run.sh", 0o755),
        (outside, 0o644),
    ]:
        os.chmod(path, mode)
    open_workspace(Settings(home=home)).engine.dispose()
    assert _mode(home) == _mode(home / "exports") == 0o700
    assert _mode(home / "boomerang.sqlite") == _mode(home / "events.duckdb") == 0o600
    assert _mode(home / "exports" / "customers.json") == 0o600
    assert _mode(home / "run.sh") == 0o700  # only the group's and others' bits go
    assert _mode(outside) == 0o644  # a link is not followed out of the workspace


# --- addresses that are no page ------------------------------------------------------------------------

HTML = {"accept": "text/html,application/xhtml+xml"}


def test_a_browser_gets_pages_for_unknown_paths_and_action_addresses_while_programs_keep_json(app):
    client = _client(app)
    _login(client, "ann")
    unknown = client.get("/no/such/page", headers=HTML)
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]
    assert "No such page" in unknown.text and 'href="/customers"' in unknown.text  # the menu: still logged in
    # an action's address opened directly (a reload after a form) goes to its page, not a raw "Method Not Allowed"
    action = client.get("/account/password", headers=HTML, follow_redirects=False)
    assert action.status_code == 303 and action.headers["location"] == "/account"
    cancel = client.get("/campaigns/spring/cancel", headers=HTML, follow_redirects=False)
    assert cancel.headers["location"] == "/campaigns/spring"
    # programs and the API keep FastAPI's JSON
    assert client.get("/no/such/page").json() == {"detail": "Not Found"}
    assert client.get("/api/no-such", headers=HTML).headers["content-type"] == "application/json"
    assert client.get("/account/password").status_code == 405


def test_a_changed_password_redirects_so_a_reload_does_not_send_it_again(app):
    client = _client(app)
    _login(client, "ann")
    form = {"current": PASSWORD, "password": "battery-staple", "repeat": "battery-staple"}
    changed = client.post(
        "/account/password", data={**form, "csrf_token": _csrf(client.get("/account").text)}, follow_redirects=False
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/account?changed=1"
    assert 'id="changed"' in client.get(changed.headers["location"]).text
    assert 'id="changed"' not in client.get("/account").text


def test_a_write_that_loses_a_race_on_a_unique_name_is_a_conflict_not_a_crash(app):
    @app.post("/api/test-race")
    def race():
        raise sa.exc.IntegrityError(
            "INSERT INTO journeys ...", {}, Exception("UNIQUE constraint failed: journeys.name")
        )

    answer = _client(app).post("/api/test-race")
    assert answer.status_code == 409 and answer.json()["errors"][0]["reason"].startswith("conflicts with a change")
