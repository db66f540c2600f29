"""Journeys through the API and the CLI."""

from __future__ import annotations

import json

import pytest
import yaml

import segments_data
from api_helpers import Api
from cli_helpers import run_cli
from test_journeys_engine import CART

VIP = {
    "name": "vip",
    "title": "VIP gift",
    "trigger": {"manual": True},
    "control_share": 0,
    "start": "ask",
    "nodes": {
        "ask": {"type": "approval", "note": "a gift?", "next": "gift", "on_reject": "end"},
        "gift": {"type": "send", "channel": "email", "template": "vip_gift", "next": "end"},
        "end": {"type": "exit"},
    },
}


@pytest.fixture
def shop(ws):
    return ws, segments_data.load(ws)


def test_api(shop):
    ws, ids = shop
    api = Api(ws)
    created = api.api("POST", "/journeys", json=VIP)
    assert created.status_code == 201 and created.json()["status"] == "draft"
    bad = api.api("POST", "/journeys/validate", json={**CART, "start": "nowhere"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "start"
    refused = api.api("POST", "/journeys/vip/enter", json={"customer_id": ids["ann"]})
    assert refused.status_code == 400 and "activate it first" in refused.json()["errors"][0]["reason"]
    assert api.api("POST", "/journeys/vip/activate").json()["status"] == "active"
    entered = api.api("POST", "/journeys/vip/enter", json={"customer_id": ids["ann"]}).json()
    assert entered["instance"]
    queue = api.api("GET", "/journeys/approvals").json()["items"]
    assert [(q["journey"], q["customer_id"]) for q in queue] == [("vip", ids["ann"])]
    decided = api.api("POST", f"/journeys/approvals/{queue[0]['key']}", json={"approved": True, "by": "ann"}).json()
    assert decided["instance_status"] == "done"
    stats = api.api("GET", "/journeys/vip").json()
    assert stats["groups"]["treated"]["entered"] == 1 and stats["nodes"]["end"]["here"] == {"done": 1}
    assert api.api("GET", "/journeys").json()["items"][0]["name"] == "vip"
    assert api.api("POST", "/journeys/vip/enter", json={"customer_id": "cus_nobody"}).status_code == 404
    assert api.api("GET", "/journeys/nowhere").status_code == 404
    assert api.client.get("/api/journeys").status_code == 401


def _cli(home, *args):
    return run_cli(home, *args)


def test_cli(shop, tmp_path):
    ws, ids = shop
    home = ws.settings.home
    file = tmp_path / "vip.yaml"
    file.write_text(yaml.safe_dump(VIP))
    assert json.loads(_cli(home, "journeys", "validate", str(file), "--json").stdout) == {"valid": ["vip"]}
    assert json.loads(_cli(home, "journeys", "create", str(file), "--json").stdout)[0]["version"] == 1
    assert _cli(home, "journeys", "activate", "vip").returncode == 0
    entered = json.loads(_cli(home, "journeys", "enter", "vip", ids["bob"], "--json").stdout)
    assert entered["instance"]
    queue = json.loads(_cli(home, "journeys", "approvals", "--json").stdout)
    rejected = _cli(home, "journeys", "approve", queue[0]["key"], "--by", "vic", "--reject", "--json")
    assert json.loads(rejected.stdout)["status"] == "rejected"
    listed = _cli(home, "journeys", "list")
    assert "vip" in listed.stdout and "active" in listed.stdout
    assert "treated" in _cli(home, "journeys", "stats", "vip").stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        yaml.safe_dump(
            {
                **VIP,
                "nodes": {**VIP["nodes"], "gift": {"type": "send", "channel": "fax", "template": "t", "next": "end"}},
            }
        )
    )
    failed = _cli(home, "journeys", "create", str(broken))
    assert failed.returncode == 2 and "nodes.gift.channel" in failed.stderr
    once = _cli(home, "worker", "--once", "--json")
    assert once.returncode == 0, once.stderr


def test_library_and_simulation_surfaces(shop):
    ws, _ = shop
    api = Api(ws)
    installed = api.api("POST", "/journeys/library").json()["items"]
    assert len(installed) == 15 and {j["status"] for j in installed} == {"draft"}
    simulated = api.api("GET", "/journeys/abandoned_cart/simulation", params={"from": "2024-04-01", "to": "2024-05-01"})
    assert simulated.status_code == 200 and simulated.json()["journey"] == "abandoned_cart"
    bad = api.api("GET", "/journeys/abandoned_cart/simulation", params={"from": "2024-04-01"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "to"
    table = _cli(ws.settings.home, "journeys", "simulate", "win_back", "--from", "2024-04-01", "--to", "2024-05-01")
    assert table.returncode == 0 and "simulated, nothing written" in table.stdout
    with ws.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM journey_instances").scalar_one() == 0
