"""Promo codes: the pools with their stock, a new pool, generating codes (a large count in the background, with its
progress), uploading codes, a pool's page with its redemptions, its codes as CSV, and looking up one code. The
domain does the work (`loyalty.codes`), as for the API and the CLI."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from boomerang.core.errors import BoomerangError, Conflict, NotFound, ValidationFailed
from boomerang.dashboard.auth import CsrfFailed, csrf_matches
from boomerang.dashboard.views.common import (
    HEADERS,
    BoardDep,
    Marketer,
    Viewer,
    json_answer,
    missing,
    redirect,
    render,
    session_of,
)
from boomerang.dashboard.views.loyalty_generation import generations
from boomerang.loyalty import codes
from boomerang.loyalty.models import DISCOUNT_KINDS, POOL_KINDS

log = logging.getLogger(__name__)
router = APIRouter()
SYNC_MAX = 50_000  # codes generated while the browser waits; more are made in the background
MAX_UPLOAD = 64 * 1024 * 1024  # bytes of pasted codes and file together
EXPORT_PAGE = 10_000
REDEMPTIONS = 50
FIELDS = (
    "name",
    "kind",
    "discount_kind",
    "value",
    "min_order",
    "uses_per_code",
    "prefix",
    "valid_from",
    "valid_until",
    "low_stock_alert",
    "count",
)
LABELS = {
    "name": "Name",
    "kind": "Codes are",
    "discount_kind": "Discount",
    "value": "Discount value",
    "min_order": "Minimum order",
    "uses_per_code": "Uses per code",
    "prefix": "Prefix",
    "valid_from": "Valid from",
    "valid_until": "Valid until",
    "low_stock_alert": "Low-stock alert",
    "count": "Codes to generate",
    "length": "Length",
    "codes": "Codes",
    "file": "File",
    "code": "Code",
    "pool": "Pool",
}
DISCOUNTS = {
    "percent": "Percent off the order",
    "fixed": "Fixed amount off",
    "free_shipping": "Free shipping",
    "points_multiplier": "Points multiplier",
}
KINDS = {"generated": "Generated here", "uploaded": "Uploaded from another system"}
DEFAULTS = {"kind": "generated", "discount_kind": "percent", "value": "10", "min_order": "0", "uses_per_code": "1"}
DAYS = (7, 30, 90, 365)


def discount_text(kind: str, value: float) -> str:
    """What a code gives, in words."""
    return {
        "percent": f"{value:g} % off",
        "fixed": f"{value:,.2f} off",
        "free_shipping": "free shipping",
        "points_multiplier": f"× {value:g} points",
    }.get(kind, f"{kind} {value:g}")


def labelled(errors: list[dict]) -> list[dict]:
    """Errors with the form's name of their field (`label`)."""
    return [{**e, "label": LABELS.get(e.get("field") or "", e.get("field") or "form")} for e in errors]


# -- forms -----------------------------------------------------------------------------------------


async def checked_upload(request: Request):
    """The POSTed form, pasted codes up to MAX_UPLOAD, after checking its CSRF token (as `checked_form`)."""
    form = await request.form(max_part_size=MAX_UPLOAD)
    if not csrf_matches(session_of(request), form.get("csrf_token")):
        raise CsrfFailed()
    return form


def _number(values: dict[str, str], name: str, *, whole: bool = False, default: Any = None) -> Any:
    """A number from a form field (empty: `default`); a whole one may be written 10,000 or 10 000."""
    text = values.get(name, "").strip()
    if whole:
        text = text.replace(",", "").replace(" ", "").replace("_", "")
    if not text:
        return default
    try:
        return int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number, such as 12.5"
        raise ValidationFailed([{"field": name, "reason": f"must be {kind}, not '{text[:40]}'"}]) from None


def _moment(values: dict[str, str], name: str) -> datetime | None:
    text = values.get(name, "").strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed([{"field": name, "reason": "must be a date and time, YYYY-MM-DD HH:MM (UTC)"}]) from None


def pool_spec(values: dict[str, str]) -> tuple[dict[str, Any], int | None]:
    """The pool the form describes, as `codes.create_pool` takes it, and how many codes to generate at once; every
    field that cannot be read is named."""
    spec: dict[str, Any] = {
        "name": values.get("name", "").strip(),
        "kind": values.get("kind") or "generated",
        "discount_kind": values.get("discount_kind") or "percent",
        "prefix": values.get("prefix", "").strip(),
    }
    errors = []
    readers = {
        "value": lambda: _number(values, "value", default=0),
        "min_order": lambda: _number(values, "min_order", default=0),
        "uses_per_code": lambda: _number(values, "uses_per_code", whole=True, default=1),
        "low_stock_alert": lambda: _number(values, "low_stock_alert", whole=True),
        "valid_from": lambda: _moment(values, "valid_from"),
        "valid_until": lambda: _moment(values, "valid_until"),
        "count": lambda: _number(values, "count", whole=True),
    }
    for name, read in readers.items():
        try:
            spec[name] = read()
        except ValidationFailed as exc:
            errors += exc.errors
    count = spec.pop("count", None)
    if count is not None and spec["kind"] != "generated":
        errors.append({"field": "count", "reason": "an uploaded pool's codes are uploaded on its page, not generated"})
    elif count is not None and not 0 <= count <= codes.MAX_COUNT:
        errors.append({"field": "count", "reason": f"must be a whole number from 1 to {codes.MAX_COUNT:,}"})
    if errors:
        raise ValidationFailed(errors)
    return spec, count or None


