"""The OpenAPI document as the server behaves, and Swagger UI at /docs served from the package (no CDN).

FastAPI's generated spec is patched in one place: the tracking bodies the /v1 routes read by hand, the key
each operation takes, and errors as the server answers them (400 with each field and its reason, never
FastAPI's 422)."""

from __future__ import annotations

from importlib import resources
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import models_json_schema

from boomerang.events import schemas

ASSETS = "/docs-assets"  # Swagger UI's files, vendored by frontend/vendor.sh (the dashboard has /static)
REF = "#/components/schemas/{model}"


class FieldError(BaseModel):
    field: str | None = Field(description="the field at fault (a dotted path, `body`, `query`, a header), if any")
    reason: str


class Error(BaseModel):
    """Every refusal: what is wrong, field by field."""

    success: Literal[False] = False
    errors: list[FieldError]


Batch = create_model(
    "Batch",
    __base__=schemas.Envelope,
    __doc__="Messages (2,500 and 500 KB at most by default): a bad one is set aside with its reasons, the rest taken.",
    batch=list[schemas.Message],
)
TRACKING_BODIES = {**schemas.MODELS, "batch": Batch}
# what schemas._Message._someone checks, which pydantic's schema cannot say: every message but alias names someone
SOMEONE = {
    "anyOf": [{"required": [name], "properties": {name: {"type": "string"}}} for name in ("userId", "anonymousId")]
}
NOT_SET_UP = ("/v1/push/key", "/hooks/sms/twilio")  # 404 until web push (VAPID) or Twilio is set up
SECURITY_SCHEMES = {
    "writeKey": {
        "type": "http",
        "scheme": "basic",
        "description": "The write key as the user name and no password, as Segment's SDKs send it (or `writeKey` "
        "in the body). A secret key is taken too, as a trusted server-side sender.",
    },
    "secretKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A secret API key (`boomerang keys create --kind secret`); never in a browser.",
    },
}


def tracking_body(kind: str) -> dict:
    """`openapi_extra` of a /v1 route that reads its body itself: the message model it is checked against."""
    model = TRACKING_BODIES[kind].__name__
    return {
        "requestBody": {
            "required": True,
            "description": "JSON, optionally sent with `Content-Encoding: gzip`",
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
        }
    }


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }


def _security(method: str, path: str) -> list[dict]:
    if path.startswith("/api/"):
        return [{"secretKey": []}]
    if path.startswith("/v1/") and (method, path) != ("get", "/v1/push/key"):
        return [{"writeKey": []}]
    return []  # the public VAPID key; providers' hooks sign their bodies instead


def document(spec: dict) -> dict:
    """FastAPI's spec, patched in place to say what the server does."""
    components = spec.setdefault("components", {})
    models = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        models.pop(name, None)
    extra = [(model, "validation") for model in (*TRACKING_BODIES.values(), Error)]
    defs = models_json_schema(extra, ref_template=REF)[1]["$defs"]
    if clash := models.keys() & defs.keys():
        raise RuntimeError(f"OpenAPI components named twice: {sorted(clash)}")
    for kind, model in schemas.MODELS.items():
        if kind != "alias":
            defs[model.__name__].update(SOMEONE)
    models.update(defs)
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            operation["security"] = _security(method, path)
            responses = operation["responses"]
            responses.pop("422", None)
            responses.setdefault("400", _error("Invalid input: each field at fault, with the reason"))
            if operation["security"] or path.startswith("/hooks/"):
                responses.setdefault("401", _error("The key (or a provider's signature) is missing or wrong"))
            if "{" in path or (path.startswith("/api/") and "requestBody" in operation) or path in NOT_SET_UP:
                responses.setdefault("404", _error("Something named in the path or the body does not exist"))
            if "tracking" in operation.get("tags", ()) or path == "/hooks/email/events":
                responses.setdefault("413", _error("The body is too large"))
    return spec


def install(app: FastAPI) -> None:
    """/openapi.json as `document` says, and Swagger UI at /docs with its files from the package."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi
    assets = resources.files("boomerang.api") / "static" / "swagger"
    app.mount(ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")  # behind a proxy that serves us under a path
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
        )
