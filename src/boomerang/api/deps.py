"""Typed dependencies shared by the routers."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Annotated

import orjson
from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from boomerang.bootstrap import Workspace
from boomerang.core import storable
from boomerang.core.errors import BoomerangError, ValidationFailed


class Unauthorized(BoomerangError):
    status_code = 401


def workspace(request: Request) -> Workspace:
    return request.app.state.ws


def session(ws: Annotated[Workspace, Depends(workspace)]) -> Iterator[Session]:
    with ws.uow.session() as s:
        yield s


def reading(ws: Annotated[Workspace, Depends(workspace)]) -> Iterator[Session]:
    """A session for a route that only reads (UnitOfWork.reading): it neither waits for nor holds up a writer."""
    with ws.uow.reading() as s:
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
    """The /api routes take a secret key as a Bearer token (its id is kept as `request.state.key_id`)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else basic_user(request)
    found = request.app.state.keys.identify(key)
    if found is None or found[0] != "secret":
        raise Unauthorized("a valid secret API key is required (Authorization: Bearer <key>)", field="authorization")
    request.state.key_id = found[1]


def actor(request: Request) -> str:
    """Who is asking, as the audit log names them: the secret key's id."""
    return f"key:{request.state.key_id}"


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
ReadingDep = Annotated[Session, Depends(reading)]
ActorDep = Annotated[str, Depends(actor)]
# A page's start in a listing: bounded, so no number a client sends overflows a store's integer
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip")]


async def storable_input(request: Request) -> None:
    """A query or a JSON body the stores can keep (core.storable: no NUL, no integer beyond 64 bits, no
    nesting past the limit), refused with the place named before any route reads it."""
    if "%00" in str(request.url.query) or "%00" in request.url.path:
        raise ValidationFailed([{"field": "query", "reason": "contains a NUL character"}])
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:  # not JSON (or too deep to read): the route's own parsing says what is wrong
        return
    found = storable.problem(data, "")
    if found is not None:
        raise ValidationFailed([{"field": found[0] or "body", "reason": found[1]}])