def _create(board, spec: dict[str, Any]) -> str:
    with board.ws.uow.session() as s:
        return codes.create_pool(s, spec, now=board.ws.now())["name"]


def _generate_now(board, name: str, count: int) -> int:
    with board.ws.uow.session() as s:
        return codes.generate(s, name, count, now=board.ws.now())["generated"]


def pool_url(name: str, **params: Any) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/loyalty/codes/{quote(name, safe='')}" + (f"?{query}" if query else "")


async def _generate(request: Request, board, name: str, count: int) -> dict[str, Any]:
    """Generate the codes, in the request or (more than SYNC_MAX) in the background; what the pool's page says."""
    if count > SYNC_MAX:
        with board.ws.uow.session() as s:
            if codes.pool(s, name).kind != "generated":
                raise Conflict(f"pool '{name}' holds uploaded codes: upload more instead", field="pool")
        generations(request).start(board, name, count)
        return {"generating": count}
    return {"generated": await run_in_threadpool(_generate_now, board, name, count)}


# -- the pools -------------------------------------------------------------------------------------


def _codes_page(
    request: Request, user, board, *, status_code: int = 200, values: dict[str, str] | None = None, **context
) -> Response:
    with board.ws.uow.session() as s:
        pools = codes.list_pools(s, now=board.ws.now())
    for p in pools:
        p["discount"] = discount_text(p["discount_kind"], p["value"])
    errors = labelled(context.pop("errors", None) or [])
    return render(
        request,
        "loyalty_codes.html",
        user=user,
        pools=pools,
        values={**DEFAULTS, **(values or {})},
        errors=errors,
        invalid={e["field"] for e in errors},
        discounts=[(k, DISCOUNTS[k]) for k in DISCOUNT_KINDS],
        kinds=[(k, KINDS[k]) for k in POOL_KINDS],
        max_count=codes.MAX_COUNT,
        sync_max=SYNC_MAX,
        status_code=status_code,
        **context,
    )


@router.get("/loyalty/codes")
def codes_page(request: Request, user: Viewer, board: BoardDep, code: str = Query("", max_length=200)) -> Response:
    """The pools; with `code`, that code looked up."""
    found, problem = None, None
    if code.strip():
        try:
            with board.ws.uow.session() as s:
                found = codes.lookup(s, code, now=board.ws.now())
            found["discount"] = discount_text(found["discount_kind"], found["value"])
        except BoomerangError as exc:
            problem = exc.message
    return _codes_page(request, user, board, code=code.strip(), found=found, problem=problem)


@router.post("/loyalty/codes")
async def create_pool(request: Request, user: Marketer, board: BoardDep) -> Response:
    """A new pool from the form, and as many codes as it asks for."""
    form = await checked_upload(request)
    values = {name: str(form.get(name) or "") for name in FIELDS}
    try:
        spec, count = pool_spec(values)
        name = await run_in_threadpool(_create, board, spec)
    except BoomerangError as exc:
        return _codes_page(request, user, board, status_code=exc.status_code, values=values, errors=exc.errors)
    if not count:
        return redirect(pool_url(name, created=1))
    try:
        said = await _generate(request, board, name, count)
    except BoomerangError as exc:  # the pool is made: its page says what went wrong with the codes
        return _pool_page(request, user, board, name, status_code=exc.status_code, errors=exc.errors)
    return redirect(pool_url(name, created=1, **said))


# -- one pool --------------------------------------------------------------------------------------


def redemption_chart(by_day: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "bar",
        "labels": [d["day"][5:] for d in by_day],
        "datasets": [
            {"label": "Confirmed", "data": [d["confirmed"] for d in by_day]},
            {"label": "Held", "data": [d["held"] for d in by_day]},
            {"label": "Cancelled or expired", "data": [d["cancelled"] + d["expired"] for d in by_day]},
        ],
    }


