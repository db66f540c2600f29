"""The email designer's pages: who may see and save, CSRF, bad input answered 4xx naming the field, the design
saved as the template's definition (the text view shows it), a test sent to an address through the email
channel (the sandbox records it), and restoring a version."""

from __future__ import annotations

import html
import json
import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.test_dashboard import XSS, _csrf, _login, _user

from boomerang.api.app import create_app
from boomerang.channels.models import FakeChannelLog
from boomerang.core.clock import naive_utc
from boomerang.customers.models import Customer
from boomerang.messaging import service

DESIGN = [
    {"type": "heading", "text": "Hi {{ first_name }}!"},
    {"type": "button", "label": "Shop", "url": "{{ shop.url }}"},
    {"type": "footer"},
]


def _definition(name="designed", design=None):
    return {
        "name": name,
        "title": "Designed",
        "topic": "offers",
        "default_locale": "en",
        "locales": {"en": {"subject": "Hi {{ first_name }}", "email": {"design": design or DESIGN}}},
    }


@pytest.fixture
def people(ws):
    for name, role in (("vera", "viewer"), ("mark", "marketer")):
        _user(ws, name, role)
    with ws.uow.session() as s:
        at = naive_utc(ws.now())
        s.add(Customer(id="c_xss", first_name=XSS, email="x@example.com", created_at=at, updated_at=at))
    return ws


def _client(ws, username: str) -> TestClient:
    client = TestClient(create_app(ws, background=False))
    assert _login(client, username).status_code == 303
    return client


def _save(client, path, token, definition):
    text = definition if isinstance(definition, str) else json.dumps(definition)
    return client.post(path, data={"definition": text, "csrf_token": token}, follow_redirects=False)


def test_marketers_design_save_and_the_text_view_shows_it(people):
    ws = people
    mark = _client(ws, "mark")
    page = mark.get("/templates/new/design")
    assert page.status_code == 200 and 'id="palette"' in page.text
    assert "'unsafe-inline'" in page.headers["content-security-policy"].split("style-src")[1].split(";")[0]
    token = _csrf(page.text)
    made = _save(mark, "/templates/new/design", token, _definition())
    assert made.status_code == 303 and made.headers["location"].startswith("/templates/designed/design?saved=1")
    with ws.uow.session() as s:
        email = service.get(s, "designed").variants["en"]["email"]
    assert email["design"][0]["text"] == "Hi {{ first_name }}!" and "{{ links.unsubscribe }}" in email["html"]
    text_view = mark.get("/templates/designed")
    assert "design:" in text_view.text and "/templates/designed/design" in text_view.text
    again = mark.get("/templates/designed/design")
    state = json.loads(re.search(r'id="designer-state">(.*?)</script>', again.text, re.S).group(1))
    assert state["definition"]["locales"]["en"]["email"]["design"][1]["label"] == "Shop"
    # the text editor still saves (a hand edit of the design's text is made into HTML again)
    yaml_text = re.search(r'<textarea name="definition"[^>]*>(.*?)</textarea>', text_view.text, re.S).group(1)

    edited = html.unescape(yaml_text).replace("text: Hi {{ first_name }}!", "text: Hello {{ first_name }}!")
    saved = mark.post(
        "/templates/designed", data={"definition": edited, "csrf_token": _csrf(text_view.text)}, follow_redirects=False
    )
    assert saved.status_code == 303
    with ws.uow.session() as s:
        assert "Hello {{ first_name }}!" in service.get(s, "designed").variants["en"]["email"]["html"]


def test_viewers_look_and_cannot_save_or_send(people):
    ws = people
    with ws.uow.session() as s:
        service.save(s, {**_definition(), "title": XSS}, now=ws.now())
    vera = _client(ws, "vera")
    page = vera.get("/templates/designed/design")
    assert page.status_code == 200 and 'id="palette"' not in page.text and 'id="design-form"' not in page.text
    assert XSS not in page.text and "\\u003cscript\\u003e" in page.text  # the state's JSON cannot close its tag
    token = _csrf(vera.get("/templates").text) if 'name="csrf_token"' in vera.get("/templates").text else "x"
    assert _save(vera, "/templates/designed/design", token, _definition()).status_code == 403
    assert vera.get("/templates/new/design").status_code == 403
    sent = vera.post("/templates/designer/test", json={"definition": _definition(), "to": "v@example.com"})
    assert sent.status_code == 403


