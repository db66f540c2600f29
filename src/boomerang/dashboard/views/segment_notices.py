"""What a segments POST did, carried to the page it redirects to: a short-lived cookie read once.

A redirect after a POST keeps the browser off the POST's URL (a reload does not repeat it); the outcome
(sizes, entries and exits, the reasons a segment was not refreshed) travels in a cookie scoped to the
segments pages, rather than in the URL, where anyone could put words on the page through a link.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from boomerang.dashboard.views.common import redirect

COOKIE = "boomerang_segments_notice"
PATH = "/segments"
MAX_BYTES = 3000  # a cookie holds about 4 KB; longer outcomes keep their first errors and counts


def _encode(notice: dict[str, Any]) -> str:
    errors = [{"field": e["field"], "reason": e["reason"][:300]} for e in notice.get("errors", [])[:8]]
    notice = {**notice, "errors": errors}
    data = json.dumps(notice, ensure_ascii=False, default=str)
    while len(data.encode()) > MAX_BYTES and notice.get("refreshed"):
        notice = {**notice, "refreshed": notice["refreshed"][:-1], "more": notice.get("more", 0) + 1}
        data = json.dumps(notice, ensure_ascii=False, default=str)
    return base64.urlsafe_b64encode(data.encode()).decode()


def redirect_with(url: str, request: Request, notice: dict[str, Any]) -> Response:
    """A 303 to `url` carrying the notice for the page there (and no other)."""
    response = redirect(url)
    response.set_cookie(
        COOKIE,
        _encode({**notice, "at": url}),
        max_age=120,
        path=PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def read(request: Request) -> dict[str, Any]:
    """The notice a POST left for this page (empty when none, or unreadable)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        found = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return {}
    if not isinstance(found, dict) or found.get("at") != request.url.path:
        return {}
    errors = [e for e in found.get("errors", []) if isinstance(e, dict) and {"field", "reason"} <= set(e)]
    refreshed = [r for r in found.get("refreshed", []) if isinstance(r, dict) and "name" in r]
    return {**found, "errors": errors, "refreshed": refreshed}


def shown(response: Response, notice: dict[str, Any]) -> Response:
    """The page's response, with the notice it showed forgotten."""
    if notice:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax")
    return response


def outcome(results: list[dict[str, Any]]) -> dict[str, Any]:
    """A refresh's results as a notice: the segments refreshed, and an error naming each one that was not."""
    done = [
        {k: r[k] for k in ("name", "size", "entered", "exited", "seconds") if k in r}
        for r in results
        if "error" not in r
    ]
    failed = [
        {"field": f"segment {r['name']}", "reason": f"not refreshed: {r['error']}"} for r in results if "error" in r
    ]
    return {"refreshed": done, "errors": failed}
