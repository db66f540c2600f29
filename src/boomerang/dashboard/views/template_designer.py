"""The email designer: a template's email made of blocks (messaging.email_design), previewed through the
template preview (POST /templates/preview), sent as a test to an address, saved as the template's definition
(the design made into HTML on save); and restoring an earlier version of a template."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.channels.base import ChannelUnavailable, Outbound
from boomerang.core.errors import BoomerangError, NotFound, ValidationFailed
from boomerang.core.ids import new_id
from boomerang.customers import addresses, search
from boomerang.dashboard.auth import csrf_matches
from boomerang.dashboard.views.common import (
    PREVIEW_CSP,
    BoardDep,
    Marketer,
    Viewer,
    checked_form,
    json_answer,
    missing,
    redirect,
    render,
    session_of,
)
from boomerang.journeys import live_templates
from boomerang.messaging import delivery, email_design, service
from boomerang.messaging.preferences import TOPICS

router = APIRouter()
MAX_DEFINITION = 200_000  # characters of the definition the designer posts
STARTER = [
    email_design.defaults("heading"),
    email_design.defaults("text"),
    email_design.defaults("button"),
    email_design.defaults("footer"),
]


def _new_definition() -> dict[str, Any]:
    return {
        "name": "",
        "title": "",
        "topic": "offers",
        "default_locale": "en",
        "locales": {"en": {"subject": "News from {{ shop.name }}", "email": {"design": STARTER}}},
    }


def parse(text: Any, field: str = "definition") -> dict[str, Any]:
    """The definition the designer posts (JSON); ValidationFailed naming `field`."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed([{"field": field, "reason": "the design did not arrive: reload the page"}])
    if len(text) > MAX_DEFINITION:
        raise ValidationFailed([{"field": field, "reason": f"at most {MAX_DEFINITION:,} characters"}])
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationFailed([{"field": field, "reason": f"not JSON: {exc}"}]) from None
    if not isinstance(data, dict):
        raise ValidationFailed([{"field": field, "reason": "must be an object"}])
    return data


def _designer(
    request: Request,
    user,
    board,
    *,
    editing: str | None,
    definition: dict[str, Any],
    customer: str = "",
    status_code: int = 200,
    **context,
) -> Response:
    version = None
    if editing is not None:
        with board.ws.uow.session() as s:
            version = service.get(s, editing).version
    palette = {kind: email_design.defaults(kind) for kind in email_design.BLOCKS}
    settings = {  # lists: the page's JSON has its keys sorted, the blocks and settings keep their order
        kind: [[key, spec[0], *spec[2:]] for key, spec in specs.items()] for kind, specs in email_design.BLOCKS.items()
    }
    state = {
        "order": list(email_design.BLOCKS),
        "definition": definition,
        "editing": editing,
        "palette": palette,
        "settings": settings,
        "networks": email_design.NETWORKS,
        "topics": TOPICS,
    }
    response = render(
        request,
        "template_designer.html",
        user=user,
        editing=editing,
        version=version,
        state=state,
        customer=customer,
        status_code=status_code,
        **context,
    )
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    return response


def _save(board, definition: dict[str, Any], *, editing: str | None) -> str:
    name = definition.get("name")
    with board.ws.uow.session() as s:
        if editing is not None:
            service.get(s, editing)  # NotFound when it was deleted meanwhile
            if name != editing:
                reason = f"this is {editing}: to save a copy under another name, make a new template"
                raise ValidationFailed([{"field": "name", "reason": reason}])
        elif isinstance(name, str):
            try:
                service.get(s, name)
            except NotFound:
                pass
            else:
                raise ValidationFailed(
                    [{"field": "name", "reason": f"a template named {name} already exists: edit it instead"}]
                )
        return live_templates.save(s, board.ws.settings.messaging, definition, now=board.ws.now()).name


@router.get("/templates/new/design")
def new_design(request: Request, user: Marketer, board: BoardDep) -> Response:
    return _designer(request, user, board, editing=None, definition=_new_definition())


@router.post("/templates/new/design")
async def create_design(request: Request, user: Marketer, board: BoardDep) -> Response:
    form = await checked_form(request)
    return await _post(request, user, board, form, editing=None)


@router.get("/templates/{name}/design")
def design_page(
    request: Request, name: str, user: Viewer, board: BoardDep, customer: str = "", saved: str = ""
) -> Response:
    with board.ws.uow.session() as s:
        try:
            found = service.as_dict(service.get(s, name))
        except NotFound:
            return missing(request, user, "template", name)
    definition = {k: found[k] for k in ("name", "title", "topic", "default_locale", "locales")}
    return _designer(request, user, board, editing=name, definition=definition, customer=customer, saved=bool(saved))