def test_csrf_and_bad_input_are_4xx_naming_the_field(people):
    ws = people
    mark = _client(ws, "mark")
    token = _csrf(mark.get("/templates/new/design").text)
    assert _save(mark, "/templates/new/design", "forged", _definition()).status_code == 403
    bad = _save(mark, "/templates/new/design", token, _definition(design=[{"type": "button", "url": "javascript:x"}]))
    assert bad.status_code == 400 and "locales.en.email.design[0].url" in bad.text
    assert "javascript:x" in bad.text  # what was posted comes back to be fixed (escaped, as data)
    assert _save(mark, "/templates/new/design", token, "{not json").status_code == 400
    assert "definition" in _save(mark, "/templates/new/design", token, "[1]").text
    nameless = _save(mark, "/templates/new/design", token, _definition(name="Bad Name"))
    assert nameless.status_code == 400 and "<strong>name</strong>" in nameless.text
    with ws.uow.session() as s:
        service.save(s, _definition(), now=ws.now())
    assert _save(mark, "/templates/new/design", token, _definition()).status_code == 400  # exists already
    renamed = _save(mark, "/templates/designed/design", token, _definition(name="other"))
    assert renamed.status_code == 400 and "<strong>name</strong>" in renamed.text
    assert _save(mark, "/templates/gone/design", token, _definition(name="gone")).status_code == 404
    assert mark.get("/templates/gone/design").status_code == 404


def test_a_test_goes_to_the_address_through_the_email_channel(people):
    ws = people
    mark = _client(ws, "mark")
    token = _csrf(mark.get("/templates/new/design").text)

    def send(body, headers=None):
        return mark.post(
            "/templates/designer/test", json=body, headers={"X-CSRF-Token": token} if headers is None else headers
        )

    sent = send({"definition": _definition(), "customer": "c_xss", "to": "Me@Example.com"})
    assert sent.status_code == 200 and sent.json()["status"] == "sent" and sent.json()["to"] == "me@example.com"
    with ws.uow.session() as s:
        [row] = s.scalars(sa.select(FakeChannelLog)).all()
    assert row.address == "me@example.com" and row.channel == "email" and row.message_key == sent.json()["key"]
    assert send({"definition": _definition(), "to": "nope"}).json()["errors"][0]["field"] == "to"
    assert send({"definition": _definition(), "to": "a@example.com", "customer": "cus_nobody"}).status_code == 404
    broken = send({"definition": _definition(design=[{"type": "image", "src": "javascript:x"}]), "to": "a@example.com"})
    assert broken.status_code == 400 and broken.json()["errors"][0]["field"] == "locales.en.email.design[0].src"
    assert send({"definition": _definition(), "to": "a@example.com"}, headers={}).status_code == 403
    assert send({"to": 1}).status_code == 400


def test_restoring_a_version_makes_a_new_one_equal_to_it(people):
    ws = people
    with ws.uow.session() as s:
        service.save(s, _definition(), now=ws.now())
        service.save(s, _definition(design=[{"type": "text", "text": "Second"}]), now=ws.now())
    mark = _client(ws, "mark")
    page = mark.get("/templates/designed")
    assert 'id="versions"' in page.text and 'data-version="1"' in page.text and "Restore this version" in page.text
    token = _csrf(page.text)
    done = mark.post("/templates/designed/versions/1/restore", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    with ws.uow.session() as s:
        row = service.get(s, "designed")
        assert row.version == 3 and row.variants["en"]["email"]["design"][0]["text"] == "Hi {{ first_name }}!"
        assert [v["version"] for v in service.versions(s, "designed")] == [3, 2, 1]
    assert mark.post("/templates/designed/versions/9/restore", data={"csrf_token": token}).status_code == 404
    assert mark.post("/templates/designed/versions/x/restore", data={"csrf_token": token}).status_code == 404
    assert mark.post("/templates/designed/versions/1/restore", data={"csrf_token": "forged"}).status_code == 403
    vera = _client(ws, "vera")
    assert "Restore this version" not in vera.get("/templates/designed").text
    assert vera.post("/templates/designed/versions/1/restore", data={"csrf_token": token}).status_code == 403
