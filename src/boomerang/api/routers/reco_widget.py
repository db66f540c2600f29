"""The recommendations widget: `/v1/recommendations.js`, the one script a shop page embeds to show blocks from
`/v1/recommendations/{block}` and track their impressions and clicks (the script is api/static/recommendations.js).
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request, Response

router = APIRouter(tags=["recommendations"])
SCRIPT = resources.files("boomerang.api").joinpath("static", "recommendations.js")
# The address has no version in it: shops embed it once. An hour's cache, then a cheap revalidation by its ETag.
CACHE = "public, max-age=3600, stale-while-revalidate=86400"


@cache
def _script() -> tuple[bytes, str]:
    body = SCRIPT.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


@router.get("/v1/recommendations.js", include_in_schema=False)
def widget(request: Request) -> Response:
    """The widget's script; 304 when the browser's copy is current."""
    body, etag = _script()
    headers = {
        "Cache-Control": CACHE,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",  # embeddable by shops whose pages require CORP
    }
    if etag in {t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
