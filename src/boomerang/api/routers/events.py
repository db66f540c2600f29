"""Events: Segment's HTTP tracking API: /v1/track, identify, page, screen, group, alias and batch.

The write key is the HTTP Basic user name (or `writeKey` in the body). An answer of 200 means
the events are checked and committed to the operational store's inbox: durable, even if the
process dies. Their effects on profiles, products and orders follow within a moment, when the
server's background step processes them (events.process), as with Segment's own pipeline.
"""

from __future__ import annotations

import gzip
import zlib

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import Offset, SessionDep, Unauthorized, basic_user, json_object
from boomerang.api.openapi import tracking_body
from boomerang.core.errors import BoomerangError, ValidationFailed
from boomerang.core.ids import new_id
from boomerang.core.vocab import BROWSER, SERVER, VERIFIED
from boomerang.events import ingest, schemas, set_aside

router = APIRouter(tags=["tracking"])
admin = APIRouter(prefix="/events", tags=["events"])  # under /api, with the secret key
# The keys that may track, and the trust of what they send: the write key is public, it may add, not overwrite.
TRACKING_KEYS = {"write": BROWSER, "secret": SERVER}


class TooLarge(BoomerangError):
    status_code = 413


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is larger than {limit} bytes", field="body")
    chunks, size = [], 0
    async for chunk in request.stream():  # counted as it comes: a huge body is refused, never held
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is larger than {limit} bytes", field="body")
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            body = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, limit + 1)
        except (zlib.error, gzip.BadGzipFile):
            raise ValidationFailed([{"field": "body", "reason": "not valid gzip"}]) from None
    if len(body) > limit:
        raise TooLarge(f"the body is larger than {limit} bytes", field="body")
    return body


def _accept(request: Request, kind: str, payload: dict) -> schemas.Accepted:
    """Check the key and the message (each message of a batch), then store them in one transaction."""
    ws = request.app.state.ws
    key = basic_user(request) or payload.get("writeKey")
    kind_of_key = request.app.state.keys.kind_of(key if isinstance(key, str) else None)
    if kind_of_key not in TRACKING_KEYS:
        raise Unauthorized("a valid write key is required as the HTTP Basic user name", field="authorization")
    source = TRACKING_KEYS[kind_of_key]
    received = ws.now()
    if kind == "batch":
        return _accept_batch(request, ws, payload, source=source, received=received)
    message = schemas.parse_one(kind, {**payload, "type": kind})
    events = schemas.normalise([message], received_at=received, limits=ws.settings.ingest, new_id=lambda: new_id("msg"))
    ingest.check(events)
    if problems := _verify(request, events[0], source):
        raise ValidationFailed(problems)
    return _store(request, ws, events, [], source=source, received=received)


def _verify(request: Request, event: schemas.Event, source: str, where: str = "") -> list[dict]:
    """A browser's message whose user id the shop's server signed (identity verification) speaks for that
    customer (source `verified`); a signature that does not match is a problem. The secret key needs none."""
    if event.user_hash is None or source != BROWSER:
        return []
    if request.app.state.identities.verify(event.user_id, event.user_hash):
        event.source = VERIFIED
        return []
    field = f"{where}.integrations.Boomerang.user_hash".lstrip(".")
    return [{"field": field, "reason": "does not match the userId: sign it with a live identity key"}]


def _accept_batch(request: Request, ws, payload: dict, *, source: str, received) -> schemas.Accepted:
    """A well-formed batch is taken: each bad message is set aside with its reasons, its neighbours kept."""
    limits = ws.settings.ingest
    items = payload.get("batch")
    if isinstance(items, list) and len(items) > limits.max_batch_events:
        raise ValidationFailed([{"field": "batch", "reason": f"more than {limits.max_batch_events} events"}])
    envelope, messages, bad = schemas.read_batch(payload)
    indexed, late = schemas.normalise_each(
        messages,
        received_at=received,
        limits=limits,
        new_id=lambda: new_id("msg"),
        prefix="batch",
        sent_at=envelope.sentAt,
        batch_context=envelope.context,
    )
    bad |= late
    events = []
    for index, event in indexed:
        problems = ingest.problems(event, f"batch[{index}]") or _verify(request, event, source, f"batch[{index}]")
        if problems:
            bad[index] = problems
        else:
            events.append(event)
    return _store(request, ws, events, envelope.batch, source=source, received=received, bad=bad)


def _store(request: Request, ws, events, items, *, source: str, received, bad=None) -> schemas.Accepted:
    """The good events into the intake, then the set-aside messages (if any) into the store; the pipeline is woken."""
    result = ws.intake.put(events, now=received, source=source)
    aside = []
    if bad:
        with ws.uow.session() as session:
            aside = set_aside.record(session, items, bad, source=source, now=received)
    if result.accepted and request.app.state.pipeline is not None:
        request.app.state.pipeline.nudge()
    return schemas.Accepted(accepted=result.accepted, duplicates=result.duplicates, set_aside=aside or None)


def _endpoint(kind: str):
    async def endpoint(request: Request) -> schemas.Accepted:
        limits = request.app.state.ws.settings.ingest
        limit = limits.max_batch_bytes if kind == "batch" else limits.max_message_bytes
        key = basic_user(request)  # the key first, when the header has it: a stranger's body is never read
        if key is not None and await run_in_threadpool(request.app.state.keys.kind_of, key) not in TRACKING_KEYS:
            raise Unauthorized("a valid write key is required as the HTTP Basic user name", field="authorization")
        payload = json_object(await _body(request, limit))
        return await run_in_threadpool(_accept, request, kind, payload)

    endpoint.__name__ = f"v1_{kind}"
    endpoint.__doc__ = f"Segment `{kind}` call."
    return endpoint


for _kind in ("track", "identify", "page", "screen", "group", "alias", "batch"):
    router.add_api_route(
        f"/v1/{_kind}",
        _endpoint(_kind),
        methods=["POST"],
        response_model_exclude_none=True,
        openapi_extra=tracking_body(_kind),  # the body is read by hand (streamed, size-limited, gzip)
    )
router.add_api_route(
    "/v1/import", _endpoint("batch"), methods=["POST"], include_in_schema=False, response_model_exclude_none=True
)


@admin.get("/set-aside", response_model=schemas.SetAsidePage)
def set_aside_messages(session: SessionDep, limit: int = Query(50, ge=1, le=1000), offset: Offset = 0) -> dict:
    """The latest messages set aside from accepted batches, newest first, each with its problems."""
    items, total = set_aside.listing(session, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}
