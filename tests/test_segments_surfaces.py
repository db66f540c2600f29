"""Segments through the API and the CLI, the ready-made library, the matrix."""

from __future__ import annotations

import json

import pytest

import segments_data
from api_helpers import Api
from boomerang.journeys import matrix
from boomerang.segments import library, membership, service
from cli_helpers import run_cli


@pytest.fixture
def shop(ws):
    return ws, segments_data.load(ws)


def test_ready_made_segments_install_and_run(shop):
    ws, ids = shop
    with ws.uow.session() as s:
        names = [x["name"] for x in library.install(s, now=ws.now())]
    assert len(names) == 10 and names.index("high_value") < names.index("high_value_at_risk")
    with ws.uow.session() as s:
        assert all(not x["changed"] for x in library.install(s, now=ws.now()))  # installing again changes nothing
    rows = {r["name"]: r for r in membership.refresh(ws.segments)}
    who = {v: k for k, v in ids.items()}
    members = {
        name: {who[c] for c in ws.segments.members(name)["customer_id"]}
        for name, row in rows.items()
        if "error" not in row
    }
    assert members["category_viewers"] == {"ann", "cat"}  # bob viewed Coffee only twice this week
    assert members["cart_abandoners"] == {"bob"}
    assert members["active_repeat_buyers"] == {"ann"}
    assert members["sleeping"] == {"bob"}  # last order 81.5 days ago
    assert members["one_time_buyers_30_days"] == {"dan"}  # his only order 30.5 days ago
    assert members["birthday_this_week"] == {"ann"}
    assert members["new_customers"] == set()  # dan's first order is 30.5 days old; two weeks earlier it was new
    assert {who[c] for c in ws.segments.members("new_customers", as_of="2024-04-15")["customer_id"]} == {"dan"}
    # traits not computed yet: those segments say so and the rest still refresh
    assert "lifecycle traits" in rows["churned"]["error"] and "predictions traits" in rows["high_value"]["error"]


def test_matrix_flags_segments_nobody_speaks_to(shop, monkeypatch):
    ws, _ = shop
    with ws.uow.session() as s:
        service.save(s, {"name": "kyiv", "rule": {"attribute": "city", "op": "eq", "value": "Kyiv"}}, now=ws.now())
    membership.refresh(ws.segments)
    with ws.uow.session() as s:
        found = matrix.matrix(s)
    assert found["rows"][0]["segment"] == "kyiv" and found["rows"][0]["size"] == 2
    assert found["rows"][0]["flags"] == ["nobody speaks to this segment"] and found["holes"] == 1
    usages = matrix.journey_usages
    extra = matrix.Usage("kyiv", "journey", "welcome", "first_purchase", ("email",))
    monkeypatch.setattr(matrix, "journey_usages", lambda session: [*usages(session), extra])
    with ws.uow.session() as s:
        row = matrix.matrix(s)["rows"][0]
    assert row["flags"] == [] and row["cells"]["first_purchase"]["email"] == ["journey:welcome"]
    assert row["cells"]["first_purchase"]["sms"] == []


def test_api(shop):
    ws, ids = shop
    api = Api(ws)
    rule = {"event": "Order Completed", "within_days": 30}
    created = api.api("POST", "/segments", json={"name": "recent", "title": "Recent buyers", "rule": rule})
    assert created.status_code == 201 and created.json()["version"] == 1
    bad = api.api("POST", "/segments", json={"name": "x", "rule": {"event": "A", "within_days": 0}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "rule.within_days"
    assert api.api("GET", "/segments").json()["items"][0]["name"] == "recent"
    preview = api.api("POST", "/segments/preview", json={"name": "p", "rule": rule}).json()
    assert preview["size"] == 1 and preview["sample"] == [ids["ann"]]
    past = api.api("GET", "/segments/recent/preview", params={"as_of": "2024-02-15"}).json()
    assert past["sample"] == [ids["bob"]]
    assert api.api("POST", "/segments/recent/refresh").json()["entered"] == 1
    assert api.api("GET", "/segments/recent").json()["members"] == 1
    assert api.api("GET", "/segments/recent/members").json() == {"total": 1, "items": [ids["ann"]]}
    why = api.api("GET", f"/segments/recent/explain/{ids['bob']}").json()
    assert why["member"] is False and why["rule"]["value"] == 0
    assert [h["size"] for h in api.api("GET", "/segments/recent/history").json()["items"]] == [1]
    assert api.api("GET", "/segments/matrix").json()["holes"] == 1
    assert api.api("GET", "/segments/nowhere").status_code == 404
    assert api.api("GET", "/segments/recent/explain/cus_nobody").json()["errors"][0]["field"] == "customer"
    assert api.api("DELETE", "/segments/recent").status_code == 204
    assert api.client.get("/api/segments").status_code == 401


def _cli(home, *args):
    return run_cli(home, "segments", *args)


def test_cli(shop, tmp_path):
    ws, ids = shop
    home = ws.settings.home
    definition = tmp_path / "kyiv.yaml"
    definition.write_text("name: kyiv\ntitle: Kyiv\nrule:\n  attribute: city\n  op: eq\n  value: Kyiv\n")
    created = _cli(home, "create", str(definition), "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)[0]["version"] == 1
    preview = json.loads(_cli(home, "preview", "kyiv", "--json").stdout)
    assert preview["size"] == 2
    from_file = json.loads(_cli(home, "preview", str(definition), "--json").stdout)
    assert from_file["size"] == 2
    refreshed = _cli(home, "refresh", "--json")
    assert json.loads(refreshed.stdout)[0]["entered"] == 2
    listed = _cli(home, "list")
    assert listed.returncode == 0 and "kyiv" in listed.stdout
    why = _cli(home, "explain", "kyiv", ids["bob"])
    assert why.returncode == 0 and "is not a member" in why.stdout and "Lviv" in why.stdout
    out = tmp_path / "members.csv"
    assert _cli(home, "members", "kyiv", "--out", str(out)).returncode == 0
    assert sorted(out.read_text().split()[1:]) == sorted([ids["ann"], ids["cat"]])
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nrule:\n  event: Order Completed\n  op: gte\n  value: many\n")
    failed = _cli(home, "create", str(broken))
    assert failed.returncode == 2 and "rule.value" in failed.stderr and "number" in failed.stderr
    assert _cli(home, "explain", "nowhere", ids["bob"]).returncode == 2


def test_matrix_shows_the_journeys_a_segment_starts(shop):
    ws, _ = shop
    from boomerang.journeys import library as journeys
    from boomerang.journeys import service as journey_service

    with ws.uow.session() as s:
        library.install(s, now=ws.now())
        journeys.install(s, now=ws.now())
        journey_service.set_status(s, "browse_abandonment", "active", now=ws.now())
    with ws.uow.session() as s:
        rows = {r["segment"]: r for r in matrix.matrix(s)["rows"]}
    viewers = rows["category_viewers"]
    assert viewers["goals"] == ["repeat_purchase"] and "email" in viewers["channels"]
    assert viewers["cells"]["repeat_purchase"]["email"] == ["journey:browse_abandonment"]
    assert "nobody speaks to this segment" in rows["sleeping"]["flags"]
