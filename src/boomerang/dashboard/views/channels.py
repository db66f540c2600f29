"""Channels: each channel's provider and settings (a marketer sees them, an admin changes them), and a test send."""

from __future__ import annotations

from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, SecretStr
from starlette.concurrency import run_in_threadpool

from boomerang.channels import config
from boomerang.core.errors import BoomerangError, ValidationFailed
from boomerang.customers import search
from boomerang.dashboard.views.common import Admin, BoardDep, Marketer, checked_form, redirect, render
from boomerang.messaging import delivery, service

router = APIRouter()
KINDS = {
    "secret": "secret",
    "bool": "yes or no",
    "int": "whole number",
    "float": "number",
    "choice": "one of",
    "list": "list, one a line",
    "text": "text",
}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The type inside `X | None`, and whether None is allowed."""
    if get_origin(annotation) in (Union, UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return (inner[0] if len(inner) == 1 else str), len(inner) < len(get_args(annotation))
    return annotation, False


def _kind(annotation: Any) -> str:
    inner, _ = _unwrap(annotation)
    if inner is SecretStr:
        return "secret"
    if inner in (bool, int, float):
        return inner.__name__
    if get_origin(inner) is Literal:
        return "choice"
    return "list" if get_origin(inner) is list else "text"


def form_fields(model: type[BaseModel], values: dict[str, Any], errors: list[dict]) -> list[dict[str, Any]]:
    """One input per field of a provider's Config: its kind, default, description, value and errors."""
    fields = []
    for name, info in model.model_fields.items():
        kind, (inner, optional) = _kind(info.annotation), _unwrap(info.annotation)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        value = values.get(name, None if kind == "secret" else default)
        fields.append(
            {
                "name": name,
                "kind": kind,
                "label": KINDS[kind],
                "optional": optional,
                "required": info.is_required(),
                "description": info.description or "",
                "default": ", ".join(default) if isinstance(default, list) else default,
                "options": get_args(inner) if kind == "choice" else (),
                "value": "\n".join(value) if isinstance(value, list) else value,
                "errors": [e["reason"] for e in errors if _field_of(e) == name],
            }
        )
    return fields


def _field_of(error: dict) -> str | None:
    """The Config field an error of channels.config names (`config.<field>...`)."""
    field = error.get("field") or ""
    return field.split(".")[1] if field.startswith("config.") else None


def submitted(model: type[BaseModel], form) -> dict[str, Any]:
    """A provider's settings from the form: an empty field is left out (its default, or the stored secret)."""
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        kind, raw = _kind(info.annotation), str(form.get(f"config.{name}") or "").strip()
        if kind == "bool":
            values[name] = raw == "on"
        elif raw:
            values[name] = [line.strip() for line in raw.splitlines() if line.strip()] if kind == "list" else raw
    return values


def _card(
    board,
    session,
    channel: str,
    *,
    provider: str = "",
    values: dict[str, Any] | None = None,
    errors: list[dict] | None = None,
) -> dict[str, Any]:
    """A channel's settings (secrets masked) and the form for `provider` (by default the one in use)."""
    errors = list(errors or [])
    try:
        info = config.describe(session, channel, secret=board.ws.secret)
    except BoomerangError as exc:  # a secret that no longer decrypts: the form sets everything again
        info = {
            "channel": channel,
            "provider": None,
            "enabled": False,
            "config": {},
            "providers": sorted(config.PROVIDERS[channel]),
            "updated_at": None,
        }
        errors += exc.errors
    chosen = provider if provider in config.PROVIDERS[channel] else info["provider"] or config.SANDBOX
    stored = info["config"] if chosen == info["provider"] else {}
    model = config.adapter_class(channel, chosen).Config
    secrets = {name for name, field in model.model_fields.items() if _kind(field.annotation) == "secret"}
    shown = {**stored, **{k: v for k, v in (values or {}).items() if k not in secrets}}  # a typed secret never returns
    fields = form_fields(model, shown, errors)
    return {
        **info,
        "chosen": chosen,
        "fields": fields,
        "errors": [e for e in errors if _field_of(e) not in {f["name"] for f in fields}],
    }


