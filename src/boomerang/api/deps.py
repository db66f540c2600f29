"""Typed dependencies shared by the routers."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Annotated

import orjson
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from boomerang.bootstrap import Workspace
from boomerang.core.errors import BoomerangError, ValidationFailed


class Unauthorized(BoomerangError):
    status_code = 401


def workspace(request: Request) -> Workspace:
    return request.app.state.ws


def session(ws: Annotated[Workspace, Depends(workspace)]) -> Iterator[Session]:
    with ws.uow.session() as s:
        yield s


def basic_user(request: Request) -> str | None:
    """The user name of HTTP Basic auth: where Segment's SDKs put the write key."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value, validate=True).decode().partition(":")[0] or None
    except (ValueError, UnicodeDecodeError):
        return None


def require_secret(request: Request) -> None:
    """The /api routes take a secret key as a Bearer token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else basic_user(request)
    if request.app.state.keys.kind_of(key) != "secret":
        raise Unauthorized("a valid secret API key is required (Authorization: Bearer <key>)", field="authorization")


def json_object(body: bytes) -> dict:
    """A request body that must be one JSON object; ValidationFailed naming `body` otherwise."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed([{"field": "body", "reason": f"not valid JSON: {exc}"}]) from None
    if not isinstance(payload, dict):
        raise ValidationFailed([{"field": "body", "reason": "must be a JSON object"}])
    return payload


WorkspaceDep = Annotated[Workspace, Depends(workspace)]
SessionDep = Annotated[Session, Depends(session)]
