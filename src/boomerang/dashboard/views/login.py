"""Logging in and out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from boomerang.auth.users import authenticate
from boomerang.dashboard.auth import LoginRequired, clear_cookie, new_session, safe_next, set_cookie
from boomerang.dashboard.views.common import BoardDep, checked_form, current_user, redirect, render, session_of
from boomerang.dashboard.views.overview import overview

router = APIRouter()


def _login_page(
    request: Request, board, *, next_: str, error: str | None = None, username: str = "", status_code: int = 200
) -> Response:
    session = session_of(request)
    fresh = session is None or session.user_id is not None
    if fresh:  # a visitor gets a session of their own, holding only the CSRF token of the form
        session = new_session(board.signer)
        request.state.session = session
    response = render(
        request, "login.html", user=None, next=next_, error=error, username=username, status_code=status_code
    )
    if fresh:
        set_cookie(response, request, board.signer, session)
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
    with board.ws.uow.session() as s:
        user = authenticate(s, username, password)
    if user is None:
        return _login_page(
            request,
            board,
            next_=target,
            error="Wrong username or password, or the user is disabled.",
            username=username,
            status_code=401,
        )
    response = redirect(target)
    set_cookie(response, request, board.signer, new_session(board.signer, user))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    response = redirect("/login")
    clear_cookie(response)
    return response
