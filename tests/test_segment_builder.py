"""The segment builder's server side: the shop's vocabulary, reading rule text for the rows, saving then
counting; and a segment's members: paged and sorted in SQL, exported as CSV with formulas neutralised."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from fastapi.testclient import TestClient
from tests.test_dashboard import _csrf, _login, _user

import segments_data
from boomerang.api.app import create_app
from boomerang.segments import members, membership, service, vocabulary

KYIV = {"attribute": "city", "op": "eq", "value": "Kyiv"}
EVERYONE = {"bucket": [0, 100]}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The segments' test shop with a viewer and a marketer, shared by the module's tests (they only read it,
    or write segments of their own names)."""
    from boomerang.bootstrap import open_workspace
    from boomerang.config import Settings

    home = tmp_path_factory.mktemp("builder") / "ws"
    ws = open_workspace(Settings(home=home))
    ids = segments_data.load(ws)
    for name, role in (("vera", "viewer"), ("mark", "marketer")):
        _user(ws, name, role)
    with ws.uow.session() as s:
        service.save(s, {"name": "everyone", "rule": EVERYONE}, now=ws.now())
        service.save(s, {"name": "kyiv", "title": "Kyiv", "rule": KYIV}, now=ws.now())
    membership.refresh(ws.segments)
    return ws, ids


def _client(ws, username: str) -> TestClient:
    client = TestClient(create_app(ws, background=False))
    assert _login(client, username).status_code == 303
    return client


def test_the_vocabulary_is_the_shops_own(shop):
    ws, _ = shop
    found = vocabulary.read(ws.log)
    events = {e["name"]: e for e in found["events"]}
    assert events["Product Viewed"]["count"] == 10 and events["Order Completed"]["count"] == 5
    viewed = {p["name"]: p for p in events["Product Viewed"]["properties"]}
    assert viewed["category"]["type"] == "string" and viewed["category"]["values"] == ["Coffee > Beans", "Coffee"]
    assert viewed["sku"]["values"] == ["C1"]
    revenue = {p["name"]: p for p in events["Order Completed"]["properties"]}["revenue"]
    assert revenue["type"] == "number"
    attributes = {a["name"]: a for a in found["attributes"]}
    assert attributes["tags"]["type"] == "list" and set(attributes["tags"]["values"]) == {"vip", "coffee"}
    assert attributes["age"]["type"] == "number"
    assert found["fields"]["city"] == ["Kyiv", "Lviv"]
    traits = {t["name"]: t for t in found["traits"]}
    assert traits["rfm_group"]["type"] == "string" and traits["p_alive"]["computed"] is False

    assert vocabulary.describe(['{"a": 1, "b": "=1+1"}', "not json", '{"a": 2.5, "c": {"nested": 1}}', "[1]"]) == [
        {"name": "a", "type": "number", "seen": 2, "values": ["1", "2.5"]},
        {"name": "b", "type": "string", "seen": 1, "values": ["=1+1"]},
    ]


def test_the_builder_page_carries_the_vocabulary_and_the_rows_rule(shop):
    ws, _ = shop
    mark = _client(ws, "mark")
    page = mark.get("/segments/kyiv/edit")
    assert page.status_code == 200 and 'src="/static/segment_builder.js"' in page.text
    data = json.loads(re.search(r'id="builder-vocabulary"[^>]*>(.*?)</script>', page.text, re.S).group(1))
    assert "Product Viewed" in [e["name"] for e in data["events"]] and "email" in data["channels"]
    assert [s["name"] for s in data["segments"]] == ["everyone", "kyiv"] and "within_last_days" in data["operators"][
        "date"
    ]
    initial = json.loads(re.search(r'id="builder-initial"[^>]*>(.*?)</script>', page.text, re.S).group(1))
    assert initial == KYIV
    as_json = mark.get("/segments/vocabulary.json")
    assert as_json.status_code == 200 and as_json.json()["fields"]["city"] == ["Kyiv", "Lviv"]
    vera = _client(ws, "vera")
    assert vera.get("/segments/vocabulary.json").status_code == 403


