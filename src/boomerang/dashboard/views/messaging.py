"""Messaging: the templates with their editor and live preview per channel, and the delivery log."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

import yaml
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.channels import sms_text
from boomerang.channels.config import PROVIDERS
from boomerang.core.documents import read
from boomerang.core.errors import BoomerangError, NotFound, ValidationFailed
from boomerang.customers import search
from boomerang.dashboard.auth import csrf_matches
from boomerang.dashboard.views import template_designer
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
from boomerang.messaging import delivery, service, templates
from boomerang.messaging.preferences import TOPICS

router = APIRouter()
router.include_router(template_designer.router)  # the email designer and version restores, beside the text editor
MAX_DEFINITION = 200_000  # characters of a template's text
PAGE = 50  # deliveries a page
PICK = 8  # customers offered when a customer filter matches several
EXAMPLE = """\
name: spring_sale
title: Spring sale
topic: offers
default_locale: en
locales:
  en:
    subject: "{{ loyalty.discount_percent }}% off, {{ first_name or 'friend' }}"
    text: "Spring sale at {{ shop.name }}: {{ loyalty.discount_percent }}% off with {{ loyalty.promo_code }}."
    url: "{{ shop.url }}"
    buttons: [{label: "Shop now", url: "{{ shop.url }}"}]
    email:
      html: |
        <h1 style="font-size:22px">Hi {{ first_name }}!</h1>
        <p>Take {{ loyalty.discount_percent }}% off with the code <b>{{ loyalty.promo_code }}</b>.</p>
        <p><a href="{{ shop.url }}">Shop now</a> · <a href="{{ links.unsubscribe }}">Unsubscribe</a></p>
    sms:
      text: "{{ shop.name }}: {{ loyalty.discount_percent }}% off with {{ loyalty.promo_code }} {{ shop.url }}"
"""
REFERENCE = {
    "topics": TOPICS,
    "common": templates.COMMON,
    "channels": templates.CHANNEL_FIELDS,
    "data": [*delivery.SAMPLE, "shop", "links"],
}


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line text as block literals, so an HTML body reads as it was written."""


_Dumper.add_representer(
    str,
    lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None),
)


def as_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10_000)


def parse_text(text: str, field: str = "definition") -> Any:
    """A definition from an editor's textarea, YAML or JSON; a problem is a ValidationFailed naming `field`."""
    if not text.strip():
        raise ValidationFailed([{"field": field, "reason": "write the definition in YAML or JSON"}])
    if len(text) > MAX_DEFINITION:
        raise ValidationFailed([{"field": field, "reason": f"at most {MAX_DEFINITION:,} characters"}])
    return read(text, field=field)


# -- the list --------------------------------------------------------------------------------------


def _list_page(request: Request, user, board, *, status_code: int = 200, **context) -> Response:
    with board.ws.uow.session() as s:
        listed = service.listing(s)
    return render(
        request, "messaging_templates.html", user=user, listed=listed, topics=TOPICS, status_code=status_code, **context
    )


@router.get("/templates")
def templates_page(request: Request, user: Viewer, board: BoardDep, installed: str = "", deleted: str = "") -> Response:
    return _list_page(request, user, board, installed=int(installed) if installed.isdigit() else None, deleted=deleted)


@router.post("/templates/library")
async def install(request: Request, user: Marketer, board: BoardDep) -> Response:
    await checked_form(request)

    def installing() -> list[str]:
        with board.ws.uow.session() as s:
            return service.install(s, now=board.ws.now())

    try:
        made = await run_in_threadpool(installing)
    except BoomerangError as exc:
        return _list_page(request, user, board, status_code=exc.status_code, errors=exc.errors)
    return redirect(f"/templates?installed={len(made)}")


# -- the editor and its preview --------------------------------------------------------------------


