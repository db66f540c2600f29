"""The recommendation blocks editor: a form (no YAML: the chain as rows of algorithm dropdowns, a field per filter,
categories picked from the catalog's, shares as percentages) saved through `recommendations.store` with errors
shown on their fields, a ready-made block reset to its defaults, a new block; and beside it a live preview of the
unsaved definition for a chosen customer and product, with each product's algorithm and reason."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.catalog import service as catalog
from boomerang.core.errors import BoomerangError, NotFound, ValidationFailed
from boomerang.customers import service as customers
from boomerang.dashboard.views.common import (
    BoardDep,
    Marketer,
    Viewer,
    checked_form,
    json_answer,
    missing,
    redirect,
    render,
)
from boomerang.dashboard.views.recommendations import CONTEXT_NAMES, PAGE, STEP_NAMES
from boomerang.recommendations import store
from boomerang.recommendations.blocks import ALGORITHMS, READY_MADE, Block
from boomerang.recommendations.service import Visitor

router = APIRouter()
CHECKS = ("in_stock", "has_image", "discounted_only", "exclude_cart")
LABELS = {
    "name": "Name",
    "title": "Title",
    "description": "Description",
    "context": "Shown",
    "chain": "Algorithms",
    "in_stock": "In stock only",
    "has_image": "With an image only",
    "discounted_only": "Discounted only",
    "exclude_cart": "Not what is in the cart",
    "exclude_bought_days": "Not bought within the last days",
    "categories": "Categories",
    "price_min": "Price from",
    "price_max": "Price up to",
    "max_per_brand": "At most per brand",
    "size": "Products shown",
    "control_share": "Control share",
    "customer": "Customer",
    "product": "Product",
}
# where pydantic's and the store's field paths are shown on the form
ALIASES = {
    "filters.price_min_ratio": "price_min",
    "filters.price_max_ratio": "price_max",
    "filters": "price_min",  # the one check across filters: the price range's ends
    "body": "context",  # the one check across the block: a price range needs a product page
}
LOOKUP_LIMIT = 10


def form_of(block: Block) -> dict[str, Any]:
    f = block.filters
    return {
        "name": block.name,
        "title": block.title,
        "description": block.description,
        "context": block.context,
        "chain": list(block.chain),
        **{c: getattr(f, c) for c in CHECKS},
        "exclude_bought_days": f.exclude_bought_days or "",
        "categories": list(f.categories),
        "price_min": _pct_text(f.price_min_ratio),
        "price_max": _pct_text(f.price_max_ratio),
        "max_per_brand": f.max_per_brand or "",
        "size": block.size,
        "control_share": _pct_text(block.control_share),
    }


def _pct_text(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio * 100:g}"


def typed_of(form, name: str | None = None) -> dict[str, Any]:
    """The form as typed (shown again as it was when it does not make a valid block)."""
    text = {k: str(form.get(k, "")).strip() for k in ("name", "title", "description", "context")}
    numbers = ("exclude_bought_days", "price_min", "price_max", "max_per_brand", "size", "control_share")
    return {
        **text,
        "name": name if name is not None else text["name"],
        "chain": [str(a).strip() for a in form.getlist("chain") if str(a).strip()],
        **{c: form.get(c) == "on" for c in CHECKS},
        **{n: str(form.get(n, "")).strip() for n in numbers},
        "categories": [str(c) for c in form.getlist("categories") if str(c).strip()],
    }


def _percent(typed: dict[str, Any], key: str, errors: list[dict[str, str]]) -> float | None:
    if not typed[key]:
        return None
    try:
        return float(typed[key].replace(",", ".")) / 100
    except ValueError:
        errors.append({"field": key, "reason": "a number: a percentage"})
        return None


def block_of(typed: dict[str, Any]) -> Block:
    """The block the typed form describes; ValidationFailed naming each form field (see `field_of`)."""
    errors: list[dict[str, str]] = []
    share = _percent(typed, "control_share", errors)
    raw = {
        "name": typed["name"],
        "title": typed["title"],
        "description": typed["description"],
        "context": typed["context"] or "none",
        "chain": typed["chain"],
        "filters": {
            **{c: typed[c] for c in CHECKS},
            "exclude_bought_days": typed["exclude_bought_days"] or None,
            "categories": typed["categories"],
            "price_min_ratio": _percent(typed, "price_min", errors),
            "price_max_ratio": _percent(typed, "price_max", errors),
            "max_per_brand": typed["max_per_brand"] or None,
        },
        "size": typed["size"] or 8,
        "control_share": 0.0 if share is None else share,
    }
    try:
        block = store.parse(raw)
    except ValidationFailed as exc:
        raise ValidationFailed(errors + [_named(e) for e in exc.errors]) from None
    if errors:
        raise ValidationFailed(errors)
    return block


def field_of(path: str) -> str:
    """The form field of an error's path: `filters.categories.0` is `categories`, `chain.2` is `chain`."""
    path = ALIASES.get(path, path)
    parts = path.split(".")
    if parts[0] == "filters" and len(parts) > 1:
        parts = parts[1:]
    return parts[0]


def _named(error: dict[str, Any]) -> dict[str, Any]:
    field = field_of(str(error.get("field") or "body"))
    reason = str(error.get("reason", ""))
    if field in ("control_share", "price_min", "price_max"):  # the form says percent where the block keeps ratios
        reason = reason.replace("0.5", "50 %").replace("greater than or equal to 0", "at least 0 %")
    return {"field": field, "label": LABELS.get(field, field), "reason": reason}


