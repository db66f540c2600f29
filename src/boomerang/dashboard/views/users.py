"""User management, for admins: list, create, disable."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from boomerang.auth.models import ROLES
from boomerang.auth.users import create_user, disable_user, list_users
from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views.common import Admin, BoardDep, checked_form, redirect, render

router = APIRouter()


def _page(request: Request, user, board, *, status_code: int = 200, **context) -> Response:
    with board.ws.uow.session() as s:
        people = list_users(s)
    return render(request, "users.html", user=user, people=people, roles=ROLES, status_code=status_code, **context)


@router.get("/users")
def users_page(request: Request, user: Admin, board: BoardDep) -> Response:
    return _page(request, user, board)


@router.post("/users")
async def create(request: Request, user: Admin, board: BoardDep) -> Response:
    form = await checked_form(request)
    username, role = str(form.get("username", "")), str(form.get("role", ""))
    password = str(form.get("password") or "") or None
    try:
        with board.ws.uow.session() as s:
            made, plaintext = create_user(s, username=username, role=role, password=password, now=board.ws.now())
    except BoomerangError as exc:
        return _page(
            request,
            user,
            board,
            status_code=exc.status_code,
            errors=exc.errors,
            form={"username": username, "role": role},
        )
    # The password is shown this once (generated ones are not stored anywhere in plaintext).
    return _page(
        request,
        user,
        board,
        created={"username": made.username, "role": made.role, "password": plaintext if password is None else None},
    )


@router.post("/users/{username}/disable")
async def disable(request: Request, username: str, user: Admin, board: BoardDep) -> Response:
    await checked_form(request)
    if username == user.username:
        return _page(
            request,
            user,
            board,
            status_code=400,
            errors=[{"field": "username", "reason": "you cannot disable yourself"}],
        )
    try:
        with board.ws.uow.session() as s:
            disable_user(s, username, now=board.ws.now())
    except BoomerangError as exc:
        return _page(request, user, board, status_code=exc.status_code, errors=exc.errors)
    return redirect("/users")