def preview(board, text: str, customer: str) -> dict[str, Any]:
    """The definition rendered for each channel, the SMS with its length; ValidationFailed naming fields. The
    customer is whoever `customer` stands for (a name, email, phone or id: customers.search)."""
    with board.ws.uow.session() as s:
        definition = parse_text(text)
        customer_id = search.resolve(s, customer, field="customer").id if customer.strip() else None
        result = delivery.preview(
            s,
            board.ws.settings.messaging,
            definition,
            customer_id=customer_id,
            now=board.ws.now(),
            recommend=board.ws.recommend_in_messages,
        )
    sms = result["channels"].get("sms", {})
    if "text" in sms:
        encoding, parts = sms_text.parts(sms["text"])
        sms["count"] = (
            f"{len(sms['text'])} characters · {parts} part{'' if parts == 1 else 's'} · "
            f"{'GSM-7' if encoding == 'gsm7' else 'UCS-2'}"
        )
    return result


def _editor(
    request: Request,
    user,
    board,
    *,
    editing: str | None,
    text: str,
    customer: str = "",
    status_code: int = 200,
    **context,
) -> Response:
    """The editor on `text`, previewed; editing a saved template (NotFound when it is gone) shows its version."""
    version, versions = None, []
    if editing is not None:
        with board.ws.uow.session() as s:
            version = service.get(s, editing).version
            versions = service.versions(s, editing)
    shown, problems = None, None
    try:
        shown = preview(board, text, customer)
    except BoomerangError as exc:
        problems = exc.errors
    response = render(
        request,
        "messaging_template.html",
        user=user,
        editing=editing,
        text=text,
        customer=customer,
        version=version,
        versions=versions,
        preview=shown,
        preview_errors=problems,
        reference=REFERENCE,
        status_code=status_code,
        **context,
    )
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    return response


def _saved(name: str, customer: str) -> Response:
    """To the saved template's page, previewed for the same customer."""
    return redirect(f"/templates/{name}?" + urlencode({"saved": 1, **({"customer": customer} if customer else {})}))


def _exists(session, name: Any) -> bool:
    try:
        service.get(session, name)
    except NotFound:
        return False
    return True


def _save(board, text: str, *, editing: str | None) -> str:
    definition = parse_text(text)
    name = definition.get("name") if isinstance(definition, dict) else None
    with board.ws.uow.session() as s:
        if editing is not None:
            service.get(s, editing)  # NotFound when it was deleted meanwhile
            if name != editing:
                raise ValidationFailed(
                    [
                        {
                            "field": "name",
                            "reason": f"this is {editing}: to save a copy under another name, make a new template",
                        }
                    ]
                )
        elif isinstance(name, str) and _exists(s, name):
            raise ValidationFailed(
                [{"field": "name", "reason": f"a template named {name} already exists: edit it instead"}]
            )
        return live_templates.save(s, board.ws.settings.messaging, definition, now=board.ws.now()).name


@router.get("/templates/new")
def new_form(request: Request, user: Marketer, board: BoardDep) -> Response:
    return _editor(request, user, board, editing=None, text=EXAMPLE)


@router.post("/templates/new")
async def create(request: Request, user: Marketer, board: BoardDep) -> Response:
    form = await checked_form(request)
    text, customer = str(form.get("definition") or ""), str(form.get("customer") or "")
    try:
        name = await run_in_threadpool(_save, board, text, editing=None)
    except BoomerangError as exc:
        return await run_in_threadpool(
            _editor,
            request,
            user,
            board,
            editing=None,
            text=text,
            customer=customer,
            status_code=exc.status_code,
            errors=exc.errors,
        )
    return _saved(name, customer.strip())


@router.post("/templates/preview")
async def preview_json(request: Request, user: Viewer, board: BoardDep) -> Response:
    """A definition being edited, rendered per channel, as JSON for the editor (CSRF token in X-CSRF-Token)."""
    if not csrf_matches(session_of(request), request.headers.get("x-csrf-token")):
        return json_answer({"errors": [{"field": "csrf_token", "reason": "missing or stale: reload the page"}]}, 403)
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("definition"), str):
        reason = 'send {"definition": "<YAML or JSON>", "customer": ""}'
        return json_answer({"errors": [{"field": "definition", "reason": reason}]}, 400)
    try:
        result = await run_in_threadpool(preview, board, body["definition"], str(body.get("customer") or ""))
    except BoomerangError as exc:
        return json_answer({"errors": exc.errors}, exc.status_code)
    return json_answer(result, 200)


