"""The journey canvas's server side: live validation with each error's path, saving a new journey, editing one
(a new version; the canvas's layout no part of it), duplicating, the pickers' data, the confirmation before
activating, and roles and CSRF on every POST. The canvas in a browser: test_dashboard_journeys_browser.py."""

from __future__ import annotations

import json
import re

import pytest
from tests.test_dashboard import _csrf, _user

import segments_data
from boomerang.journeys import service
from boomerang.messaging import service as templates
from boomerang.segments.service import list_segments
from test_dashboard_journeys import VIP, _client, run_cart, save, set_status

FLOW = {
    "name": "nudge",
    "title": "Nudge",
    "trigger": {"event": "Product Viewed"},
    "start": "pause",
    "nodes": {
        "pause": {"type": "wait", "hours": 1, "next": "remind"},
        "remind": {"type": "send", "channel": "email", "template": "nudge_mail", "next": "done"},
        "done": {"type": "exit"},
    },
    "layout": {"@trigger": {"x": 40, "y": 20}, "pause": {"x": 40, "y": 140}},
}


@pytest.fixture
def shop(ws):
    """The segments' test shop (now is 2024-05-01 12:00), a viewer and a marketer."""
    ids = segments_data.load(ws)
    for name, role in (("vera", "viewer"), ("mark", "marketer")):
        _user(ws, name, role)
    return ws, ids


def segments_of(session) -> set[str]:
    return {g["name"] for g in list_segments(session)}


