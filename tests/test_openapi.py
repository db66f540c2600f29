"""The OpenAPI spec says what the server does (bodies, keys, errors); /docs works offline (issue 14)."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from api_helpers import Api, basic

FRONTEND = Path(__file__).resolve().parents[1] / "frontend"
MESSAGES = {
    "track": "Track",
    "identify": "Identify",
    "page": "Page",
    "screen": "Screen",
    "group": "Group",
    "alias": "Alias",
    "batch": "Batch",
}


@pytest.fixture
def shop(ws) -> Api:
    return Api(ws)


@pytest.fixture
def spec(shop) -> dict:
    response = shop.client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for operation in item.values():
            yield path, operation


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def test_every_tracking_route_documents_its_message(spec):
    schemas = spec["components"]["schemas"]
    for kind, model in MESSAGES.items():
        body = spec["paths"][f"/v1/{kind}"]["post"]["requestBody"]
        assert body["required"] is True and "gzip" in body["description"]
        assert body["content"]["application/json"]["schema"] == _ref(model)
        assert schemas[model]["type"] == "object"
    assert schemas["Track"]["required"] == ["event"]
    assert [option["required"] for option in schemas["Track"]["anyOf"]] == [["userId"], ["anonymousId"]]
    assert set(schemas["Alias"]["required"]) == {"userId", "previousId"} and "anyOf" not in schemas["Alias"]
    items = schemas["Batch"]["properties"]["batch"]["items"]
    assert items["oneOf"] == [_ref(model) for model in MESSAGES.values() if model != "Batch"]
    assert spec["paths"]["/v1/track"]["post"]["responses"]["200"]["content"]["application/json"]["schema"] == _ref(
        "Accepted"
    )


def test_each_operation_names_the_key_it_takes(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["writeKey"]["type"] == "http" and schemes["writeKey"]["scheme"] == "basic"
    assert schemes["secretKey"]["type"] == "http" and schemes["secretKey"]["scheme"] == "bearer"
    for path, operation in _operations(spec):
        if path.startswith("/api/"):
            assert operation["security"] == [{"secretKey": []}], path
        elif path.startswith("/v1/") and path != "/v1/push/key":
            assert operation["security"] == [{"writeKey": []}], path
        else:
            assert operation["security"] == [], path
        if operation["security"]:
            assert operation["responses"]["401"]["content"]["application/json"]["schema"] == _ref("Error")
    for kind in MESSAGES:
        assert "413" in spec["paths"][f"/v1/{kind}"]["post"]["responses"]
    assert "404" in spec["paths"]["/api/customers/{customer_id}"]["get"]["responses"]
    assert "404" in spec["paths"]["/api/send/test"]["post"]["responses"]  # the template it names may not exist


def test_errors_are_documented_as_answered(spec, shop):
    assert '"422"' not in json.dumps(spec) and "HTTPValidationError" not in spec["components"]["schemas"]
    error = spec["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"success", "errors"} and error["properties"]["success"]["const"] is False
    assert set(spec["components"]["schemas"]["FieldError"]["properties"]) == {"field", "reason"}
    for path, operation in _operations(spec):
        assert operation["responses"]["400"]["content"]["application/json"]["schema"] == _ref("Error"), path
    # and the server does answer so, on /v1 and under /api
    refused = [
        shop.client.post("/v1/track", json={"userId": "u1"}, headers=basic(shop.write_key)),
        shop.api("GET", "/customers", params={"limit": "many"}),
    ]
    for response in refused:
        assert response.status_code == 400
        body = response.json()
        assert body["success"] is False and body["errors"]
        assert all(set(problem) == {"field", "reason"} for problem in body["errors"])


def test_docs_load_nothing_from_another_host(shop):
    page = shop.client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
    assert len(urls) == 3 and all(url.startswith("/docs-assets/") for url in urls), urls
    assert not re.search(r"https?://", page.text)
    assert "url: '/openapi.json'" in page.text
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in urls:
        asset = shop.client.get(url)
        assert asset.status_code == 200 and asset.content
        assert kinds[Path(url).suffix] in asset.headers["content-type"], url
    assert shop.client.get("/redoc").status_code == 404


def test_vendored_files_are_the_pinned_npm_releases():
    pinned = json.loads((FRONTEND / "package.json").read_text())["dependencies"]
    locked = json.loads((FRONTEND / "package-lock.json").read_text())["packages"]
    for name, version in pinned.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} must be pinned exactly"
        assert locked[f"node_modules/{name}"]["version"] == version
    swagger = resources.files("boomerang.api") / "static" / "swagger"
    assert f'PACKAGE_VERSION:"{pinned["swagger-ui-dist"]}"' in (swagger / "swagger-ui-bundle.js").read_text()
    assert "Apache License" in (swagger / "LICENSE").read_text()
    dashboard = resources.files("boomerang.dashboard") / "static"
    assert f"Chart.js v{pinned['chart.js']}\n" in (dashboard / "chart.umd.js").read_text()[:200]
    assert "MIT" in (dashboard / "chart.js.LICENSE.md").read_text()