def _page(
    request: Request, user, board, *, forms: dict[str, dict[str, Any]] | None = None, status_code: int = 200, **context
) -> Response:
    with board.ws.uow.session() as s:
        cards = [_card(board, s, c, **(forms or {}).get(c, {})) for c in config.PROVIDERS]
        names = [t["name"] for t in service.listing(s)]
    return render(
        request,
        "messaging_channels.html",
        user=user,
        cards=cards,
        channels=list(config.PROVIDERS),
        template_names=names,
        mask=config.MASK,
        status_code=status_code,
        **context,
    )


@router.get("/channels")
def channels_page(
    request: Request,
    user: Marketer,
    board: BoardDep,
    channel: str = "",
    provider: str = "",
    saved: str = "",
    tested: str = "",
) -> Response:
    """Every channel; `channel` and `provider` show the form of another provider for that channel; `tested`
    the outcome of a test message."""
    forms = {channel: {"provider": provider}} if channel in config.PROVIDERS else {}
    test, outcome = (tested and _tested(board, tested)) or (None, None)
    return _page(
        request, user, board, forms=forms, saved=saved if saved in config.PROVIDERS else None, test=test, tested=outcome
    )


@router.post("/channels/test")
async def send_test(request: Request, user: Marketer, board: BoardDep) -> Response:
    """Send a template to a customer on a channel now, and show what became of it."""
    form = await checked_form(request)
    test = {k: str(form.get(k) or "").strip() for k in ("channel", "customer", "template")}
    try:
        missing = [{"field": k, "reason": "required"} for k, v in test.items() if not v]
        if missing:
            raise ValidationFailed(missing)
        result = await run_in_threadpool(_send_test, board, test)
    except BoomerangError as exc:
        return _page(request, user, board, test=test, test_errors=exc.errors, status_code=exc.status_code)
    return redirect(f"/channels?tested={quote(result['key'], safe='')}#test-result")


def _send_test(board, test: dict[str, str]) -> dict[str, Any]:
    with board.ws.uow.session() as s:
        customer = search.resolve(s, test["customer"], field="customer")  # a name, email, phone or id
    return delivery.send_test(
        board.ws.dispatcher,
        channel=test["channel"],
        customer_id=customer.id,
        template=test["template"],
        now=board.ws.now(),
    )


def _tested(board, key: str) -> tuple[dict[str, str], dict[str, Any]] | None:
    """The form and outcome of the test message `key`, shown after the redirect (None: no such test)."""
    with board.ws.uow.session() as s:
        found = delivery.test_sent(s, key)
    if found is None:
        return None
    form = {"channel": found["channels"][0], "customer": found["customer_id"], "template": found["template"]}
    return form, found


@router.post("/channels/{channel}")
async def save_channel(request: Request, channel: str, user: Admin, board: BoardDep) -> Response:
    form = await checked_form(request)
    if channel not in config.PROVIDERS:
        return render(
            request,
            "error.html",
            user=user,
            status_code=404,
            title="No such channel",
            message=f"There is no channel {channel}: the channels are {', '.join(config.PROVIDERS)}.",
        )
    provider, values = str(form.get("provider") or ""), {}
    try:
        values = submitted(config.adapter_class(channel, provider).Config, form)

        def saving() -> None:
            with board.ws.uow.session() as s:
                config.save(
                    s,
                    channel,
                    provider,
                    values,
                    secret=board.ws.secret,
                    enabled=form.get("enabled") == "on",
                    now=board.ws.now(),
                )

        await run_in_threadpool(saving)
    except BoomerangError as exc:
        forms = {channel: {"provider": provider, "values": values, "errors": exc.errors}}
        return _page(request, user, board, forms=forms, status_code=exc.status_code)
    return redirect(f"/channels?saved={channel}#channel-{channel}")
