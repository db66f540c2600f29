"""Dashboard sessions: a signed cookie (HMAC-SHA256 with a per-workspace secret), CSRF tokens, roles.

The cookie holds the user id, a CSRF token, when it was issued and a fingerprint of the user's
password hash, so that a new password ends every older session; the user is read on each request,
so a disabled user is out at once. Visitors who are not logged in get a cookie with a CSRF token
only, which protects the login form itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from fastapi import Request
from fastapi.responses import Response

from boomerang.auth.models import ROLES, User

COOKIE = "boomerang_session"
MAX_AGE = 12 * 3600


class LoginRequired(Exception):
    """No valid session: the dashboard sends the visitor to the login page."""


class Forbidden(Exception):
    """Logged in, but the role does not allow this page or action."""

    def __init__(self, needed: str) -> None:
        super().__init__(f"this needs the {needed} role")
        self.needed = needed


class CsrfFailed(Exception):
    """A POST whose CSRF token is missing or does not match the session's."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    csrf: str
    user_id: str | None = None
    issued: int = 0
    password: str | None = None  # fingerprint of the password hash the session was made with


class Signer:
    """Signs and checks session cookies."""

    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"boomerang-dashboard-session\0" + secret).digest()

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def dumps(self, session: Session) -> str:
        body = _b64(orjson.dumps({"c": session.csrf, "u": session.user_id, "i": session.issued, "p": session.password}))
        return f"{body}.{self._mac(body)}"

    def loads(self, value: str | None, *, now: float | None = None) -> Session | None:
        """The session in a cookie, or None when it is missing, tampered with or expired."""
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        try:
            data = orjson.loads(_unb64(body))
            session = Session(csrf=str(data["c"]), user_id=data["u"], issued=int(data["i"]), password=data["p"])
        except (ValueError, KeyError, TypeError):
            return None
        if (now if now is not None else time.time()) - session.issued > MAX_AGE:
            return None
        return session

    def password_fingerprint(self, password_hash: str) -> str:
        return _b64(hmac.new(self._key, b"password\0" + password_hash.encode(), hashlib.sha256).digest()[:12])


def new_session(signer: Signer, user: User | None = None) -> Session:
    """A fresh session (a new CSRF token too: logging in never keeps the token of the anonymous visit)."""
    return Session(
        csrf=secrets.token_urlsafe(24),
        user_id=user.id if user else None,
        issued=int(time.time()),
        password=signer.password_fingerprint(user.password_hash) if user else None,
    )


def set_cookie(response: Response, request: Request, signer: Signer, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        signer.dumps(session),
        max_age=MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")


def allowed(role: str, needed: str) -> bool:
    """Whether `role` may do what `needed` may (viewer < marketer < admin)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def csrf_matches(session: Session | None, token: str | None) -> bool:
    if session is None or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())


def safe_next(target: str | None) -> str:
    """A local path to go to after logging in; anything that could leave the site becomes `/`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target
