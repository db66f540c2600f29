"""Events: Segment's HTTP tracking API: /v1/track, identify, page, screen, group, alias and batch.

The write key is the HTTP Basic user name (or `writeKey` in the body). An answer of 200 means
the events are checked and committed to the operational store's inbox: durable, even if the
process dies. Their effects on profiles, products and orders follow within a moment, when the
server's background step processes them (events.process), as with Segment's own pipeline.
"""

from __future__ import annotations

import gzip
import zlib

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import Unauthorized, basic_user, json_object
from boomerang.core.errors import BoomerangError, ValidationFailed
from boomerang.core.ids import new_id
from boomerang.events import ingest, schemas

router = APIRouter(tags=["tracking"])


class TooLarge(BoomerangError):
    status_code = 413


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is larger than {limit} bytes", field="body")
    body = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            body = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, limit + 1)
        except (zlib.error, gzip.BadGzipFile):
            raise ValidationFailed([{"field": "body", "reason": "not valid gzip"}]) from None
    if len(body) > limit:
        raise TooLarge(f"the body is larger than {limit} bytes", field="body")
    return body


def _accept(request: Request, kind: str, payload: dict) -> schemas.Accepted:
    """Check the key and every message, then store the lot in one transaction."""
    ws, limits = request.app.state.ws, request.app.state.ws.settings.ingest
    key = basic_user(request) or payload.get("writeKey")
    if request.app.state.keys.kind_of(key if isinstance(key, str) else None) is None:
        raise Unauthorized("a valid write key is required as the HTTP Basic user name", field="authorization")
    received = ws.now()
    if kind == "batch":
        items = payload.get("batch")
        if isinstance(items, list) and len(items) > limits.max_batch_events:
            raise ValidationFailed([{"field": "batch", "reason": f"more than {limits.max_batch_events} events"}])
        batch = schemas.parse_batch(payload)
        messages, prefix, sent_at, context = batch.batch, "batch", batch.sentAt, batch.context
    else:
        messages, prefix, sent_at, context = [schemas.parse_one(kind, {**payload, "type": kind})], "", None, None
    events = schemas.normalise(
        messages,
        received_at=received,
        limits=limits,
        new_id=lambda: new_id("msg"),
        prefix=prefix,
        sent_at=sent_at,
        batch_context=context,
    )
    ingest.check(events, prefix)
    with ws.uow.session() as session:
        result = ingest.accept(session, events, now=received, source="api")
    if result.accepted and request.app.state.pipeline is not None:
        request.app.state.pipeline.nudge()
    return schemas.Accepted(accepted=result.accepted, duplicates=result.duplicates)


def _endpoint(kind: str):
    async def endpoint(request: Request) -> schemas.Accepted:
        limits = request.app.state.ws.settings.ingest
        limit = limits.max_batch_bytes if kind == "batch" else limits.max_message_bytes
        payload = json_object(await _body(request, limit))
        return await run_in_threadpool(_accept, request, kind, payload)

    endpoint.__name__ = f"v1_{kind}"
    endpoint.__doc__ = f"Segment `{kind}` call."
    return endpoint


for _kind in ("track", "identify", "page", "screen", "group", "alias", "batch"):
    router.add_api_route(f"/v1/{_kind}", _endpoint(_kind), methods=["POST"])
router.add_api_route("/v1/import", _endpoint("batch"), methods=["POST"], include_in_schema=False)