@router.get("/templates/{name}")
def template_page(
    request: Request, name: str, user: Viewer, board: BoardDep, customer: str = "", saved: str = ""
) -> Response:
    return _template_page(request, user, board, name, customer=customer, saved=bool(saved))


def _template_page(request: Request, user, board, name: str, **context) -> Response:
    """The editor on the saved template `name`."""
    with board.ws.uow.session() as s:
        try:
            found = service.as_dict(service.get(s, name))
        except NotFound:
            return missing(request, user, "template", name)
    definition = {k: found[k] for k in ("name", "title", "topic", "default_locale", "locales")}
    return _editor(request, user, board, editing=name, text=as_yaml(definition), **context)


@router.post("/templates/{name}")
async def update(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    form = await checked_form(request)
    text, customer = str(form.get("definition") or ""), str(form.get("customer") or "")
    try:
        await run_in_threadpool(_save, board, text, editing=name)
    except NotFound:
        return missing(request, user, "template", name)
    except BoomerangError as exc:
        return await run_in_threadpool(
            _editor,
            request,
            user,
            board,
            editing=name,
            text=text,
            customer=customer,
            status_code=exc.status_code,
            errors=exc.errors,
        )
    return _saved(name, customer.strip())


@router.post("/templates/{name}/delete")
async def delete(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    await checked_form(request)
    try:
        with board.ws.uow.session() as s:
            live_templates.delete(s, name)
    except NotFound:
        return missing(request, user, "template", name)
    except BoomerangError as exc:  # something live sends it
        return await run_in_threadpool(
            _template_page, request, user, board, name, status_code=exc.status_code, errors=exc.errors
        )
    return redirect(f"/templates?deleted={name}")


# -- the delivery log ------------------------------------------------------------------------------


@router.get("/deliveries")
def deliveries_page(
    request: Request,
    user: Viewer,
    board: BoardDep,
    status: str = "",
    channel: str = "",
    source: str = "",
    customer: str = "",
    template: str = "",
    page: int = Query(1, ge=1, le=1_000_000),
) -> Response:
    params = {
        k: v.strip()
        for k, v in (
            ("status", status),
            ("channel", channel),
            ("source", source),
            ("customer", customer),
            ("template", template),
        )
        if v.strip()
    }
    errors, status_code, who, choices = None, 200, None, []
    try:
        with board.ws.uow.session() as s:
            if "customer" in params:  # a name, email, phone or id: the one customer it stands for
                try:
                    who = search.resolve(s, params["customer"], field="customer")
                except ValidationFailed:
                    choices = search.candidates(s, params["customer"], limit=PICK)  # several: pick one
                    raise
            found = delivery.log(
                s,
                status=params.get("status"),
                channel=params.get("channel"),
                source=params.get("source"),
                customer_id=who.id if who else None,
                template=params.get("template"),
                limit=PAGE,
                offset=(page - 1) * PAGE,
            )
            names = search.labels(s, {m["customer_id"] for m in found["messages"] if m["customer_id"]})
    except BoomerangError as exc:
        found, errors, status_code = {"counts": {}, "messages": []}, exc.errors, exc.status_code
        names = {}
    counts = found["counts"]
    matching = counts.get(params["status"], 0) if "status" in params else sum(counts.values())
    return render(
        request,
        "messaging_deliveries.html",
        user=user,
        messages=found["messages"],
        names=names,
        who=search.label(who) if who else None,
        choices=choices,
        counts=counts,
        total=sum(counts.values()),
        params=params,
        others={k: v for k, v in params.items() if k != "status"},
        statuses=delivery.STATUSES,
        channels=list(PROVIDERS),
        page=page,
        pages=max(1, math.ceil(matching / PAGE)),
        errors=errors,
        status_code=status_code,
    )