def test_rule_text_is_read_for_the_rows_or_refused_naming_the_field(shop):
    ws, _ = shop
    mark = _client(ws, "mark")
    token = _csrf(mark.get("/segments/new").text)
    read = mark.post(
        "/segments/parse", json={"rule": "event: Order Completed\nwithin_days: 30\n"}, headers={"X-CSRF-Token": token}
    )
    assert read.status_code == 200 and read.json() == {"rule": {"event": "Order Completed", "within_days": 30}}
    bad = mark.post(
        "/segments/parse",
        json={"rule": '{"trait": "shoe_size", "op": "eq", "value": 1}'},
        headers={"X-CSRF-Token": token},
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "rule.trait"
    assert (
        mark.post("/segments/parse", json={"rule": 5}, headers={"X-CSRF-Token": token}).json()["errors"][0]["field"]
        == "rule"
    )
    refused = mark.post("/segments/parse", json={"rule": "event: A"})
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "csrf_token"
    vera = _client(ws, "vera")
    vera_token = _csrf(vera.get("/segments").text)
    assert (
        vera.post("/segments/parse", json={"rule": "event: A"}, headers={"X-CSRF-Token": vera_token}).status_code == 403
    )


def test_members_are_paged_and_sorted_in_sql(shop):
    ws, ids = shop
    with ws.uow.session() as s:
        first = members.page(s, "everyone", sort="spend", direction="desc", per_page=2)
        assert first["total"] == 5 and first["pages"] == 3 and len(first["rows"]) == 2
        assert [r["customer_id"] for r in first["rows"]] == [ids["dan"], ids["ann"]]
        assert first["rows"][1]["orders"] == 3 and first["rows"][1]["spend"] == pytest.approx(150.0)
        last = members.page(s, "everyone", sort="spend", direction="desc", per_page=2, page=3)
        assert len(last["rows"]) == 1 and last["rows"][0]["orders"] == 0
        by_email = members.page(s, "everyone", sort="email", direction="asc")
        assert [r["email"] for r in by_email["rows"]][-2:] == ["ann@example.com", "bob@example.com"]
        by_last = members.page(s, "everyone", sort="last_order", direction="desc")
        assert [r["customer_id"] for r in by_last["rows"]][:3] == [ids["ann"], ids["dan"], ids["bob"]]
        assert by_last["rows"][-1]["last_order"] is None  # no order: last either way
        assert members.page(s, "everyone", sort="last_order", direction="asc")["rows"][-1]["last_order"] is None
        joined = members.page(s, "everyone")  # by default the latest joined first, with their orders
        assert {r["customer_id"]: r["orders"] for r in joined["rows"]}[ids["ann"]] == 3
        with pytest.raises(Exception) as bad:
            members.page(s, "everyone", sort="shoe_size", direction="up", page=0, per_page=1000)
        assert [e["field"] for e in bad.value.errors] == ["sort", "dir", "page", "per_page"]


def test_the_segment_page_pages_and_sorts_members(shop):
    ws, ids = shop
    vera = _client(ws, "vera")
    page = vera.get("/segments/everyone", params={"sort": "spend", "dir": "desc", "per_page": "2"})
    assert page.status_code == 200
    table = re.search(r'id="members-sample"(.*?)</table>', page.text, re.S).group(1)
    assert table.index(ids["dan"]) < table.index(ids["ann"]) and ids["bob"] not in table
    assert "page 1 of 3" in page.text and 'rel="next"' in page.text and 'aria-sort="descending"' in page.text
    assert "150.00" in table and 'href="/segments/everyone/members.csv"' in page.text
    assert 'href="/segments/everyone?sort=spend&amp;dir=asc&amp;per_page=2#members-card"' in table  # the other way
    assert 'href="/segments/everyone?sort=spend&amp;dir=desc&amp;page=2&amp;per_page=2#members-card"' in page.text
    for params, field in (({"sort": "shoe"}, "sort"), ({"page": "two"}, "page"), ({"dir": "sideways"}, "dir")):
        bad = vera.get("/segments/everyone", params=params)
        assert bad.status_code == 400, params
        assert f"<strong>{field}</strong>:" in re.search(
            r'id="members-errors">(.*?)</div>\s*</div>', bad.text, re.S
        ).group(1)
    assert vera.get("/segments/everyone", params={"page": "9"}).status_code == 400


def test_members_export_as_csv_with_formulas_neutralised(shop):
    ws, ids = shop
    with ws.uow.session() as s:  # a name a spreadsheet would run, and a phone that starts with +
        from boomerang.customers.models import Customer

        s.get(Customer, ids["ann"]).first_name = '=HYPERLINK("http://evil","x")'
        s.get(Customer, ids["bob"]).last_name = "@SUM(A1)"
    try:
        vera = _client(ws, "vera")
        done = vera.get("/segments/everyone/members.csv")
        assert done.status_code == 200 and done.headers["content-type"].startswith("text/csv")
        assert 'filename="segment-everyone-members.csv"' in done.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(done.text)))
        assert len(rows) == 5 and list(rows[0]) == list(members.COLUMNS)
        by_id = {r["customer_id"]: r for r in rows}
        assert by_id[ids["ann"]]["first_name"] == '\'=HYPERLINK("http://evil","x")'
        assert by_id[ids["bob"]]["last_name"] == "'@SUM(A1)" and by_id[ids["cat"]]["phone"] == "'+380501112233"
        assert by_id[ids["ann"]]["orders"] == "3" and by_id[ids["ann"]]["spend"] == "150.00"
        assert vera.get("/segments/nowhere/members.csv").status_code == 404
    finally:
        with ws.uow.session() as s:
            s.get(Customer, ids["ann"]).first_name = None
            s.get(Customer, ids["bob"]).last_name = None
    with ws.uow.session() as s:
        assert len(list(members.every(s, "everyone"))) == 5
    chunks = members.CHUNK
    members.CHUNK = 2  # the keyset pages through every member
    try:
        with ws.uow.session() as s:
            assert sorted(r["customer_id"] for r in members.every(s, "everyone")) == sorted(ids.values())
    finally:
        members.CHUNK = chunks


