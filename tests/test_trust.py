"""Trust levels (issue 14.1, 14.9): the public write key adds what is not known, never overwrites catalog data
or a known customer's addresses and consents; the secret key may, and so may a browser whose user id the shop's
server signed (identity verification), for that customer only. No tracked link leads off the shop unless a
template's author wrote it there; no `javascript:` URL is stored. Emails and phones are checked and normalised;
a trait sent as null clears its field."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from api_helpers import Api, basic
from boomerang.auth.service import user_hash
from boomerang.customers.models import Consent, Customer, Identity
from boomerang.messaging.compose import Composer
from boomerang.messaging.models import Message
from messaging_data import NOW, add_customer, add_template, queue

EVIL = "https://evil.example.net/phish"


@pytest.fixture
def api(any_ws):
    from boomerang.core.clock import FixedClock

    any_ws.clock = FixedClock(NOW)
    return Api(any_ws)


def _product(api: Api, sku: str) -> dict:
    return api.api("GET", f"/products/{sku}").json()


def test_a_browser_cannot_poison_the_catalog(api):
    real = {"sku": "COF-0013", "name": "Ethiopia", "price": 14.0, "url": "https://shop.example.com/cof-13"}
    assert api.api("PUT", "/products", json=[real]).status_code == 200
    poisoned = {"sku": "COF-0013", "name": "FREE", "url": EVIL, "price": 0.01}
    assert api.track("track", {"userId": "u1", "event": "Product Viewed", "properties": poisoned}).status_code == 200
    assert {k: _product(api, "COF-0013")[k] for k in real} == real
    # what the catalog does not know yet, a browser may tell
    fresh = {"sku": "NEW-1", "name": "New", "price": 3}
    api.track("track", {"userId": "u1", "event": "Product Viewed", "properties": fresh})
    assert _product(api, "NEW-1")["name"] == "New"
    # the shop's own server may change it
    api.track("track", {"userId": "u1", "event": "Product Viewed", "properties": {**real, "price": 12}}, server=True)
    assert _product(api, "COF-0013")["price"] == 12


@pytest.mark.parametrize("field", ["url", "image_url"])
def test_no_javascript_urls_are_stored(api, field):
    bad = {"sku": "X", field: "javascript:alert(1)"}
    answer = api.track("track", {"userId": "u1", "event": "Product Viewed", "properties": bad})
    assert answer.status_code == 400 and field in answer.text
    refused = api.api("PUT", "/products", json=[bad])
    assert refused.status_code == 400 and field in refused.text


def test_a_browser_cannot_take_over_a_known_customer(api):
    traits = {"email": "ann@example.com", "phone": "+380501112233", "consents": {"email": True, "sms": False}}
    assert api.track("identify", {"userId": "ann", "traits": traits}, server=True).status_code == 200
    takeover = {"email": "evil@example.net", "phone": "+10000000000", "firstName": "Ann", "consents": {"sms": True}}
    api.track("identify", {"userId": "ann", "traits": {**takeover, "consents": {"sms": True, "telegram": True}}})
    with api.ws.uow.session() as s:
        ann = s.scalar(sa.select(Customer).where(Customer.external_id == "ann"))
        consents = {c.channel: (c.granted, c.source) for c in s.scalars(sa.select(Consent))}
    assert (ann.email, ann.phone, ann.first_name) == ("ann@example.com", "+380501112233", "Ann")
    # the refused SMS stands; a channel never asked may be granted from a signup form
    assert consents == {"email": (True, "server"), "sms": (False, "server"), "telegram": (True, "browser")}
    api.track("identify", {"userId": "ann", "traits": {"email": "ann@new.example.com"}}, server=True)
    with api.ws.uow.session() as s:
        assert s.scalar(sa.select(Customer.email).where(Customer.external_id == "ann")) == "ann@new.example.com"


def test_tracked_links_lead_only_to_the_shop_unless_the_author_wrote_them(ws):
    template = {
        "name": "links",
        "title": "Links",
        "locales": {
            "en": {
                "subject": "Hi",
                "text": "Look: {{ customer.attributes.site }} and https://partner.example.org/offer",
                "email": {
                    "html": '<a href="{{ customer.attributes.site }}">site</a>'
                    '<a href="https://partner.example.org/offer">partner</a>'
                    '<a href="{{ shop.url }}/sale">sale</a>'
                },
            }
        },
    }
    with ws.uow.session() as s:
        add_customer(s, "ann")
        s.get(Customer, "ann").attributes = {"site": EVIL}
        add_template(s, template)
        queue(s, "m1", "ann", template="links")
    with ws.uow.session() as s:
        message = s.scalars(sa.select(Message)).one()
        out = Composer(s, ws.links, ws.settings.messaging, now=NOW).compose(message, "email", "ann@example.com")
    hrefs = [u for u in out.html.split('"') if "/t/c/" in u] + [w for w in out.text.split() if "/t/c/" in w]
    api = Api(ws)
    leads = [api.client.get(urlsplit(h).path, follow_redirects=False).headers["location"] for h in hrefs]
    assert leads == [
        "https://shop.example.com",  # a profile attribute's URL: not the shop's, not the author's
        "https://partner.example.org/offer",  # written by the template's author
        "https://shop.example.com/sale",
        "https://shop.example.com",
        "https://partner.example.org/offer",
    ]


def _ann(api: Api) -> Customer:
    with api.ws.uow.session() as s:
        return s.scalar(sa.select(Customer).where(Customer.external_id == "ann"))


def _signed(key: str, user_id: str) -> dict:
    return {"integrations": {"Boomerang": {"user_hash": user_hash(key, user_id)}}}


def test_an_identify_signed_by_the_shops_server_speaks_for_the_customer(api):
    traits = {"email": "ann@example.com", "consents": {"sms": False}}
    api.track("identify", {"userId": "ann", "traits": traits}, server=True)
    created = api.api("POST", "/keys", json={"kind": "identity", "name": "site"})
    assert created.status_code == 201 and created.json()["key"].startswith("bk_i_")
    key = created.json()["key"]
    change = {"email": "Ann@New.example.com", "consents": {"sms": True}}
    answer = api.track("identify", {"userId": "ann", "traits": change, **_signed(key, "ann")})
    assert answer.status_code == 200, answer.text
    ann = _ann(api)
    with api.ws.uow.session() as s:
        assert (s.get(Consent, (ann.id, "sms")).granted, s.get(Consent, (ann.id, "sms")).source) == (True, "verified")
        emails = set(s.scalars(sa.select(Identity.value).where(Identity.kind == "email")))
    assert ann.email == "ann@new.example.com"
    assert emails == {"ann@new.example.com"}  # the replaced address no longer finds ann

    # a signature of another user id, or none, gives a browser no say over ann
    forged = api.track("identify", {"userId": "ann", "traits": {"email": "x@evil.example"}, **_signed(key, "bob")})
    assert forged.status_code == 400
    assert forged.json()["errors"][0]["field"] == "integrations.Boomerang.user_hash"
    batch = {
        "batch": [{"type": "identify", "userId": "ann", "traits": {"email": "x@evil.example"}, **_signed(key, "b")}]
    }
    assert api.track("batch", batch).json()["set_aside"][0]["errors"][0]["field"] == (
        "batch[0].integrations.Boomerang.user_hash"
    )
    assert _ann(api).email == "ann@new.example.com"

    # it vouches for the customer, not for the catalog
    api.api("PUT", "/products", json=[{"sku": "S1", "name": "Real", "price": 10}])
    viewed = {"userId": "ann", "event": "Product Viewed", "properties": {"sku": "S1", "price": 0.01}}
    assert api.track("track", {**viewed, **_signed(key, "ann")}).status_code == 200
    assert _product(api, "S1")["price"] == 10

    # an identity key is no write key
    refused = api.client.post("/v1/track", json=viewed, headers=basic(key))
    assert refused.status_code == 401


def test_a_trait_sent_as_null_clears_its_field(api):
    traits = {"email": "ann@example.com", "firstName": "Ann", "city": "Kyiv", "plan": "gold", "tier": 2}
    api.track("identify", {"userId": "ann", "traits": traits}, server=True)
    # the browser may clear a name or an attribute, never the address of a known customer
    api.track("identify", {"userId": "ann", "traits": {"firstName": None, "plan": None, "email": None, "city": ""}})
    ann = _ann(api)
    assert (ann.first_name, ann.city, ann.email, ann.attributes) == (None, "Kyiv", "ann@example.com", {"tier": 2})
    api.track("identify", {"userId": "ann", "traits": {"email": None}}, server=True)
    assert _ann(api).email is None
    found = api.api("GET", "/customers", params={"q": "ann@example.com"}).json()["items"]
    assert found == []  # the cleared address finds nobody any more


@pytest.mark.parametrize(
    ("traits", "field", "stored"),
    [
        ({"email": "not-an-email"}, "traits.email", None),
        ({"phone": "call me maybe"}, "traits.phone", None),
        ({"phone": "0501112233"}, "traits.phone", None),  # no country code and no country to read it by
        ({"email": " Ann@Example.COM "}, None, ("email", "ann@example.com")),
        ({"phone": "+1 (202) 555-0143"}, None, ("phone", "+12025550143")),
        ({"phone": "050 111 22 33", "address": {"country": "UA"}}, None, ("phone", "+380501112233")),
    ],
)
def test_emails_and_phones_are_checked_and_normalised(api, traits, field, stored):
    answer = api.track("identify", {"userId": "ann", "traits": traits}, server=True)
    if field:
        assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == field
        assert _ann(api) is None
        rest = api.api("POST", "/customers", json={"external_id": "ann", **traits})
        assert rest.status_code == 400 and rest.json()["errors"][0]["field"] == field.split(".")[1]
    else:
        assert answer.status_code == 200
        assert getattr(_ann(api), stored[0]) == stored[1]
