"""The dashboard through its HTTP surface: passwords, sessions, CSRF, roles, redirects, pages and escaping."""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from tests.api_helpers import Api

from boomerang.api.app import create_app
from boomerang.auth import users as service
from boomerang.core.errors import Conflict, ValidationFailed
from boomerang.core.signing import load_secret
from boomerang.dashboard.auth import COOKIE, safe_next
from boomerang.metrics import service as metrics
from boomerang.orchestration.rounds import move_events
from cli_helpers import run_cli

NOW = datetime(2024, 6, 1, 12, 0)
XSS = "<script>alert(1)</script>"


def _user(ws, username: str, role: str, password: str = "correct-horse") -> None:
    with ws.uow.session() as s:
        service.create_user(s, username=username, role=role, password=password, now=NOW)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _login(client: TestClient, username: str, password: str = "correct-horse", next_: str = "/"):
    token = _csrf(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_},
        follow_redirects=False,
    )


@pytest.fixture
def client(ws) -> TestClient:
    return TestClient(create_app(ws, background=False))


@pytest.fixture
def shop(ws):
    """Three customers with orders over four months, an NPS answer, consents and a hostile name and property."""
    api = Api(ws)
    people = [
        ("u1", {"email": "ann@example.org", "first_name": XSS, "consents": {"email": True}}),
        ("u2", {"email": "bob@example.org", "first_name": "Bob", "phone": "+15550001"}),
        ("u3", {"email": "cy@example.org", "first_name": "Cy"}),
    ]
    batch = [{"type": "identify", "userId": u, "traits": t, "timestamp": "2024-01-01T09:00:00Z"} for u, t in people]
    orders = [
        ("u1", "o1", "2024-01-05"),
        ("u1", "o2", "2024-02-10"),
        ("u1", "o3", "2024-04-02"),
        ("u2", "o4", "2024-01-20"),
        ("u2", "o5", "2024-03-15"),
        ("u3", "o6", "2024-02-25"),
    ]
    for user, order, day in orders:
        batch.append(
            {
                "type": "track",
                "userId": user,
                "event": "Product Viewed",
                "timestamp": f"{day}T09:00:00Z",
                "properties": {"sku": "T1", "category": "Tea > Green", "note": "<img src=x onerror=alert(1)>"},
            }
        )
        batch.append(
            {
                "type": "track",
                "userId": user,
                "event": "Order Completed",
                "timestamp": f"{day}T10:00:00Z",
                "properties": {
                    "order_id": order,
                    "total": 30,
                    "currency": "EUR",
                    "products": [
                        {"sku": "T1", "name": "Green tea", "category": "Tea > Green", "price": 15, "quantity": 2}
                    ],
                },
            }
        )
    batch.append(
        {
            "type": "track",
            "userId": "u2",
            "event": "NPS Survey Answered",
            "timestamp": "2024-03-20T10:00:00Z",
            "properties": {"score": 10},
        }
    )
    assert api.track("batch", {"batch": batch}).status_code == 200
    move_events(ws)
    return ws


# --- passwords and users --------------------------------------------------------------------------


def test_scrypt_hashes_are_salted_and_checked_in_constant_time():
    first, second = service.hash_password("s3cret-pass"), service.hash_password("s3cret-pass")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert service.verify_password("s3cret-pass", first) and service.verify_password("s3cret-pass", second)
    assert not service.verify_password("s3cret-pasS", first)
    assert not service.verify_password("s3cret-pass", "md5$abc") and not service.verify_password("x", "garbage")


def test_users_are_validated_and_unique(ws):
    with ws.uow.session() as s:
        user, password = service.create_user(s, username=" Alice ", role="viewer", password=None, now=NOW)
        assert user.username == "alice" and len(password) >= 16
        for kwargs, field in [
            ({"username": "bo b", "role": "viewer"}, "username"),
            ({"username": "bob", "role": "root"}, "role"),
            ({"username": "bob", "role": "viewer", "password": "short"}, "password"),
        ]:
            with pytest.raises(ValidationFailed) as failed:
                service.create_user(s, now=NOW, **{"password": None, **kwargs})
            assert failed.value.errors[0]["field"] == field
        with pytest.raises(Conflict):
            service.create_user(s, username="ALICE", role="admin", password=None, now=NOW)
        assert service.authenticate(s, "alice", password).id == user.id
        assert service.authenticate(s, "alice", "wrong-password") is None
        assert service.authenticate(s, "nobody", password) is None
        service.disable_user(s, "alice", now=NOW)
        assert service.authenticate(s, "alice", password) is None


