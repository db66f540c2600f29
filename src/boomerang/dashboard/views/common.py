"""Shared pieces of the dashboard's views: templates and filters, the current user, rendering."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape

from boomerang.auth import sessions
from boomerang.auth.models import User
from boomerang.bootstrap import Workspace
from boomerang.channels import config as channel_config
from boomerang.core.errors import ValidationFailed
from boomerang.dashboard.auth import COOKIE, CsrfFailed, Forbidden, Keys, LoginRequired, Session, allowed, csrf_matches
from boomerang.dashboard.data import Analytics
from boomerang.orders import service as order_service

HEADERS = {
    # Scripts and styles come only from /static: page data travels in JSON blocks, never inline code.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# An email preview is the template's own HTML in a sandboxed srcdoc iframe, which inherits the page's policy: the
# editors let inline styles and https images through (for that HTML), scripts stay the dashboard's own only.
PREVIEW_CSP = (
    HEADERS["Content-Security-Policy"]
    .replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    .replace("img-src 'self' data:", "img-src 'self' data: https:")
)
SENDING = ("/journeys", "/campaigns", "/templates", "/deliveries", "/channels")  # pages that say what the sandbox is
SANDBOX_TTL = 5.0  # seconds the channels' providers are kept for the sandbox banner
CURRENCY_TTL = 300.0  # seconds the shop's currency (of its latest orders) is kept


@dataclass
class Dashboard:
    """What the views share, kept on `app.state.dashboard`."""

    ws: Workspace
    keys: Keys
    analytics: Analytics
    warm: bool = False  # compute the overview in the background while someone logs in
    _kept: dict[str, tuple[float, Any]] = field(default_factory=dict, repr=False)

    def _read(self, key: str, ttl: float, read) -> Any:
        """`read(session)`, kept for `ttl` seconds. Call it before a page opens its own session: SQLite has one
        writer, and every session takes the lock."""
        read_at, value = self._kept.get(key, (-ttl, None))
        if time.monotonic() - read_at >= ttl:
            with self.ws.uow.session() as s:
                value = read(s)
            self._kept[key] = (time.monotonic(), value)
        return value

    def sandboxed(self) -> list[str]:
        """The channels whose messages are recorded in the sandbox, never delivered."""
        return self._read("sandboxed", SANDBOX_TTL, channel_config.sandboxed)

    def currency(self) -> str | None:
        """The shop's currency, shown beside money: that of most of its latest orders."""
        return self._read("currency", CURRENCY_TTL, order_service.main_currency)

    @property
    def lifetime(self) -> sessions.Lifetime:
        settings = self.ws.settings.dashboard
        return sessions.Lifetime(
            idle=timedelta(minutes=settings.session_idle_minutes), absolute=timedelta(hours=settings.session_max_hours)
        )

    @property
    def cookie_age(self) -> int:
        """Seconds a browser keeps the cookie: a session's absolute lifetime (the store may end it sooner)."""
        return int(self.lifetime.absolute.total_seconds())


def parse_day(value: str | None, field: str) -> date | None:
    """A day from a form field (empty means none); a bad one is a ValidationFailed naming the field."""
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed([{"field": field, "reason": "must be a date, YYYY-MM-DD"}]) from None


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _pct(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _dt(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@pass_context
def _money(context: Any, value: Any) -> str:
    """An amount with the shop's currency (when its orders name one)."""
    currency = context.get("currency")
    return _num(value, 2) + (f" {currency}" if currency and value is not None else "")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(resources.files("boomerang") / "dashboard" / "templates")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, pct=_pct, dt=_dt, money=_money)
    return env


templates = Jinja2Templates(env=_environment())


def dashboard(request: Request) -> Dashboard:
    return request.app.state.dashboard


def session_of(request: Request) -> Session | None:
    return dashboard(request).keys.read(request.cookies.get(COOKIE))


def current_user(request: Request) -> User:
    """The active user of the cookie's live session (not ended, idle or expired); else off to the login page."""
    board = dashboard(request)
    session = session_of(request)
    if session is None or session.visitor:
        raise LoginRequired()
    with board.ws.uow.session() as s:
        user = sessions.user_of(s, session.token, now=board.ws.now(), idle=board.lifetime.idle)
    if user is None:
        raise LoginRequired()
    request.state.session = session
    # read here, before the page's own session (SQLite has one writer)
    request.state.currency = board.currency()
    if request.url.path.startswith(SENDING):
        request.state.sandboxed = board.sandboxed()
    return user


def require(role: str):
    """A dependency: the current user, who must have `role` or a stronger one."""

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if not allowed(user.role, role):
            raise Forbidden(role)
        return user

    return check


Viewer = Annotated[User, Depends(require("viewer"))]
Marketer = Annotated[User, Depends(require("marketer"))]  # for the marketing actions to come
Admin = Annotated[User, Depends(require("admin"))]
BoardDep = Annotated[Dashboard, Depends(dashboard)]


async def checked_form(request: Request):
    """The POSTed form, after checking its CSRF token against the session's."""
    form = await request.form()
    if not csrf_matches(session_of(request), form.get("csrf_token")):
        raise CsrfFailed()
    return form


def render(request: Request, name: str, *, user: User | None, status_code: int = 200, **context) -> HTMLResponse:
    session = getattr(request.state, "session", None) or session_of(request)
    context.update(user=user, csrf_token=session.csrf if session else "", path=request.url.path)
    context.setdefault("sandboxed", getattr(request.state, "sandboxed", None) if user is not None else None)
    context.setdefault("currency", getattr(request.state, "currency", None))
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(HEADERS)
    return response


def missing(request: Request, user: User | None, what: str, name: str) -> HTMLResponse:
    """The 404 page for a `what` (journey, segment...) named `name` that does not exist."""
    return render(
        request,
        "error.html",
        user=user,
        status_code=404,
        title=f"No such {what}",
        message=f"There is no {what} named {name}.",
    )


def json_answer(body: Any, status_code: int = 200) -> JSONResponse:
    """A JSON answer to a page's script, with the dashboard's headers."""
    response = JSONResponse(body, status_code=status_code)
    response.headers.update(HEADERS)
    return response


def redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(HEADERS)
    return response
