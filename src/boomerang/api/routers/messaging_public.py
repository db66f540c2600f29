"""Public, signed links that leave in messages: click redirects, the open pixel, unsubscribe (RFC 8058
one-click POST, or a page to confirm), the preference centre, and the in-app inbox the app polls.

Every link is a token signed for its purpose (boomerang.core.signing): an unsigned or altered link
is refused with 400 and never redirects, so there is no open redirect.
"""

from __future__ import annotations

import base64
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from boomerang.bootstrap import Workspace
from boomerang.core.signing import BadToken
from boomerang.core.vocab import CHANNELS
from boomerang.loyalty import service as loyalty
from boomerang.messaging import links, preferences, tracking

router = APIRouter(include_in_schema=False)
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
PAGES = Environment(
    loader=FileSystemLoader(str(resources.files("boomerang") / "messaging" / "pages")),
    autoescape=select_autoescape(default=True),
)
CHANNEL_LABELS = {
    "email": "Email",
    "sms": "SMS",
    "telegram": "Telegram",
    "webpush": "Browser notifications",
    "inapp": "Messages in the app",
}
FREQUENCY_LABELS = {
    "normal": "Whenever there is something for me",
    "weekly": "At most once a week",
    "monthly": "At most once a month",
}
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _ws(request: Request) -> Workspace:
    return request.app.state.ws


def _refused(reason: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"success": False, "errors": [{"field": "token", "reason": reason}]}, status_code=status, headers=NO_STORE
    )


def _page(ws: Workspace, name: str, **values) -> HTMLResponse:
    html = PAGES.get_template(name).render(shop=ws.settings.messaging.shop_name, **values)
    return HTMLResponse(html, headers=NO_STORE)


@router.get("/t/c/{token}")
def click(token: str, request: Request):
    ws = _ws(request)
    try:
        message_id, payload = ws.links.message_of(links.CLICK, token)
        url = str(payload[1])
    except BadToken as exc:
        return _refused(str(exc))
    except IndexError:
        return _refused("invalid link")
    with ws.uow.session() as session:
        tracking.record_for(session, message_id, "clicked", at=ws.now(), detail=url)
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


@router.get("/t/o/{token}.gif")
def opened(token: str, request: Request):
    ws = _ws(request)
    try:
        message_id, _ = ws.links.message_of(links.OPEN, token)
        with ws.uow.session() as session:
            tracking.record_for(session, message_id, "opened", at=ws.now())
    except BadToken:
        pass  # a broken pixel still answers a pixel: mail clients show no error
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


def _unsubscribe(request: Request, token: str, *, done: bool) -> Response:
    """The page for an unsubscribe link: asking to confirm, or (done) after unsubscribing."""
    ws = _ws(request)
    try:
        message_id, _ = ws.links.message_of(links.UNSUBSCRIBE, token)
    except BadToken:
        return _refused("invalid or altered link")
    with ws.uow.session() as session:
        if done:
            message = tracking.record_for(session, message_id, "unsubscribed", at=ws.now(), detail="unsubscribe link")
        else:
            message = tracking.message(session, message_id)
        if message is None:
            return _refused("this message no longer exists", 404)
        return _page(
            ws,
            "unsubscribe.html",
            title="Unsubscribed" if done else "Unsubscribe",
            done=done,
            channel_label=CHANNEL_LABELS.get(message.channel or "", "these"),
            preferences_url=ws.links.preferences(message.customer_id),
        )


@router.get("/u/{token}")
def unsubscribe_page(token: str, request: Request):
    """A GET only asks (mail scanners follow links): unsubscribing takes the POST."""
    return _unsubscribe(request, token, done=False)


@router.post("/u/{token}")
def unsubscribe(token: str, request: Request):
    """RFC 8058: a POST with List-Unsubscribe=One-Click (mail clients) or the confirm form: unsubscribed at once."""
    return _unsubscribe(request, token, done=True)


def _preferences_page(ws: Workspace, prefs: dict, saved: str = "", points=None) -> HTMLResponse:
    return _page(
        ws,
        "preferences.html",
        title="Your preferences",
        prefs=prefs,
        saved=saved,
        channels=[(c, CHANNEL_LABELS[c]) for c in CHANNELS],
        topics=list(preferences.TOPICS.items()),
        frequencies=list(FREQUENCY_LABELS.items()),
        points=points,
        unit=ws.settings.loyalty.unit_name,
    )


@router.get("/preferences/{token}")
def preference_centre(token: str, request: Request):
    ws = _ws(request)
    try:
        customer_id = ws.links.customer_of(links.PREFERENCES, token)
    except BadToken:
        return _refused("invalid or altered link")
    with ws.uow.session() as session:
        prefs = preferences.get(session, customer_id)
        points = loyalty.wallets(session, [customer_id], now=ws.now())[customer_id]
        return _preferences_page(ws, prefs, points=points)


@router.post("/preferences/{token}")
async def save_preferences(token: str, request: Request):
    ws = _ws(request)
    try:
        customer_id = ws.links.customer_of(links.PREFERENCES, token)
    except BadToken:
        return _refused("invalid or altered link")
    form = await request.form()
    with ws.uow.session() as session:
        if form.get("action") == "unsubscribe_all":
            prefs = preferences.unsubscribe_all(session, customer_id, now=ws.now(), source="preference_centre")
            return _preferences_page(ws, prefs, "You will get no more messages.")
        channels = set(form.getlist("channel"))
        topics = set(form.getlist("topic"))
        frequency = form.get("frequency") or None
        prefs = preferences.update(
            session,
            customer_id,
            now=ws.now(),
            source="preference_centre",
            channels={c: c in channels for c in CHANNELS},
            topics={t: t in topics for t in preferences.TOPICS},
            frequency=frequency if frequency in preferences.FREQUENCIES else None,
        )
        return _preferences_page(ws, prefs, "Your choices hold from the next message on.")


# -- the in-app inbox -----------------------------------------------------------------------------


@router.get("/v1/inbox/{token}")
def inbox(token: str, request: Request, unread: bool = False):
    ws = _ws(request)
    try:
        customer_id = ws.links.customer_of(links.INBOX, token)
    except BadToken:
        return _refused("invalid inbox token", 401)
    with ws.uow.session() as session:
        items = tracking.inbox_items(session, customer_id, now=ws.now(), unread=unread)
    return {"items": items, "unread": sum(not i["read"] for i in items)}


@router.post("/v1/inbox/{token}/{item_id}/{action}")
def inbox_action(token: str, item_id: int, action: str, request: Request):
    """Mark an item read (an open of its message) or clicked."""
    ws = _ws(request)
    if action not in ("read", "click"):
        return JSONResponse({"success": False, "errors": [{"field": "action", "reason": "read or click"}]}, 400)
    try:
        customer_id = ws.links.customer_of(links.INBOX, token)
    except BadToken:
        return _refused("invalid inbox token", 401)
    with ws.uow.session() as session:
        tracking.inbox_action(session, customer_id, item_id, clicked=action == "click", now=ws.now())
    return {"success": True}
