"""One's own account: changing one's password, which ends one's other sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from boomerang.auth.users import set_password
from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views.common import BoardDep, Viewer, checked_form, redirect, render, session_of
from boomerang.dashboard.views.login import LoginPaused, check_password

router = APIRouter()


def _page(request: Request, user, *, status_code: int = 200, **context) -> Response:
    return render(request, "account.html", user=user, status_code=status_code, **context)


def _refused(request: Request, user, reason: str, *, status_code: int = 400, headers=None) -> Response:
    response = _page(request, user, status_code=status_code, errors=[{"field": "password", "reason": reason}])
    response.headers.update(headers or {})
    return response


@router.get("/account")
def account(request: Request, user: Viewer, changed: bool = False) -> Response:
    return _page(request, user, changed=changed)


@router.post("/account/password")
async def change_password(request: Request, user: Viewer, board: BoardDep) -> Response:
    form = await checked_form(request)
    current, new = str(form.get("current", "")), str(form.get("password", ""))
    if new != str(form.get("repeat", "")):
        return _refused(request, user, "the new password and its repetition differ")
    try:
        checked = check_password(request, board, user.username, current)
    except LoginPaused as paused:
        return _refused(request, user, str(paused), status_code=429, headers=paused.headers)
    if checked is None:
        return _refused(request, user, "the current password is wrong")
    try:
        with board.ws.uow.session() as s:
            set_password(s, username=user.username, password=new, now=board.ws.now(), keep=session_of(request).token)
    except BoomerangError as exc:
        return _page(request, user, status_code=exc.status_code, errors=exc.errors)
    return redirect("/account?changed=1")
