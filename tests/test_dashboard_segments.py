"""The dashboard's segment pages: list and refresh, the builder and its live preview, explain, the matrix."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from tests.test_dashboard import XSS, _csrf, _login, _user

import segments_data
from boomerang.api.app import create_app
from boomerang.segments import service

COFFEE = {
    "all": [
        {
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "starts_with", "value": "Coffee"}],
            "within_days": 7,
            "op": "gte",
            "value": 3,
        },
        {"not": {"event": "Order Completed", "within_days": 7}},
    ]
}


@pytest.fixture
def shop(ws):
    """The segments' test shop (now is 2024-05-01 12:00), a viewer, a marketer and an admin."""
    ids = segments_data.load(ws)
    for name, role in (("vera", "viewer"), ("mark", "marketer"), ("root", "admin")):
        _user(ws, name, role)
    return ws, ids


def _save(ws, raw: dict) -> None:
    with ws.uow.session() as s:
        service.save(s, raw, now=ws.now())


def _listed(ws) -> list[dict]:
    with ws.uow.session() as s:
        return service.list_segments(s)


def _client(ws, username: str) -> TestClient:
    client = TestClient(create_app(ws, background=False))
    assert _login(client, username).status_code == 303
    return client


def _token(client: TestClient, path: str = "/segments") -> str:
    return _csrf(client.get(path).text)


def _preview(client: TestClient, token: str | None, rule: str, **extra):
    headers = {"X-CSRF-Token": token} if token else {}
    return client.post("/segments/preview", json={"rule": rule, **extra}, headers=headers)


def test_the_list_shows_installed_segments_and_their_sizes_after_a_refresh(shop):
    ws, _ = shop
    mark = _client(ws, "mark")
    empty = mark.get("/segments")
    assert empty.status_code == 200 and "Install ready-made segments" in empty.text
    assert 'href="/segments"' in empty.text and ">Segments</a>" in empty.text  # in the nav
    installed = mark.post("/segments/library", data={"csrf_token": _csrf(empty.text)}, follow_redirects=False)
    assert installed.status_code == 303 and installed.headers["location"] == "/segments?installed=10"
    listing = mark.get("/segments?installed=10").text
    assert "10 ready-made segments installed" in listing and "Install ready-made segments" not in listing
    assert listing.count('<tr data-segment="') == 10 and listing.count("never computed") == 10

    refreshed = mark.post("/segments/refresh", data={"csrf_token": _csrf(listing)})
    assert refreshed.status_code == 200
    # the segments on traits nobody computed say so, naming the segment; the others are counted
    assert "segment churned: not refreshed" in refreshed.text and "lifecycle traits" in refreshed.text
    rows = dict(re.findall(r'<tr data-segment="(\w+)">(.*?)</tr>', refreshed.text, re.S))
    sizes = {name: re.search(r'<td class="num size">(.*?)</td>', row, re.S).group(1) for name, row in rows.items()}
    assert sizes["category_viewers"] == "2" and sizes["cart_abandoners"] == "1" and sizes["birthday_this_week"] == "1"
    assert sizes["new_customers"] == "0" and "never computed" in sizes["churned"]

    one = mark.post("/segments/sleeping/refresh", data={"csrf_token": _csrf(listing)})
    assert one.status_code == 200 and 'id="refreshed"' in one.text
    trend = json.loads(re.search(r'id="trend-sleeping-data">(.*?)</script>', one.text, re.S).group(1))
    assert trend["spark"] is True and trend["datasets"][0]["data"] == [1, 1]
    with ws.uow.session() as s:
        assert [h["size"] for h in service.history(s, "sleeping")] == [1, 1]