def _data(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="jc-data">(.*?)</script>', html, re.S).group(1))


def _post(client, url: str, definition, **extra):
    token = _csrf(client.get("/journeys").text)
    text = definition if isinstance(definition, str) else json.dumps(definition)
    return client.post(url, data={"csrf_token": token, "definition": text, **extra})


def _row(ws, name: str):
    with ws.uow.session() as s:
        row = service.get(s, name)
        return row.version, dict(row.definition), service.versions(s, row.id)


def test_validation_names_each_error_by_its_path(shop):
    ws, _ = shop
    vera = _client(ws, "vera")  # validating writes nothing: a viewer may
    broken = {**FLOW, "nodes": {**FLOW["nodes"], "remind": {**FLOW["nodes"]["remind"], "next": "nowhere"}}}
    answer = _post(vera, "/journeys/validate", broken).json()
    assert answer["valid"] is False
    assert {"field": "nodes.remind", "reason": "unknown node 'nowhere'"} in answer["errors"]
    wrong = _post(vera, "/journeys/validate", {**FLOW, "nodes": {**FLOW["nodes"], "pause": {"type": "wait"}}}).json()
    assert [e["field"] for e in wrong["errors"]] == ["nodes.pause"]
    fine = _post(vera, "/journeys/validate", "name: nudge\ntrigger: {manual: true}\nstart: e\nnodes: {e: {type: exit}}")
    assert fine.json() == {
        "valid": True,
        "errors": [],
        "warnings": [],
        "definition": {"name": "nudge", "trigger": {"manual": True}, "start": "e", "nodes": {"e": {"type": "exit"}}},
    }
    warned = _post(vera, "/journeys/validate", FLOW).json()  # the template is not written yet: saved all the same
    assert warned["valid"] and warned["warnings"][0]["field"] == "nodes.remind.template"
    unreadable = _post(vera, "/journeys/validate", "{nodes: [").json()
    assert unreadable["valid"] is False and unreadable["errors"][0]["field"] == "definition"
    segment = _post(vera, "/journeys/validate", {**FLOW, "trigger": {"segment": "ghosts"}}).json()
    assert segment["errors"] == [{"field": "trigger.segment", "reason": "segment 'ghosts' does not exist"}]
    assert vera.post("/journeys/validate", data={"definition": json.dumps(FLOW)}).status_code == 403  # no token


def test_a_new_journey_is_saved_whole_or_not_at_all(shop):
    ws, _ = shop
    mark = _client(ws, "mark")
    page = mark.get("/journeys/new")
    assert page.status_code == 200 and 'id="jc-canvas"' in page.text and 'src="/static/journey_editor.js"' in page.text
    data = _data(page.text)
    assert data["mode"] == "new" and data["can_edit"] and data["urls"]["save"] == "/journeys/new"
    assert "Product Viewed" in data["pickers"]["events"] and data["pickers"]["channels"][0] == "email"
    assert {"name": "abandoned_cart", "title": "Abandoned cart"} in data["pickers"]["library"]
    ready = _data(mark.get("/journeys/new?from=abandoned_cart").text)
    assert ready["definition"]["name"] == "abandoned_cart" and set(ready["layout"]) >= {
        "@trigger",
        "wait_order",
        "done",
    }
    assert mark.get("/journeys/new?from=nothing_like_it").status_code == 404
    from_segment = _data(mark.get("/journeys/new?segment=vip").text)  # "Start a journey" on a segment's page
    assert from_segment["definition"]["trigger"] == {"segment": "vip", "on": "entered"}

    bad = _post(mark, "/journeys/new", {**FLOW, "nodes": {**FLOW["nodes"], "remind": {"type": "send"}}})
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {
        "nodes.remind.channel",
        "nodes.remind.template",
    }
    assert _post(mark, "/journeys/new", "[1, 2]").json()["errors"][0]["field"] == "definition"
    with ws.uow.session() as s:
        assert service.list_journeys(s) == []

    saved = _post(mark, "/journeys/new", FLOW)
    assert saved.status_code == 200 and saved.json()["url"] == "/journeys/nudge"
    assert saved.json()["saved"]["status"] == "draft" and saved.json()["saved"]["version"] == 1
    version, stored, _ = _row(ws, "nudge")
    assert stored["layout"] == FLOW["layout"] and stored["nodes"]["remind"]["template"] == "nudge_mail"
    again = _post(mark, "/journeys/new", FLOW)
    assert again.status_code == 422 and again.json()["errors"] == [
        {"field": "name", "reason": "a journey named nudge already exists"}
    ]
    reserved = _post(mark, "/journeys/new", {**FLOW, "name": "new"})
    assert reserved.status_code == 422 and reserved.json()["errors"][0]["field"] == "name"


def test_editing_makes_a_version_and_moving_boxes_does_not(shop):
    ws, ids = shop
    mark = _client(ws, "mark")
    save(ws, FLOW)
    set_status(ws, "nudge", "active")
    page = mark.get("/journeys/nudge/edit")
    assert page.status_code == 200 and 'id="jc-live"' in page.text  # the live journey's rules, said
    data = _data(page.text)
    assert data["mode"] == "edit" and data["urls"]["save"] == "/journeys/nudge/edit" and data["journey"]["version"] == 1
    assert data["layout"]["pause"] == {"x": 40, "y": 140} and "remind" in data["layout"]  # the rest laid out

    moved = {**FLOW, "layout": {"pause": {"x": 300, "y": 200}}}
    answer = _post(mark, "/journeys/nudge/edit", moved, version="1").json()
    assert answer["saved"]["version"] == 1 and answer["saved"]["changed"] is False
    version, stored, versions = _row(ws, "nudge")
    assert version == 1 and stored["layout"] == {"pause": {"x": 300, "y": 200}} and len(versions) == 1

    longer = {**FLOW, "nodes": {**FLOW["nodes"], "pause": {"type": "wait", "hours": 2, "next": "remind"}}}
    longer.pop("layout")
    answer = _post(mark, "/journeys/nudge/edit", longer, version="1").json()
    assert answer["saved"]["version"] == 2 and answer["saved"]["status"] == "active"
    version, stored, versions = _row(ws, "nudge")
    assert stored["nodes"]["pause"]["hours"] == 2 and stored["layout"] == {"pause": {"x": 300, "y": 200}}  # kept
    with ws.uow.session() as s:
        assert service.version_definition(s, service.get(s, "nudge").id, 1)["nodes"]["pause"]["hours"] == 1

    stale = _post(mark, "/journeys/nudge/edit", longer, version="1")
    assert stale.status_code == 422 and stale.json()["errors"][0]["field"] == "version"
    renamed = _post(mark, "/journeys/nudge/edit", {**longer, "name": "other"}, version="2")
    assert renamed.status_code == 422 and renamed.json()["errors"][0]["field"] == "name"
    bad_version = _post(mark, "/journeys/nudge/edit", longer, version="two")
    assert bad_version.status_code == 422 and bad_version.json()["errors"][0]["field"] == "version"
    assert _post(mark, "/journeys/nowhere/edit", longer).status_code == 404
    assert _row(ws, "nudge")[0] == 2

    copy = mark.get("/journeys/nudge/duplicate")
    assert copy.status_code == 200
    copied = _data(copy.text)
    assert copied["mode"] == "new" and copied["definition"]["name"] == "nudge_copy"
    assert copied["definition"]["title"] == "Nudge (copy)" and copied["layout"]["pause"] == {"x": 300, "y": 200}
    assert mark.get("/journeys/nowhere/duplicate").status_code == 404


def test_viewers_see_the_canvas_and_change_nothing(shop):
    ws, _ = shop
    save(ws, FLOW)
    vera = _client(ws, "vera")
    page = vera.get("/journeys/nudge/edit")
    assert page.status_code == 200 and _data(page.text)["can_edit"] is False and 'id="jc-save"' not in page.text
    assert 'href="/journeys/new"' not in vera.get("/journeys").text
    for url in ("/journeys/new", "/journeys/nudge/duplicate", "/journeys/nudge/activate"):
        assert vera.get(url).status_code == 403
    for url in ("/journeys/new", "/journeys/nudge/edit"):
        assert _post(vera, url, FLOW).status_code == 403
    mark = _client(ws, "mark")
    for url in ("/journeys/new", "/journeys/nudge/edit"):
        for token in ({}, {"csrf_token": "forged"}):
            refused = mark.post(url, data={"definition": json.dumps(FLOW), **token})
            assert refused.status_code == 403 and "Form expired" in refused.text
    assert _row(ws, "nudge")[0] == 1


def test_the_confirmation_says_who_enters_what_goes_out_and_the_guards(shop):
    ws, _ = shop
    save(ws, FLOW)
    save(ws, VIP)
    mark = _client(ws, "mark")
    page = mark.get("/journeys/nudge/activate")
    assert page.status_code == 200
    # ann, bob and cat viewed Coffee this week (tests/segments_data.py)
    assert re.search(r'id="activate-estimate"><strong>3</strong>', page.text)
    assert "3 customers did Product Viewed in the last 7 days" in page.text and "estimate" in page.text
    assert "template <strong>nudge_mail</strong> on email" in page.text
    assert 'id="activate-sandbox"' in page.text and "email is the sandbox" in page.text
    assert 'id="activate-missing"' in page.text  # nudge_mail is not written
    assert "frequency caps: 3 per 7 days (all)" in page.text and "quiet hours: 21:00–09:00" in page.text
    with ws.uow.session() as s:  # nothing changed by looking
        assert service.get(s, "nudge").status == "draft"
        templates.save(s, {"name": "nudge_mail", "locales": {"en": {"subject": "Hi", "text": "Hi"}}}, now=ws.now())
    assert 'id="activate-missing"' not in mark.get("/journeys/nudge/activate").text
    manual = mark.get("/journeys/vip/activate").text
    assert "nobody by itself" in manual
    done = mark.post("/journeys/nudge/activate", data={"csrf_token": _csrf(page.text), "back": "journey"})
    assert done.status_code == 200 and 'id="journey-status">active<' in done.text
    assert mark.get("/journeys/nowhere/activate").status_code == 404


def test_event_properties_for_the_pickers(shop):
    ws, _ = shop
    vera = _client(ws, "vera")
    answer = vera.get("/journeys/new/event-properties", params={"event": "Product Viewed"})
    assert answer.status_code == 200 and "category" in answer.json()["properties"]
    unnamed = vera.get("/journeys/new/event-properties")
    assert unnamed.status_code == 400 and "event" in unnamed.text
    assert vera.get("/journeys/new/event-properties", params={"event": "Never Happened"}).json()["properties"] == []


def test_a_bad_layout_names_its_field(shop):
    ws, _ = shop
    mark = _client(ws, "mark")
    for layout in ({"a": {"x": "far"}}, {"a": {"x": 1, "y": 1e9}}, ["a"]):
        answer = _post(mark, "/journeys/validate", {**FLOW, "layout": layout}).json()
        assert answer["valid"] is False and answer["errors"][0]["field"].startswith("layout")


def test_a_ready_made_journey_brings_its_segment_along(shop):
    ws, _ = shop
    mark = _client(ws, "mark")
    raw = _data(mark.get("/journeys/new?from=browse_abandonment").text)["definition"]
    segment = raw["trigger"]["segment"]
    warned = _post(mark, "/journeys/validate", raw).json()
    assert (
        warned["valid"]
        and {"field": "trigger.segment", "reason": f"the ready-made segment {segment} is added when this is saved"}
        in warned["warnings"]
    )
    assert _post(mark, "/journeys/new", raw).status_code == 200
    with ws.uow.session() as s:
        assert segments_of(s) >= {segment} and service.get(s, "browse_abandonment").status == "draft"


def test_the_layout_is_no_part_of_a_version(ws):
    """Moving boxes rewrites the current version's positions; the engine reads the journey as before."""
    with ws.uow.session() as s:
        assert service.save(s, FLOW, now=ws.now())["version"] == 1
        moved = service.save(s, {**FLOW, "layout": {"done": {"x": 5, "y": 6}}}, now=ws.now())
        assert moved["version"] == 1 and moved["changed"] is False
        row = service.get(s, "nudge")
        assert service.version_definition(s, row.id, 1)["layout"] == {"done": {"x": 5, "y": 6}}
        assert service.definition_of(s, row.id, 1).nodes["pause"].next == "remind"
        plain = {k: v for k, v in FLOW.items() if k != "layout"}
        assert service.save(s, plain, now=ws.now())["changed"] is False  # saved without positions: kept
        assert service.get(s, "nudge").definition["layout"] == {"done": {"x": 5, "y": 6}}
        fewer = {**plain, "start": "done", "nodes": {"done": {"type": "exit"}}}
        assert service.save(s, fewer, now=ws.now())["version"] == 2
        assert service.get(s, "nudge").definition["layout"] == {"done": {"x": 5, "y": 6}}


def test_the_canvas_of_a_running_journey_counts_who_passed_and_who_is_there(shop):
    ws, ids = shop
    run_cart(ws, ids)  # bob and cat were reminded, bob ordered, cat went on through the split; ann waits
    data = _data(_client(ws, "vera").get("/journeys/cart/edit").text)
    counts = data["counts"]
    assert (counts["wait"]["passed"], counts["remind"]["passed"], counts["ab"]["passed"]) == (3, 2, 1)
    assert counts["wait"]["here"] == {"waiting": 1} and counts["remind"]["messages"] == {"queued": 2}
    assert data["journey"]["running"] == 1 and data["journey"]["sampled"] is None
    with ws.uow.session() as s:
        assert service.passed(s, "cart", limit=1) == ({"wait": 1}, 1)  # the latest only: ann's
