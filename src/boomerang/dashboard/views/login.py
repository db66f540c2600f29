"""Logging in and out; wrong passwords are counted, and too many pause logging in for that username or address."""

from __future__ import annotations

import math
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from boomerang.auth import sessions, throttle
from boomerang.auth.models import User
from boomerang.auth.users import authenticate
from boomerang.dashboard.auth import LoginRequired, clear_cookie, safe_next, set_cookie
from boomerang.dashboard.views.common import (
    BoardDep,
    Dashboard,
    checked_form,
    current_user,
    redirect,
    render,
    session_of,
)
from boomerang.dashboard.views.overview import overview

router = APIRouter()


class LoginPaused(Exception):
    """Too many wrong passwords for this username or from this address: no password is checked for a while."""

    def __init__(self, wait: timedelta) -> None:
        self.seconds = max(1, math.ceil(wait.total_seconds()))
        minutes = math.ceil(self.seconds / 60)
        later = f"{self.seconds} seconds" if self.seconds < 60 else f"{minutes} minute{'s' if minutes > 1 else ''}"
        super().__init__(
            f"Too many wrong passwords for this user or from this address: logging in is paused. Try again in {later}."
        )

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.seconds)}


def _limits(request: Request, board: Dashboard, username: str) -> list[throttle.Limit]:
    """The username's limit first (a right password resets it), then the address's."""
    settings = board.ws.settings.dashboard
    address = request.client.host if request.client else "unknown"
    return [
        throttle.Limit(board.keys.throttle_key("user", username.strip().lower()), settings.login_failures_per_user),
        throttle.Limit(board.keys.throttle_key("address", address), settings.login_failures_per_ip),
    ]


def check_password(request: Request, board: Dashboard, username: str, password: str) -> User | None:
    """The active user with this name and password, or None; counted by the throttle, and LoginPaused while
    it pauses this username or address (then the password is not even looked at)."""
    limits = _limits(request, board, username)
    window = timedelta(minutes=board.ws.settings.dashboard.login_window_minutes)
    now = board.ws.now()
    with board.ws.uow.session() as s:
        wait = throttle.paused_for(s, limits, now=now, window=window)
        if wait is not None:
            raise LoginPaused(wait)
        tried = throttle.attempt(s, [limit.key for limit in limits], now=now, window=window)
    with board.ws.uow.session() as s:
        user = authenticate(s, username, password)
        if user is not None:
            throttle.forgive(s, tried, reset=limits[0].key)
    return user


def _login_page(
    request: Request,
    board: Dashboard,
    *,
    next_: str,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    session = session_of(request)
    fresh = session is None or not session.visitor
    if fresh:  # a visitor gets a token of their own, carrying only the CSRF token of the form
        session = board.keys.visitor()
        request.state.session = session
    response = render(
        request, "login.html", user=None, next=next_, error=error, username=username, status_code=status_code
    )
    response.headers.update(headers or {})
    if fresh:
        set_cookie(response, request, session, max_age=board.cookie_age)
    return response


@router.get("/login")
def login_form(request: Request, board: BoardDep, next: str | None = None) -> Response:
    try:
        current_user(request)
    except LoginRequired:
        if board.warm:  # by the time the password is typed, the overview is ready
            board.analytics.warm(lambda: overview(board.analytics))
        return _login_page(request, board, next_=safe_next(next))
    return redirect(safe_next(next))  # already logged in


@router.post("/login")
async def login(request: Request, board: BoardDep) -> Response:
    form = await checked_form(request)
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next") or "/"))
    try:
        user = check_password(request, board, username, password)
    except LoginPaused as paused:
        page = {"next_": target, "username": username, "status_code": 429, "headers": paused.headers}
        return _login_page(request, board, error=str(paused), **page)
    if user is None:
        error = "Wrong username or password, or the user is disabled."
        return _login_page(request, board, next_=target, error=error, username=username, status_code=401)
    with board.ws.uow.session() as s:
        token = sessions.start(s, user, now=board.ws.now(), lifetime=board.lifetime)
    response = redirect(target)
    set_cookie(response, request, board.keys.session(token), max_age=board.cookie_age)
    return response


@router.post("/logout")
async def logout(request: Request, board: BoardDep) -> Response:
    await checked_form(request)
    session = session_of(request)
    if session is not None and not session.visitor:
        with board.ws.uow.session() as s:
            sessions.end(s, session.token, now=board.ws.now())
    response = redirect("/login")
    clear_cookie(response)
    return response