def test_an_unsaved_rule_is_explained_for_a_customer(shop):
    ws, ids = shop
    mark = _client(ws, "mark")
    token = _csrf(mark.get("/segments/new").text)
    headers = {"X-CSRF-Token": token}
    rule = json.dumps({"all": [KYIV, {"reachable": "email"}]})
    ann = mark.post("/segments/explain", json={"rule": rule, "customer": "ann@example.com"}, headers=headers).json()
    assert ann["member"] is True and ann["label"] == "ann@example.com" and ann["customer_id"] == ids["ann"]
    assert [(c["condition"], c["shown"], c["passed"]) for c in ann["rule"]["children"]][0] == (
        "city eq Kyiv",
        "Kyiv",
        True,
    )
    cat = mark.post("/segments/explain", json={"rule": rule, "customer": "cat"}, headers=headers).json()
    assert cat["member"] is False and [c["passed"] for c in cat["rule"]["children"]] == [True, False]
    for body, field in (
        ({"rule": rule, "customer": "nobody"}, "customer"),
        ({"rule": rule}, "customer"),
        ({"rule": '{"event": "A", "op": "zz"}', "customer": "ann"}, "rule.op"),
        ({"rule": rule, "customer": "ann", "as_of": "May"}, "as_of"),
    ):
        bad = mark.post("/segments/explain", json=body, headers=headers)
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == field, body
    assert mark.post("/segments/explain", json={"rule": rule, "customer": "ann"}).status_code == 403
    vera = _client(ws, "vera")
    vera_headers = {"X-CSRF-Token": _csrf(vera.get("/segments").text)}
    assert (
        vera.post("/segments/explain", json={"rule": rule, "customer": "ann"}, headers=vera_headers).status_code == 403
    )


def test_the_builder_opens_with_a_suggested_rule_name_and_title(shop):
    ws, _ = shop
    mark = _client(ws, "mark")
    page = mark.get("/segments/new", params={"name": "rfm_champions", "title": "Champions", "rule": json.dumps(KYIV)})
    assert page.status_code == 200 and 'value="rfm_champions"' in page.text and 'value="Champions"' in page.text
    initial = json.loads(re.search(r'id="builder-initial"[^>]*>(.*?)</script>', page.text, re.S).group(1))
    assert initial == KYIV and "&#34;Kyiv&#34;" in page.text.split('id="rule"')[1][:200]
    broken = mark.get("/segments/new", params={"rule": "{not a rule"})  # the text stays, the rows wait for it
    assert broken.status_code == 200 and "{not a rule" in broken.text
    assert re.search(r'id="builder-initial"[^>]*>null</script>', broken.text)
