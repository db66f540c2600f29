"""The customer's own view of their points (issue 15): read with their signed preference-centre token, for the shop's
pages; on the preference centre itself; refused for any other token."""

from __future__ import annotations

from boomerang.customers import service as customers
from test_loyalty_liability import shop  # noqa: F401 - the fixture


def test_the_customer_reads_their_points_with_their_own_token(shop):  # noqa: F811
    answer = shop.api("GET", "/loyalty/customers/ann/token")  # by the shop's own user id
    assert answer.status_code == 200
    token, url = answer.json()["token"], answer.json()["url"]
    assert url.endswith(f"/v1/loyalty/{token}")
    mine = shop.client.get(f"/v1/loyalty/{token}")  # no key: the token is the credential
    assert mine.status_code == 200 and mine.headers["content-type"].startswith("application/json")
    body = mine.json()
    assert (body["unit"], body["balance"], body["pending"], body["held"]) == ("points", 20, 15, 0)
    moves = [(m["kind"], m["spendable"], m["pending"], m["order_id"]) for m in body["movements"]]
    assert moves == [("hold", -30, 0, "o-2"), ("adjust", 50, 0, None), ("earn", 0, 15, "o-1")]

    with shop.ws.uow.session() as s:
        cid = customers.lookup(s, "ann").id
    page = shop.client.get(shop.ws.links.preferences(cid).removeprefix(shop.ws.settings.public_url))
    assert page.status_code == 200 and 'id="points"' in page.text and "<strong>20</strong> to spend" in page.text


def test_other_tokens_open_nothing(shop):  # noqa: F811
    with shop.ws.uow.session() as s:
        cid = customers.lookup(s, "ann").id
    inbox_token = shop.ws.links.inbox_token(cid)  # signed for another purpose
    for token in (inbox_token, "nonsense", shop.ws.links.preferences_token(cid) + "x"):
        refused = shop.client.get(f"/v1/loyalty/{token}")
        assert refused.status_code == 401 and refused.json()["errors"][0]["field"] == "token"
    assert shop.api("GET", "/loyalty/customers/nobody/token").status_code == 404
