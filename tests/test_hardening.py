"""Inputs that used to answer 500 answer a 4xx naming the field, on SQLite and PostgreSQL (issue 14.6, 14.7)."""

from __future__ import annotations

import pytest

from api_helpers import Api


@pytest.fixture
def api(any_ws):
    return Api(any_ws)


def _fields(response) -> set[str]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    return {e["field"] for e in response.json()["errors"]}


@pytest.mark.parametrize("path", ["/customers", "/products", "/orders", "/messages", "/events/set-aside"])
def test_an_offset_past_any_integer_is_refused(api, path):
    assert _fields(api.api("GET", path, params={"offset": 9223372036854775808})) == {"offset"}


def test_nul_characters_are_refused_with_the_field(api):
    cases = [
        ({"userId": "a\x00b", "event": "X"}, "userId"),
        ({"userId": "a", "event": "X\x00"}, "event"),
        ({"userId": "a", "event": "X", "properties": {"sku": "S\x00"}}, "properties.sku"),
    ]
    for body, field in cases:
        assert _fields(api.track("track", body)) == {field}
    identify = api.track("identify", {"userId": "a", "traits": {"email": "a\x00@example.com"}})
    assert _fields(identify) == {"properties.email"} or _fields(identify) == {"traits.email"}
    assert _fields(api.api("PUT", "/products", json=[{"sku": "S\x00"}])) == {"[0].sku"}
    assert _fields(api.api("GET", "/customers", params={"q": "a\x00"})) == {"query"}
    assert api.events("SELECT count(*) FROM events") == [(0,)]


def test_numbers_too_large_and_nesting_too_deep_are_refused(api):
    huge = {"sku": "S", "stock_quantity": 2**70}
    assert _fields(api.api("PUT", "/products", json=[huge])) in ({"body"}, {"0.stock_quantity"})
    deep = "[" * 5000 + "]" * 5000
    answer = api.api("PUT", "/products", content=deep, headers={"Content-Type": "application/json"})
    assert 400 <= answer.status_code < 500
    assert _fields(
        api.api(
            "GET", "/journeys/nope/simulation", params={"from": "2024-01-01", "to": "2024-02-01", "step_hours": 1e16}
        )
    ) == {"step_hours"}


def _post_streamed(app, key: str, chunks: int) -> tuple[int, int]:
    """POST /v1/batch straight through ASGI, the body sent in 64 KB chunks without a length; (status, chunks
    the server asked for)."""
    import asyncio
    import base64

    asked, answer = [0], {}
    auth = b"Basic " + base64.b64encode(f"{key}:".encode())
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/batch",
        "raw_path": b"/v1/batch",
        "query_string": b"",
        "headers": [(b"authorization", auth), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive():
        asked[0] += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": asked[0] < chunks}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]

    asyncio.run(app(scope, receive, send))
    return answer["status"], asked[0]


def test_a_large_body_is_refused_as_it_streams_and_a_strangers_is_never_read(api):
    app = api.client.app
    status, asked = _post_streamed(app, api.write_key, chunks=2000)  # 128 MB offered
    assert status == 413 and asked < 20
    status, asked = _post_streamed(app, "bk_w_nobody", chunks=2000)
    assert status == 401 and asked <= 1


def test_a_segment_rule_too_large_to_evaluate_quickly_is_refused(api):
    """A 5,000-condition rule previewed for 54 s; now refused at once, naming the rule (issue 14)."""
    leaf = {"event": "Order Completed", "op": "gte", "value": 1}
    huge = {"name": "huge", "rule": {"any": [leaf] * 5000}}
    answer = api.api("POST", "/segments/preview", json=huge)
    assert answer.status_code == 400 and "more than 200 conditions" in answer.text
    deep: dict = leaf
    for _ in range(40):
        deep = {"not": deep}
    assert "nested deeper" in api.api("POST", "/segments", json={"name": "deep", "rule": deep}).text
