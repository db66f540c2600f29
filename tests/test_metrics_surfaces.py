"""Metrics on a workspace: the service, stored traits and lifecycle events, the API and the CLI."""

from __future__ import annotations

import json

import pytest

import metrics_data
from api_helpers import Api
from boomerang.metrics import service
from cli_helpers import run_cli

PERIOD = {"date_from": "2024-01-01", "date_to": "2024-04-30"}


@pytest.fixture
def shop(ws):
    """A workspace whose event log holds the hand-made shop."""
    ws.log.append(metrics_data.events())
    return ws


def test_run_on_the_workspace_log(shop):
    assert service.run(shop.uow, shop.log, "nps", PERIOD)["value"] == 25
    result = service.run(shop.uow, shop.log, "average_order_value", {**PERIOD, "interval": "week"})
    assert result["query"]["interval"] == "week" and result["details"]["orders"] == 7


def test_rfm_and_lifecycle_are_stored_and_transitions_logged_once(shop):
    assert shop.log.traits("rfm") is None
    assert service.store_traits(shop.uow, shop.log, "rfm", PERIOD, now=shop.now()) == {
        "trait": "rfm",
        "customers": 4,
        "events_added": 0,
    }
    stored = shop.log.traits("rfm", ["B"])
    assert stored["rfm_group"].tolist() == ["champions"]
    params = {**PERIOD, "window_days": 60}
    assert service.store_traits(shop.uow, shop.log, "lifecycle", params, now=shop.now())["events_added"] == 15
    assert service.store_traits(shop.uow, shop.log, "lifecycle", params, now=shop.now())["events_added"] == 0
    # Another window moves the transitions; only those after each customer's last announced one are logged.
    later = service.store_traits(shop.uow, shop.log, "lifecycle", {**params, "window_days": 40}, now=shop.now())
    assert 0 <= later["events_added"] < 15
    with shop.log.connect() as conn:
        rows = conn.execute(
            "SELECT properties->>'from', properties->>'to' FROM events "
            "WHERE event = 'Lifecycle Stage Changed' AND customer_id = 'B' ORDER BY timestamp"
        ).fetchall()
    assert rows[:4] == [(None, "new"), ("new", "sleeping"), ("sleeping", "churned"), ("churned", "reactivated")]
    assert shop.log.traits("lifecycle", ["B"])["stage"].tolist() == ["reactivated"]


def test_traits_need_a_metric_that_has_them(shop):
    from boomerang.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="no per-customer"):
        service.store_traits(shop.uow, shop.log, "nps", {}, now=shop.now())


def test_api(shop):
    api = Api(shop)
    names = {m["name"] for m in api.api("GET", "/metrics").json()["items"]}
    assert {"retention_rate", "cohorts", "rfm", "lifecycle", "funnel", "nps", "subscriber_retention"} <= names
    nps = api.api("GET", "/metrics/nps", params={"from": "2024-01-01", "to": "2024-04-30", "interval": "month"})
    assert nps.status_code == 200 and nps.json()["value"] == 25
    funnel = api.api(
        "GET",
        "/metrics/funnel",
        params=[("steps", "Product Viewed"), ("steps", "Product Added"), ("from", "2024-01-01"), ("to", "2024-04-30")],
    ).json()
    assert [s["customers"] for s in funnel["steps"]] == [4, 2]
    missing = api.api("GET", "/metrics/happiness")
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "metric"
    bad = api.api("GET", "/metrics/churn_rate", params={"window_days": 0})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "window_days"
    stored = api.api("POST", "/metrics/rfm/traits", params={"to": "2024-04-30"})
    assert stored.json()["customers"] == 4
    assert api.client.get("/api/metrics").status_code == 401


def _cli(home, *args):
    return run_cli(home, "report", *args)


def test_cli(shop):
    home = shop.settings.home
    listed = _cli(home, "--list", "--json")
    assert listed.returncode == 0 and "cohorts" in {m["name"] for m in json.loads(listed.stdout)}
    done = _cli(home, "nps", "--from", "2024-01-01", "--to", "2024-04-30", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["value"] == 25
    table = _cli(home, "cohorts", "--to", "2024-04-30")
    assert table.returncode == 0 and "2024-01" in table.stdout
    rfm = json.loads(_cli(home, "rfm", "--to", "2024-04-30", "--json").stdout)
    assert rfm["stored"]["customers"] == 4
    bad = _cli(home, "churn_rate", "--interval", "fortnight")
    assert bad.returncode == 2 and "interval" in bad.stderr
    unknown = _cli(home, "happiness")
    assert unknown.returncode == 2 and "unknown metric" in unknown.stderr