def test_the_secret_is_made_once_and_private(tmp_path):
    first, second = load_secret(tmp_path / "ws"), load_secret(tmp_path / "ws")
    assert first == second and len(first) == 32
    assert stat.S_IMODE(os.stat(tmp_path / "ws" / "dashboard-secret").st_mode) == 0o600


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/customers?q=a", "/customers?q=a"),
        ("/", "/"),
        (None, "/"),
        ("", "/"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/\t/evil.example", "/"),
        ("evil.example", "/"),
    ],
)
def test_next_is_a_local_path_only(target, expected):
    assert safe_next(target) == expected


# --- HTTP: login, sessions, CSRF, roles --------------------------------------------------------------


def test_pages_need_a_login_and_api_routes_do_not_change(client):
    response = client.get("/customers?q=a", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/customers%3Fq%3Da"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    for path in ("/cohorts", "/rfm", "/funnel", "/users", "/customers/cus_x"):
        assert client.get(path, follow_redirects=False).headers["location"].startswith("/login?next=")
    assert client.get("/api/status").status_code == 401  # still the secret key, never the session
    assert client.post("/v1/track", json={"event": "x", "userId": "u"}).status_code == 401
    assert client.get("/health").json()["ok"] is True
    assert client.get("/static/chart.umd.js").text.startswith("/*!\n * Chart.js v4")


def test_login_sets_a_private_cookie_and_goes_to_a_local_next(ws, client):
    _user(ws, "ann", "viewer")
    page = client.get("/login?next=/rfm")
    assert page.status_code == 200 and 'value="/rfm"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    anonymous = client.cookies[COOKIE]
    response = _login(client, "ann", next_="/rfm")
    assert response.status_code == 303 and response.headers["location"] == "/rfm"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert client.cookies[COOKIE] != anonymous  # a new session (and CSRF token) on login
    assert client.get("/rfm", follow_redirects=False).status_code == 200
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"


def test_no_open_redirect_after_login(ws, client):
    _user(ws, "ann", "viewer")
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        client.cookies.clear()
        assert _login(client, "ann", next_=target).headers["location"] == "/"


def test_wrong_password_unknown_user_and_disabled_user_are_refused_alike(ws, client):
    _user(ws, "ann", "viewer")
    _user(ws, "gone", "admin")
    with ws.uow.session() as s:
        service.disable_user(s, "gone", now=NOW)
    for username, password in [("ann", "wrong-password"), ("nobody", "correct-horse"), ("gone", "correct-horse")]:
        response = _login(client, username, password)
        assert response.status_code == 401 and "Wrong username or password" in response.text
        assert client.get("/", follow_redirects=False).status_code == 303


def test_every_post_needs_the_sessions_csrf_token(ws, client):
    _user(ws, "root", "admin")
    client.get("/login")
    refused = client.post(
        "/login", data={"username": "root", "password": "correct-horse", "csrf_token": "nope"}, follow_redirects=False
    )
    assert refused.status_code == 403 and COOKIE not in refused.headers.get("set-cookie", "")
    assert _login(client, "root").status_code == 303
    forged = client.post("/users", data={"username": "eve", "role": "admin", "csrf_token": "forged"})
    assert forged.status_code == 403
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    with ws.uow.session() as s:
        assert service.get_user(s, "eve") is None
    token = _csrf(client.get("/users").text)
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_a_tampered_cookie_is_no_session(ws, client):
    _user(ws, "ann", "viewer")
    _login(client, "ann")
    value = client.cookies[COOKIE]
    client.cookies.set(COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_roles_viewer_is_barred_from_users_admin_manages_them(ws, client):
    _user(ws, "vera", "viewer")
    _user(ws, "mark", "marketer")
    _user(ws, "root", "admin")
    _login(client, "vera")
    page = client.get("/customers")
    assert page.status_code == 200 and 'href="/users"' not in page.text
    assert client.get("/users").status_code == 403
    assert (
        client.post("/users", data={"username": "x", "role": "admin", "csrf_token": _csrf(page.text)}).status_code
        == 403
    )
    client.cookies.clear()
    _login(client, "mark")
    assert client.get("/users").status_code == 403 and client.get("/funnel").status_code == 200

    admin = TestClient(client.app)
    _login(admin, "root")
    page = admin.get("/users")
    assert page.status_code == 200 and all(name in page.text for name in ("vera", "mark", "root"))
    made = admin.post(
        "/users", data={"username": "newbie", "role": "viewer", "password": "", "csrf_token": _csrf(page.text)}
    )
    password = re.search(r'id="new-password">([^<]+)<', made.text).group(1)
    bad = admin.post("/users", data={"username": "newbie", "role": "viewer", "csrf_token": _csrf(page.text)})
    assert bad.status_code == 409 and "already exists" in bad.text
    newbie = TestClient(client.app)
    assert _login(newbie, "newbie", password).status_code == 303
    assert newbie.get("/rfm", follow_redirects=False).status_code == 200
    gone = admin.post("/users/newbie/disable", data={"csrf_token": _csrf(page.text)}, follow_redirects=False)
    assert gone.status_code == 303
    assert newbie.get("/rfm", follow_redirects=False).headers["location"] == "/login?next=/rfm"  # out at once
    self_disable = admin.post("/users/root/disable", data={"csrf_token": _csrf(page.text)})
    assert self_disable.status_code == 400


def test_a_new_password_ends_older_sessions(ws, client):
    _user(ws, "ann", "viewer")
    _login(client, "ann")
    assert client.get("/customers", follow_redirects=False).status_code == 200
    with ws.uow.session() as s:
        service.set_password(s, username="ann", password="another-horse", now=NOW)
    assert client.get("/customers", follow_redirects=False).status_code == 303


# --- pages --------------------------------------------------------------------------------------------


def test_an_empty_workspace_renders_without_numbers(ws, client):
    _user(ws, "ann", "viewer")
    _login(client, "ann")
    for path in ("/", "/cohorts", "/rfm", "/funnel", "/customers"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert "No numbers to show" in client.get("/").text


def test_pages_show_the_metrics(shop, client):
    _user(shop, "ann", "viewer")
    _login(client, "ann")
    period = {"date_from": "2024-01-01", "date_to": "2024-04-30"}
    overview = client.get("/", params={**period, "interval": "week"})
    assert overview.status_code == 200 and 'id="sales-chart"' in overview.text
    sales = json.loads(re.search(r'id="sales-chart-data">(.*?)</script>', overview.text, re.S).group(1))
    assert sum(sales["datasets"][0]["data"]) == 6 and sum(sales["datasets"][1]["data"]) == 180
    # The overview derives these from the counts of their sibling metrics: the same numbers as running them, on
    # the period cut at the data's last day (Apr 2); a month without a window of history or in progress is left out.
    upto = {**period, "date_to": "2024-04-02"}
    churn = metrics.run(shop.uow, shop.log, "churn_rate", {**upto, "interval": "month"})
    activity = json.loads(re.search(r'id="activity-chart-data">(.*?)</script>', overview.text, re.S).group(1))
    kept = [row["value"] if row["full_history"] and row["complete"] else None for row in churn["series"]]
    assert activity["datasets"][1]["data"] == kept and any(v is not None for v in kept)
    repeat = metrics.run(shop.uow, shop.log, "repeat_purchase_rate", upto)["value"]
    assert f"{repeat * 100:.1f}%" in overview.text and "100.0" in overview.text  # NPS of the one answer

    cohorts = client.get("/cohorts", params=period).text
    assert "2024-01" in cohorts and 'class="num heat-10 first"' in cohorts
    rfm = client.get("/rfm", params={"date_to": "2024-04-30"}).text
    assert rfm.count('<tr><th scope="row">R') == 5 and "champions" in rfm
    funnel = client.get("/funnel", params={**period, "category": "Tea"})
    assert funnel.status_code == 200 and "Product Viewed → Product Added" in funnel.text
    assert ">Tea</a>" in funnel.text and 'value="Tea"' in funnel.text
    bad = client.get("/funnel", params={"date_from": "2024-05-01", "date_to": "2024-01-01"})
    assert bad.status_code == 400 and "No numbers to show" in bad.text and "date_from must not be after" in bad.text


def test_customers_search_and_the_customer_page_escape_what_they_show(shop, client):
    _user(shop, "ann", "viewer")
    _login(client, "ann")
    listing = client.get("/customers")
    assert XSS not in listing.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in listing.text
    found = client.get("/customers", params={"q": "bob@"}).text
    assert "bob@example.org" in found and "ann@example.org" not in found
    assert "Nobody matches" in client.get("/customers", params={"q": "zzz"}).text
    customer_id = re.search(r'href="/customers/([^"]+)">&lt;script', listing.text).group(1)

    page = client.get(f"/customers/{customer_id}")
    assert page.status_code == 200 and XSS not in page.text and "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text  # the event's property, as text
    assert "o1" in page.text and "Green tea" in page.text and "ann@example.org" in page.text
    assert "granted" in page.text  # the email consent
    assert "not computed yet" in page.text and "boomerang clv predict" in page.text
    assert page.text.index("2024-04-02") < page.text.index("2024-01-05 10:00")  # newest first

    metrics.store_traits(shop.uow, shop.log, "rfm", {}, now=shop.now())
    metrics.store_traits(shop.uow, shop.log, "lifecycle", {}, now=shop.now())
    page = client.get(f"/customers/{customer_id}").text
    assert 'id="rfm-group"' in page and 'id="lifecycle-stage"' in page
    assert client.get("/customers/cus_nobody").status_code == 404


def test_users_cli(tmp_path):
    home = tmp_path / "ws"

    def cli(*args):
        return run_cli(home, "users", *args)

    made = json.loads(cli("create", "--username", "Root", "--role", "admin", "--json").stdout)
    assert made["username"] == "root" and len(made["password"]) >= 16
    assert cli("create", "--username", "vera", "--role", "viewer", "--password", "long-enough").returncode == 0
    bad = cli("create", "--username", "x", "--role", "owner")
    assert bad.returncode == 2 and "role" in bad.stderr
    assert cli("create", "--username", "vera", "--role", "viewer").returncode == 2
    assert "disabled vera" in cli("disable", "vera").stdout
    listed = json.loads(cli("list", "--json").stdout)
    assert [(u["username"], u["role"], u["disabled_at"] is not None) for u in listed] == [
        ("root", "admin", False),
        ("vera", "viewer", True),
    ]
    assert "password" not in listed[0] and "password_hash" not in listed[0]
    assert cli("disable", "nobody").returncode == 2


def test_metric_results_are_kept_while_the_log_is_unchanged(shop):
    from boomerang.dashboard.data import Analytics

    analytics = Analytics(shop, fresh_seconds=0)
    first = analytics.metric("nps", {"date_from": "2024-01-01", "date_to": "2024-04-30"})
    assert analytics.metric("nps", {"date_from": "2024-01-01", "date_to": "2024-04-30"}) is first
    api = Api(shop)
    api.track(
        "track",
        {
            "userId": "u3",
            "event": "NPS Survey Answered",
            "timestamp": "2024-04-01T10:00:00Z",
            "properties": {"score": 0},
        },
    )
    move_events(shop)
    again = analytics.metric("nps", {"date_from": "2024-01-01", "date_to": "2024-04-30"})
    assert (first["value"], again["value"]) == (100, 0)


def test_dashboard_reads_wait_for_a_connection_of_another_configuration(shop):
    """DuckDB refuses a read-only connection while the same process holds a read-write one: the dashboard waits."""
    import threading

    import duckdb

    from boomerang.dashboard.data import Analytics

    analytics = Analytics(shop)
    # opened by hand beside the log (log.connect() in this thread would make the read fail at once, not wait)
    held = duckdb.connect(str(shop.log.path))
    timer = threading.Timer(0.5, held.close)
    timer.start()
    try:
        result = analytics.metric("rfm", {"date_to": "2024-04-30"})
    finally:
        timer.join()
    assert result["value"] == 3
