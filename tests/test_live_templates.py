"""A template that a live journey or campaign sends is saved only once it renders for the shop's real customers
(the sample customer of the preview is not enough); a template nothing live sends may be saved as a draft."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from tests.test_dashboard import _csrf, _login, _user

import segments_data
from api_helpers import Api
from boomerang.api.app import create_app
from boomerang.core.errors import ValidationFailed
from boomerang.journeys import live_templates
from boomerang.journeys import service as journeys
from boomerang.messaging import campaigns
from boomerang.messaging import service as templates
from boomerang.segments import service as segments
from cli_helpers import run_cli

GOOD = {"name": "promo", "locales": {"en": {"subject": "Hi {{ first_name }}", "text": "Our new teas."}}}
# renders for the preview's sample (Olena) and most customers, breaks for Dan: a runaway number
BROKEN = {
    "name": "promo",
    "locales": {
        "en": {"subject": "Hi", "text": "{% if customer.first_name == 'Dan' %}{{ 10 ** 10000000 }}{% endif %}Teas."}
    },
}
FLOW = {
    "name": "teas",
    "trigger": {"manual": True},
    "start": "send",
    "nodes": {
        "send": {"type": "send", "channel": "email", "template": "promo", "next": "end"},
        "end": {"type": "exit"},
    },
}


@pytest.fixture
def shop(ws):
    segments_data.load(ws)
    with ws.uow.session() as s:
        templates.save(s, GOOD, now=ws.now())
        journeys.save(s, FLOW, now=ws.now())
    return ws


def _save(ws, definition):
    with ws.uow.session() as s:
        return live_templates.save(s, ws.settings.messaging, definition, now=ws.now())


def test_a_draft_journey_lets_a_broken_template_be_saved_an_active_one_does_not(shop):
    assert _save(shop, BROKEN).version == 2  # nothing live sends it yet: a draft being written
    _save(shop, GOOD)
    with shop.uow.session() as s:
        journeys.set_status(s, "teas", "active", now=shop.now())
        assert live_templates.live_users(s, "promo") == ["journey teas (active)"]
    with pytest.raises(ValidationFailed) as refused:
        _save(shop, BROKEN)
    [error] = [e for e in refused.value.errors if e["field"] == "locales.email"]
    assert (
        "does not render for customer" in error["reason"]
        and "journey teas (active) sends this template" in error["reason"]
    )
    with shop.uow.session() as s:
        kept = templates.get(s, "promo")
        assert kept.version == 3 and kept.variants == GOOD["locales"]  # nothing of the broken one was stored
    assert _save(shop, {**GOOD, "locales": {"en": {"subject": "Hello", "text": "Teas."}}}).version == 4


def test_a_scheduled_campaign_guards_its_template_and_the_api_and_cli_say_why(shop):
    with shop.uow.session() as s:
        segments.save(s, {"name": "all", "rule": {"bucket": [0, 100]}}, now=shop.now())
        campaigns.save(s, {"name": "spring", "segment": "all", "template": "promo"}, now=shop.now())
        campaigns.schedule(s, "spring", now=shop.now())
        assert live_templates.live_users(s, "promo") == ["campaign spring (scheduled)"]
    answer = Api(shop).api("POST", "/templates", json=BROKEN)
    assert answer.status_code == 400 and "campaign spring (scheduled)" in json.dumps(answer.json())
    path = shop.settings.home / "broken.json"
    path.write_text(json.dumps(BROKEN))
    cli = run_cli(shop.settings.home, "templates", "create", str(path))
    assert cli.returncode != 0 and "does not render for customer" in cli.stderr + cli.stdout


def test_a_template_live_journeys_send_is_not_deleted(shop):
    with shop.uow.session() as s:
        journeys.set_status(s, "teas", "active", now=shop.now())
    answer = Api(shop).api("DELETE", "/templates/promo")
    assert answer.status_code == 409 and "journey teas (active) sends promo" in json.dumps(answer.json())
    with shop.uow.session() as s:
        journeys.set_status(s, "teas", "paused", now=shop.now())
    assert Api(shop).api("DELETE", "/templates/promo").status_code == 200


def test_the_dashboard_says_why_a_template_is_not_deleted(shop):
    with shop.uow.session() as s:
        journeys.set_status(s, "teas", "active", now=shop.now())
    client = TestClient(create_app(shop, background=False))
    _user(shop, "mia", "marketer")
    _login(client, "mia")
    page = client.get("/templates/promo").text
    assert 'data-confirm="Delete this template' in page
    refused = client.post("/templates/promo/delete", data={"csrf_token": _csrf(page)})
    assert refused.status_code == 409 and "journey teas (active) sends promo" in refused.text
    with shop.uow.session() as s:
        assert templates.get(s, "promo").name == "promo"