@router.post("/templates/{name}/design")
async def update_design(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    form = await checked_form(request)
    return await _post(request, user, board, form, editing=name)


async def _post(request: Request, user, board, form, *, editing: str | None) -> Response:
    """Save the posted design; on a problem, the designer again with what was posted and the errors."""
    text, customer = form.get("definition"), str(form.get("customer") or "").strip()
    definition: dict[str, Any] | None = None
    try:
        definition = parse(text)
        name = await run_in_threadpool(_save, board, definition, editing=editing)
    except BoomerangError as exc:
        if isinstance(exc, NotFound) and exc.field == "template" and editing is not None:
            return missing(request, user, "template", editing)
        shown = definition or _new_definition()
        if editing is not None and definition is None:  # nothing readable came: the saved one, with the error
            with board.ws.uow.session() as s:
                found = service.as_dict(service.get(s, editing))
            shown = {k: found[k] for k in ("name", "title", "topic", "default_locale", "locales")}
        status_code, errors = exc.status_code, exc.errors
        return await run_in_threadpool(
            lambda: _designer(
                request,
                user,
                board,
                editing=editing,
                definition=shown,
                customer=customer,
                status_code=status_code,
                errors=errors,
            )
        )
    query = urlencode({"saved": 1, **({"customer": customer} if customer else {})})
    return redirect(f"/templates/{quote(name, safe='')}/design?{query}")


# -- a test to an address ------------------------------------------------------------------------------


def send_test(board, definition: dict[str, Any], *, customer: str, to: str) -> dict[str, Any]:
    """The definition's email rendered for the customer (a sample one when none is named) and sent to `to` by
    the email channel as it is set up (the sandbox records it when no provider is), marked as a test."""
    address = addresses.email(to.strip(), "to")
    key = f"test:{new_id('msg')}"
    with board.ws.uow.session() as s:
        customer_id = search.resolve(s, customer, field="customer").id if customer.strip() else None
        shown = delivery.preview(
            s,
            board.ws.settings.messaging,
            definition,
            customer_id=customer_id,
            channels=["email"],
            now=board.ws.now(),
            recommend=board.ws.recommend_in_messages,
        )
        email = shown["channels"]["email"]
        if "error" in email:
            raise ValidationFailed([{"field": "design", "reason": email["error"]}])
        outbound = Outbound(
            key=key,
            message_id=0,
            customer_id=customer_id or "sample",
            channel="email",
            to=address,
            text=email["text"] or "",
            subject=f"[Test] {email['subject'] or ''}".strip(),
            html=email["html"],
            locale=shown["locale"],
            data={"template": shown["template"]},
        )
        try:
            adapter = board.ws.channels.get(s, "email")
        except ChannelUnavailable as exc:
            raise ValidationFailed([{"field": "channel", "reason": str(exc)}]) from None
        if adapter.in_store:
            result = board.ws.dispatcher.send_one(adapter, outbound, session=s)
    if not adapter.in_store:  # the network send happens outside the store's transaction
        result = board.ws.dispatcher.send_one(adapter, outbound)
    return {"key": key, "to": address, "status": result.status, "reason": result.error}


@router.post("/templates/designer/test")
async def test_json(request: Request, user: Marketer, board: BoardDep) -> Response:
    """Send the design being edited to an address (JSON; the CSRF token in X-CSRF-Token, as the preview)."""
    if not csrf_matches(session_of(request), request.headers.get("x-csrf-token")):
        return json_answer({"errors": [{"field": "csrf_token", "reason": "missing or stale: reload the page"}]}, 403)
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("to"), str):
        reason = 'send {"definition": {...}, "customer": "", "to": "you@example.com"}'
        return json_answer({"errors": [{"field": "to", "reason": reason}]}, 400)
    try:
        definition = parse(body.get("definition"))
        result = await run_in_threadpool(
            lambda: send_test(board, definition, customer=str(body.get("customer") or ""), to=body["to"])
        )
    except BoomerangError as exc:
        return json_answer({"errors": exc.errors}, exc.status_code)
    return json_answer(result, 200)


# -- versions ------------------------------------------------------------------------------------------


@router.post("/templates/{name}/versions/{version}/restore")
async def restore(request: Request, name: str, version: str, user: Marketer, board: BoardDep) -> Response:
    """Make an earlier version the current one again: saved as a new version, checked as any save is."""
    await checked_form(request)

    def restoring() -> None:
        with board.ws.uow.session() as s:
            service.get(s, name)
            old = service.version_definition(s, name, int(version) if version.isdigit() else version)
            live_templates.save(s, board.ws.settings.messaging, old, now=board.ws.now())

    try:
        await run_in_threadpool(restoring)
    except NotFound as exc:
        if exc.field == "template":
            return missing(request, user, "template", name)
        return render(request, "error.html", user=user, status_code=404, title="No such version", message=exc.message)
    except BoomerangError as exc:
        reasons = "; ".join(f"{e['field']}: {e['reason']}" for e in exc.errors)
        return render(
            request,
            "error.html",
            user=user,
            status_code=exc.status_code,
            title="This version cannot be restored",
            message=f"Version {version} of {name} does not pass today's checks: {reasons}",
        )
    return redirect(f"/templates/{quote(name, safe='')}?saved=1#versions")