def _pool_page(
    request: Request, user, board, name: str, *, status_code: int = 200, days: int = 30, **context
) -> Response:
    now = board.ws.now()
    try:
        with board.ws.uow.session() as s:
            pool = codes.show_pool(s, name, now=now)
            recent = codes.redemptions(s, name, now=now, limit=REDEMPTIONS)
            summary = codes.redemption_summary(s, name, now=now, days=days)
    except NotFound:
        return missing(request, user, "pool of promo codes", name)
    pool["discount"] = discount_text(pool["discount_kind"], pool["value"])
    job = generations(request).get(name)
    if job is not None and job.finished:  # said once, on this page
        generations(request).forget(job)
    errors = labelled(context.pop("errors", None) or [])
    return render(
        request,
        "loyalty_pool.html",
        user=user,
        pool=pool,
        recent=recent,
        summary=summary,
        chart=redemption_chart(summary["by_day"]),
        days=days,
        day_choices=DAYS,
        job=job.as_dict() if job else None,
        errors=errors,
        invalid={e["field"] for e in errors},
        max_count=codes.MAX_COUNT,
        sync_max=SYNC_MAX,
        status_code=status_code,
        **context,
    )


@router.get("/loyalty/codes/{name}")
def pool_page(
    request: Request,
    name: str,
    user: Viewer,
    board: BoardDep,
    days: int = Query(30, ge=1, le=365),
    created: str = "",
    generated: str = "",
    generating: str = "",
    uploaded: str = "",
    skipped: str = "",
) -> Response:
    def whole(text: str) -> int | None:
        return int(text) if text.isdigit() and len(text) < 10 else None

    done = {
        "created": bool(created),
        "generated": whole(generated),
        "generating": whole(generating),
        "uploaded": whole(uploaded),
        "skipped": whole(skipped) or 0,
    }
    return _pool_page(request, user, board, name, days=days, done=done)


@router.post("/loyalty/codes/{name}/generate")
async def generate(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    form = await checked_upload(request)
    values = {"count": str(form.get("count") or "")}
    try:
        count = _number(values, "count", whole=True)
        if count is None:
            raise ValidationFailed([{"field": "count", "reason": "say how many codes to generate"}])
        if not 1 <= count <= codes.MAX_COUNT:
            raise ValidationFailed(
                [{"field": "count", "reason": f"must be a whole number from 1 to {codes.MAX_COUNT:,}"}]
            )
        said = await _generate(request, board, name, count)
    except NotFound:
        return missing(request, user, "pool of promo codes", name)
    except BoomerangError as exc:
        return _pool_page(request, user, board, name, status_code=exc.status_code, errors=exc.errors, values=values)
    return redirect(pool_url(name, **said))


@router.get("/loyalty/codes/{name}/progress")
def progress(request: Request, name: str, user: Viewer) -> Response:
    """The background generation of the pool, for its page to follow (`running: false` when there is none)."""
    job = generations(request).get(name)
    body = {"running": False} if job is None else {"running": not job.finished, **job.as_dict()}
    return json_answer(body)


def _upload(board, name: str, given: list[str]) -> dict[str, Any]:
    with board.ws.uow.session() as s:
        return codes.upload(s, name, given, now=board.ws.now())


@router.post("/loyalty/codes/{name}/upload")
async def upload(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    """Codes pasted into the form or in a text or CSV file (a code a line); repeats and known codes are skipped."""
    form = await checked_upload(request)
    pasted = str(form.get("codes") or "")
    file = form.get("file")
    try:
        text = pasted
        if isinstance(file, UploadFile) and file.filename:
            data = await file.read(MAX_UPLOAD + 1)
            if len(data) + len(pasted) > MAX_UPLOAD:
                raise ValidationFailed([{"field": "file", "reason": "is larger than 64 MiB"}])
            text = f"{pasted}\n{data.decode('utf-8', errors='replace')}"
        done = await run_in_threadpool(_upload, board, name, codes.parse_upload(text))
    except NotFound:
        return missing(request, user, "pool of promo codes", name)
    except BoomerangError as exc:
        kept = pasted if len(pasted) <= 200_000 else ""
        return _pool_page(
            request, user, board, name, status_code=exc.status_code, errors=exc.errors, values={"codes": kept}
        )
    return redirect(pool_url(name, uploaded=done["uploaded"], skipped=done["skipped"]))


@router.get("/loyalty/codes/{name}/codes.csv")
def export(request: Request, name: str, user: Viewer, board: BoardDep) -> Response:
    """The pool's codes as CSV, read page by page while they are sent."""
    try:
        with board.ws.uow.session() as s:
            codes.pool(s, name)
    except NotFound:
        return missing(request, user, "pool of promo codes", name)

    def rows() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["code", "customer_id", "uses", "max_uses", "expires_at", "created_at"])
        after = ""
        while True:
            with board.ws.uow.session() as s:
                page = codes.codes_page(s, name, after=after, limit=EXPORT_PAGE)
            for r in page:
                writer.writerow(
                    [r.code, r.customer_id or "", r.uses, r.max_uses, _iso(r.expires_at), _iso(r.created_at)]
                )
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if len(page) < EXPORT_PAGE:
                return
            after = page[-1].code

    headers = {**HEADERS, "Content-Disposition": f'attachment; filename="{name}-codes.csv"'}
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers=headers)


def _iso(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else ""
