"""A segment's members: the page's sorted, paged listing, and every member as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views.common import HEADERS, BoardDep, Viewer, missing
from boomerang.segments import members, service

router = APIRouter()
PER_PAGE = 50
SORT_LABELS = {
    "joined": "Joined",
    "name": "Name",
    "email": "Email",
    "orders": "Orders",
    "spend": "Spend",
    "last_order": "Last order",
}
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def _number(text: str, field: str, default: int) -> tuple[int, dict[str, str] | None]:
    text = text.strip()
    if not text:
        return default, None
    if not text.isdigit():
        return default, {"field": field, "reason": f"must be a whole number, not {text[:40]!r}"}
    return int(text), None


def listing(session, name: str, *, sort: str, direction: str, page: str, per_page: str) -> dict[str, Any]:
    """The members' page for the segment page: rows, paging and sorting, and errors naming a bad parameter
    (then the first page in the default order is shown)."""
    number, bad_page = _number(page, "page", 1)
    size, bad_size = _number(per_page, "per_page", PER_PAGE)
    errors = [e for e in (bad_page, bad_size) if e]
    try:
        found = members.page(
            session, name, sort=sort or "joined", direction=direction or "desc", page=number, per_page=size
        )
    except BoomerangError as exc:
        if exc.status_code == 404:
            raise
        errors += exc.errors
        found = members.page(session, name)
    if found["page"] > found["pages"] and found["total"]:
        errors.append({"field": "page", "reason": f"there are {found['pages']} pages"})
    return {**found, "errors": errors, "labels": SORT_LABELS}


def neutral(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (float, Decimal)):
        return f"{value:.2f}"
    if isinstance(value, str) and value.startswith(FORMULA):
        return "'" + value
    return value


def _rows(board, name: str) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(members.COLUMNS)
    with board.ws.uow.session() as s:
        for i, row in enumerate(members.every(s, name), 1):
            row["spend"] = f"{float(row['spend'] or 0):.2f}"  # money to the cent, whatever type the database gives
            writer.writerow([neutral(row.get(c)) for c in members.COLUMNS])
            if i % 500 == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
    yield out.getvalue()


@router.get("/segments/{name}/members.csv")
def export(request: Request, name: str, user: Viewer, board: BoardDep) -> Response:
    """Every member of the segment, with their profile and orders, as CSV (streamed)."""
    with board.ws.uow.session() as s:
        if service.find(s, name) is None:
            return missing(request, user, "segment", name)
    headers = {**HEADERS, "Content-Disposition": f'attachment; filename="segment-{name}-members.csv"'}
    return StreamingResponse(_rows(board, name), media_type="text/csv; charset=utf-8", headers=headers)