def test_saving_a_bad_rule_shows_the_field_and_stores_nothing(shop):
    ws, ids = shop
    mark = _client(ws, "mark")
    form = mark.get("/segments/new")
    assert form.status_code == 200 and "starts_with" in form.text and "Product Viewed" in form.text  # the example
    assert "rfm_group" in form.text and "within_last_days" in form.text  # the reference of fields and operators
    token = _csrf(form.text)
    cases = [
        ({"name": "recent", "rule": '{"event": "Order Completed", "within_days": 0}'}, "rule.within_days"),
        ({"name": "recent", "rule": '{"attribute": "shoe_size", "op": "eq", "value": 1}'}, "rule.attribute"),
        ({"name": "recent", "rule": '{"event": "Order Completed",'}, "rule"),  # cut short: not JSON or YAML
        ({"name": "recent", "rule": ""}, "rule"),
        ({"name": "Bad Name", "rule": '{"event": "Order Completed"}'}, "name"),
    ]
    for data, field in cases:
        bad = mark.post("/segments/new", data={"csrf_token": token, "title": XSS, **data})
        assert bad.status_code == 400, data
        shown = re.search(r'id="form-errors">(.*?)</div>\s*</div>', bad.text, re.S).group(1)
        assert f"<strong>{field}</strong>:" in shown, (field, shown)
        assert XSS not in bad.text and "&lt;script&gt;" in bad.text  # what was typed comes back, escaped
    assert "not JSON or YAML" in mark.post("/segments/new", data={"csrf_token": token, **cases[2][0]}).text
    assert _listed(ws) == []

    yaml_rule = "event: Order Completed\nbetween: [2024-02-01, 2024-02-29]\n"  # YAML, with bare dates
    saved = mark.post(
        "/segments/new",
        data={"csrf_token": token, "name": "feb_buyers", "title": "February", "rule": yaml_rule},
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/segments/feb_buyers"
    stored = _listed(ws)[0]
    assert stored["rule"]["between"] == ["2024-02-01", "2024-02-29"] and stored["version"] == 1
    again = mark.post("/segments/new", data={"csrf_token": token, "name": "feb_buyers", "rule": yaml_rule})
    assert again.status_code == 400 and "already exists" in again.text

    edit = mark.get("/segments/feb_buyers/edit")
    assert edit.status_code == 200 and "2024-02-29" in edit.text and "readonly" in edit.text
    bad_edit = mark.post("/segments/feb_buyers/edit", data={"csrf_token": token, "rule": '{"event": "A", "op": "zz"}'})
    assert bad_edit.status_code == 400 and "<strong>rule.op</strong>" in bad_edit.text
    twice = '{"event": "Order Completed", "op": "gte", "value": 2}'
    changed = mark.post(
        "/segments/feb_buyers/edit",
        follow_redirects=False,
        data={"csrf_token": token, "name": "ignored", "title": "Feb", "rule": twice},
    )
    assert changed.headers["location"] == "/segments/feb_buyers"
    assert [(s["name"], s["version"], s["title"]) for s in _listed(ws)] == [("feb_buyers", 2, "Feb")]
    assert mark.get("/segments/nowhere/edit").status_code == 404


def test_the_preview_endpoint_gives_size_and_sample_or_the_field_errors(shop):
    ws, ids = shop
    mark = _client(ws, "mark")
    token = _token(mark, "/segments/new")
    found = _preview(mark, token, json.dumps({"attribute": "city", "op": "eq", "value": "Kyiv"}))
    assert found.status_code == 200 and found.headers["content-type"] == "application/json"
    body = found.json()
    assert body["size"] == 2 and sorted(body["sample"]) == sorted([ids["ann"], ids["cat"]])
    assert body["customers"] == 5 and body["share"] == 0.4
    assert _listed(ws) == []  # a preview saves nothing

    past = _preview(mark, token, "event: Order Completed\nwithin_days: 30\n", as_of="2024-02-15").json()
    assert past["sample"] == [ids["bob"]] and past["as_of"].startswith("2024-02-16")

    bad = _preview(mark, token, json.dumps({"event": "Order Completed", "within_days": 0}))
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "rule.within_days"
    assert _preview(mark, token, "{[").json()["errors"][0]["field"] == "rule"
    assert _preview(mark, token, '{"event": "A"}', as_of="May").json()["errors"][0]["field"] == "as_of"
    unknown = _preview(mark, token, '{"segment": "nowhere"}')
    assert unknown.status_code in (400, 404) and unknown.json()["errors"]
    no_rule = mark.post("/segments/preview", content=b"not json", headers={"X-CSRF-Token": token})
    assert no_rule.status_code == 400 and no_rule.json()["errors"][0]["field"] == "rule"

    refused = _preview(mark, None, '{"event": "A"}')
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "csrf_token"
    assert _preview(mark, "forged", '{"event": "A"}').status_code == 403
    vera = _client(ws, "vera")
    assert _preview(vera, _token(vera), '{"event": "A"}').status_code == 403


def test_refresh_and_the_builder_need_a_marketer(shop):
    ws, _ = shop
    _save(ws, {"name": "kyiv", "title": "Kyiv", "rule": {"attribute": "city", "op": "eq", "value": "Kyiv"}})
    vera = _client(ws, "vera")
    listing = vera.get("/segments")
    assert listing.status_code == 200 and "Kyiv" in listing.text
    assert "/segments/kyiv/refresh" not in listing.text and "New segment" not in listing.text
    token = _csrf(listing.text)
    assert vera.post("/segments/kyiv/refresh", data={"csrf_token": token}).status_code == 403
    assert vera.post("/segments/refresh", data={"csrf_token": token}).status_code == 403
    assert vera.post("/segments/library", data={"csrf_token": token}).status_code == 403
    assert vera.get("/segments/new").status_code == 403 and vera.get("/segments/kyiv/edit").status_code == 403
    assert vera.post("/segments/new", data={"csrf_token": token, "name": "x", "rule": "event: A"}).status_code == 403
    assert _listed(ws)[0]["size"] is None and len(_listed(ws)) == 1

    for who in ("mark", "root"):
        client = _client(ws, who)
        page = client.get("/segments/kyiv")
        assert "/segments/kyiv/refresh" in page.text
        done = client.post("/segments/kyiv/refresh", data={"csrf_token": _csrf(page.text), "back": "segment"})
        assert done.status_code == 200 and "Refreshed: 2 members" in done.text
    assert client.post("/segments/nowhere/refresh", data={"csrf_token": _csrf(page.text)}).status_code == 404


def test_the_segment_page_explains_a_customer(shop):
    ws, ids = shop
    _save(ws, {"name": "coffee_no_buy", "title": "Coffee, no order", "rule": COFFEE})
    mark = _client(ws, "mark")
    mark.post("/segments/coffee_no_buy/refresh", data={"csrf_token": _token(mark)})
    page = mark.get("/segments/coffee_no_buy")
    assert page.status_code == 200 and 'id="size-chart"' in page.text
    assert re.search(r'id="members">2<', page.text)
    for act in ("/campaigns/new?segment=coffee_no_buy", "/journeys/new?segment=coffee_no_buy"):
        assert f'href="{act}"' in page.text  # send them a campaign, start a journey for them
    assert f'href="/customers/{ids["ann"]}"' in page.text and f'href="/customers/{ids["cat"]}"' in page.text
    assert "&#34;starts_with&#34;" in page.text or "&quot;starts_with&quot;" in page.text  # the definition, as text

    cat = mark.get("/segments/coffee_no_buy", params={"customer": ids["cat"]})
    tree = re.search(r'id="explain-tree">(.*?)</ul>\s*</div>', cat.text, re.S).group(1)
    assert "is a member" in cat.text and "in the last 7 days" in tree
    assert "value seen: <code>4</code>" in tree and "value seen: <code>0</code>" in tree
    assert tree.count('class="explain-node pass"') == 3 and tree.count('class="explain-node fail"') == 1  # not's child

    bob = mark.get("/segments/coffee_no_buy", params={"customer": "bob"})  # by external id
    assert "is not a member" in bob.text and "value seen: <code>2</code>" in bob.text
    past = mark.get("/segments/coffee_no_buy", params={"customer": "ann@example.com", "as_of": "2024-01-01"})
    assert "is not a member as of 2024-01-02" in past.text

    _save(
        ws,
        {
            "name": "vip",
            "rule": {
                "any": [
                    {"attribute": "attributes.tags", "op": "contains", "value": "vip", "type": "list"},
                    {"reachable": "email"},
                ]
            },
        },
    )
    vip = mark.get("/segments/vip", params={"customer": "ann"}).text
    assert "value seen: <code>[&#34;vip&#34;, &#34;coffee&#34;]</code>" in vip and "value seen: <code>yes</code>" in vip

    nobody = mark.get("/segments/coffee_no_buy", params={"customer": XSS})
    assert nobody.status_code == 400 and "customer: no customer" in nobody.text and XSS not in nobody.text
    bad_day = mark.get("/segments/coffee_no_buy", params={"customer": "bob", "as_of": "yesterday"})
    assert bad_day.status_code == 400 and "as_of: must be a date" in bad_day.text
    assert mark.get("/segments/nowhere").status_code == 404

    profile = mark.get(f"/customers/{ids['cat']}").text  # the customer's page links to explain
    row = re.search(r'id="customer-segments">(.*?)</table>', profile, re.S).group(1)
    assert "member since 2024-05-01 12:00" in row
    assert f'href="/segments/coffee_no_buy?customer={ids["cat"]}#explain"' in row
    assert "not a member" in mark.get(f"/customers/{ids['dan']}").text


def test_the_matrix_lists_rows_with_their_flags(shop, monkeypatch):
    ws, _ = shop
    _save(ws, {"name": "kyiv", "title": XSS, "rule": {"attribute": "city", "op": "eq", "value": "Kyiv"}})
    _save(ws, {"name": "lviv", "rule": {"attribute": "city", "op": "eq", "value": "Lviv"}})
    vera = _client(ws, "vera")
    vera_token = _token(vera)
    mark = _client(ws, "mark")
    mark.post("/segments/kyiv/refresh", data={"csrf_token": _token(mark)})
    from boomerang.journeys import matrix

    usages = matrix.journey_usages
    extra = matrix.Usage("kyiv", "journey", "welcome", "first_purchase", ("email",))
    monkeypatch.setattr(matrix, "journey_usages", lambda session: [*usages(session), extra])
    page = vera.get("/segments/matrix")
    assert page.status_code == 200 and XSS not in page.text and "&lt;script&gt;" in page.text
    rows = {segment: cls for cls, segment in re.findall(r'<tr class="(\w*)" data-segment="(\w+)">', page.text)}
    assert rows == {"kyiv": "", "lviv": "flagged"}
    lviv = page.text[page.text.index('data-segment="lviv"') :]
    assert "nobody speaks to this segment" in lviv and "never computed" in lviv
    assert "journey:welcome" in page.text and 'id="holes">1<' in page.text
    assert vera.post("/segments/refresh", data={"csrf_token": vera_token}).status_code == 403


def test_posts_without_the_csrf_token_are_refused(shop):
    ws, _ = shop
    _save(ws, {"name": "kyiv", "rule": {"attribute": "city", "op": "eq", "value": "Kyiv"}})
    mark = _client(ws, "mark")
    for path, data in [
        ("/segments/new", {"name": "x", "rule": "event: A"}),
        ("/segments/library", {}),
        ("/segments/refresh", {}),
        ("/segments/kyiv/refresh", {}),
        ("/segments/kyiv/edit", {"rule": "event: B"}),
        ("/segments/new", {"name": "y", "rule": "event: A", "csrf_token": "forged"}),
    ]:
        refused = mark.post(path, data=data)
        assert refused.status_code == 403 and "Form expired" in refused.text, path
    assert [(s["name"], s["version"], s["size"]) for s in _listed(ws)] == [("kyiv", 1, None)]
    anonymous = TestClient(mark.app)
    assert anonymous.get("/segments", follow_redirects=False).headers["location"] == "/login?next=/segments"
    assert anonymous.post("/segments/preview", json={"rule": "event: A"}, follow_redirects=False).status_code == 303


def test_saving_counts_the_members_and_every_post_redirects_with_what_happened(shop):
    ws, _ = shop
    mark = _client(ws, "mark")
    token = _token(mark, "/segments/new")
    preview = _preview(mark, token, json.dumps({"attribute": "city", "op": "eq", "value": "Kyiv"})).json()
    saved = mark.post(
        "/segments/new",
        data={
            "csrf_token": token,
            "name": "kyiv",
            "title": "Kyiv",
            "rule": '{"attribute": "city", "op": "eq", "value": "Kyiv"}',
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/segments/kyiv"
    page = mark.get("/segments/kyiv")  # the count the preview gave, at once: not "0 members, never refreshed"
    assert re.search(r'id="members">2<', page.text) and preview["size"] == 2
    assert "Its members are counted: 2" in page.text and "never refreshed" not in page.text
    assert _listed(ws)[0]["size"] == 2
    assert 'id="saved"' not in mark.get("/segments/kyiv").text  # the notice is shown once

    edited = mark.post(
        "/segments/kyiv/edit", data={"csrf_token": token, "rule": "attribute: city\nop: eq\nvalue: Lviv\n"}
    )
    assert (
        edited.url.path == "/segments/kyiv"
        and "Saved as version 2" in edited.text
        and re.search(r'id="members">1<', edited.text)
    )

    uncounted = mark.post(  # a rule on traits nobody computed is saved, and says why it has no count yet
        "/segments/new",
        data={"csrf_token": token, "name": "champions", "rule": "trait: rfm_group\nop: eq\nvalue: Champions\n"},
    )
    assert uncounted.url.path == "/segments/champions" and "could not be counted yet" in uncounted.text
    assert "segment champions: not refreshed" in uncounted.text and "never refreshed" in uncounted.text

    listing = mark.get("/segments")
    done = mark.post("/segments/refresh", data={"csrf_token": _csrf(listing.text)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/segments"
    shown = mark.get("/segments").text
    assert "ready-made segments installed" not in shown and "Refreshed 1 segment:" in shown
    assert "segment champions: not refreshed" in shown
    assert 'id="refreshed"' not in mark.get("/segments").text

    one = mark.post("/segments/kyiv/refresh", data={"csrf_token": token, "back": "segment"}, follow_redirects=False)
    assert one.status_code == 303 and one.headers["location"] == "/segments/kyiv"
    assert 'id="refreshed"' not in mark.get("/segments").text  # the notice is for the page it was sent to
    assert "Refreshed: 1 members (+0, −0)" in mark.get("/segments/kyiv").text
    back = mark.post("/segments/kyiv/refresh", data={"csrf_token": token}, follow_redirects=False)
    assert back.headers["location"] == "/segments"