def _categories(session, chosen: list[str]) -> list[str]:
    """Every category of the catalog and each level above it, and those chosen."""
    return sorted(set(catalog.categories(session)) | set(chosen), key=str.lower)


def _editor(request: Request, user, board, *, form: dict, new: bool, status_code: int = 200, **extra) -> Response:
    errors = [_named(e) if "label" not in e else e for e in extra.pop("errors", [])]
    with board.ws.uow.session() as s:
        stored = {b["name"]: b for b in store.listing(s)}.get(form["name"]) if not new else None
        categories = _categories(s, form["categories"])
        product = catalog.latest_in_stock(s) or ""
    invalid: dict[str, list[str]] = {}
    for e in errors:
        invalid.setdefault(e["field"], []).append(e["reason"])
    return render(
        request,
        "recommendation_block.html",
        user=user,
        status_code=status_code,
        form=form,
        new=new,
        stored=stored,
        errors=errors,
        invalid=invalid,
        algorithms=ALGORITHMS,
        step_names=STEP_NAMES,
        contexts=CONTEXT_NAMES,
        categories=categories,
        labels=LABELS,
        sample_product=product,
        **extra,
    )


@router.get(f"{PAGE}/new")
def new_page(request: Request, user: Viewer, board: BoardDep) -> Response:
    empty = Block(name="new", chain=["personal", "popular"], title="Picked for you", context="customer")
    return _editor(request, user, board, form={**form_of(empty), "name": ""}, new=True)


@router.post(f"{PAGE}/new")
async def create(request: Request, user: Marketer, board: BoardDep) -> Response:
    form = await checked_form(request)
    typed = typed_of(form)
    with board.ws.uow.session() as s:
        names = {b["name"] for b in store.listing(s)}
    if typed["name"] in names:
        reason = "a block of this name exists: open it from the list to change it"
        errors = [{"field": "name", "reason": reason}]
        return _editor(request, user, board, form=typed, new=True, status_code=400, errors=errors)
    return await _save(request, user, board, typed, new=True)


@router.get(PAGE + "/blocks/{name}")
def block_page(request: Request, name: str, user: Viewer, board: BoardDep, saved: str = "") -> Response:
    with board.ws.uow.session() as s:
        try:
            block = store.get(s, name)
        except NotFound:
            return missing(request, user, "block", name)
    return _editor(request, user, board, form=form_of(block), new=False, saved=bool(saved))


@router.post(PAGE + "/blocks/{name}")
async def update(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    form = await checked_form(request)
    return await _save(request, user, board, typed_of(form, name), new=False)


async def _save(request: Request, user, board, typed: dict[str, Any], *, new: bool) -> Response:
    def save() -> str:
        block = block_of(typed)
        with board.ws.uow.session() as s:
            store.save(s, block, by=user.username, now=board.ws.now())
            s.commit()
        return block.name

    try:
        name = await run_in_threadpool(save)
    except BoomerangError as exc:
        return _editor(request, user, board, form=typed, new=new, status_code=exc.status_code, errors=exc.errors)
    return redirect(f"{PAGE}/blocks/{name}?saved=1")


@router.post(PAGE + "/blocks/{name}/reset")
async def reset(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    """Forget the shop's version: a ready-made block goes back to its defaults, one of the shop's own is gone."""
    await checked_form(request)
    with board.ws.uow.session() as s:
        try:
            store.delete(s, name)
        except NotFound:
            return missing(request, user, "block", name)
        s.commit()
    if name in READY_MADE:
        return redirect(f"{PAGE}?reset={name}")
    return redirect(f"{PAGE}?deleted={name}")


def preview(board, typed: dict[str, Any], customer: str, product: str) -> dict[str, Any]:
    block = block_of(typed)
    with board.ws.uow.session() as s:
        shown = board.ws.recommendations.recommend(
            s, block.name, Visitor(customer=customer or None), product=product or None, block=block, control=False
        )
    items = [{**i, "algorithm": STEP_NAMES.get(i["source"], i["source"])} for i in shown["items"]]
    trained = shown["model_trained_at"]
    return {**shown, "items": items, "model_trained_at": trained.isoformat() if trained else None}


@router.post(f"{PAGE}/preview")
async def preview_json(request: Request, user: Viewer, board: BoardDep) -> Response:
    """The products the editor's unsaved definition shows (the form as sent, CSRF token in it), as JSON."""
    form = await checked_form(request)
    typed = typed_of(form)
    typed["name"] = typed["name"] or "preview"  # a new block not named yet
    customer, product = (str(form.get(k, "")).strip()[:255] for k in ("preview_customer", "preview_product"))
    try:
        return json_answer(await run_in_threadpool(preview, board, typed, customer, product))
    except BoomerangError as exc:
        return json_answer({"errors": [_named(e) for e in exc.errors]}, exc.status_code)


@router.get(f"{PAGE}/lookup")
def lookup(user: Viewer, board: BoardDep, customer: str = "", product: str = "") -> Response:
    """Customers (by id or email) or products (by sku or name) starting with what was typed, for the preview."""
    out = []
    with board.ws.uow.session() as s:
        if customer.strip():
            rows, _ = customers.find(s, customer[:255], prefix=True, limit=LOOKUP_LIMIT)
            out = [{"value": c.external_id or c.email or c.id, "label": c.email or c.phone or c.id} for c in rows]
        elif product.strip():
            rows = catalog.lookup(s, product[:128], limit=LOOKUP_LIMIT)
            out = [{"value": r.sku, "label": r.name or r.sku} for r in rows]
    return json_answer(out)
