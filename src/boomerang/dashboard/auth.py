"""Dashboard sessions as the browser sees them: a cookie holding a random token, CSRF tokens, roles.

A logged-in browser's cookie holds only the token of a session kept in the store (`auth.sessions`):
logging out, disabling the user or changing their password ends it there, so an old cookie is worth
nothing. A visitor who is not logged in gets a token of their own (`v.` + random), which is never
stored: it only carries the CSRF token of the login form. Every CSRF token is derived from the
cookie's token with a key made from the workspace secret, so pages put it in their forms and nothing
keeps it. The same key hashes the usernames and addresses the login throttle counts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from boomerang.auth.models import ROLES

COOKIE = "boomerang_session"
VISITOR = "v."
_TOKEN = re.compile(r"(v\.)?[A-Za-z0-9_-]{32,64}")


class LoginRequired(Exception):
    """No live session: the dashboard sends the visitor to the login page."""


class Forbidden(Exception):
    """Logged in, but the role does not allow this page or action."""

    def __init__(self, needed: str) -> None:
        super().__init__(f"this needs the {needed} role")
        self.needed = needed


class CsrfFailed(Exception):
    """A POST whose CSRF token is missing or does not match the session's."""


@dataclass(frozen=True)
class Session:
    """A browser's cookie: its token and the CSRF token that goes with it. Whether the token is a live
    login is for the store to say (`views.common.current_user`)."""

    token: str
    csrf: str

    @property
    def visitor(self) -> bool:
        return self.token.startswith(VISITOR)


class Keys:
    """The dashboard's keys, derived from the workspace secret: CSRF tokens and the login throttle's keys."""

    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"boomerang-dashboard-session\0" + secret).digest()

    def _mac(self, purpose: str, text: str) -> bytes:
        return hmac.digest(self._key, f"{purpose}\0{text}".encode(), "sha256")

    def session(self, token: str) -> Session:
        csrf = base64.urlsafe_b64encode(self._mac("csrf", token)[:24]).decode()
        return Session(token=token, csrf=csrf)

    def read(self, value: str | None) -> Session | None:
        """The session a cookie names, or None for no cookie or one that cannot be a token."""
        if not value or not _TOKEN.fullmatch(value):
            return None
        return self.session(value)

    def visitor(self) -> Session:
        """A fresh token for a visitor who is not logged in (a new CSRF token too)."""
        return self.session(VISITOR + secrets.token_urlsafe(24))

    def throttle_key(self, kind: str, value: str) -> str:
        """What the login throttle counts for a username or an address: never the text itself."""
        return self._mac(f"login-{kind}", value).hex()


def set_cookie(response: Response, request: Request, session: Session, *, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=max_age,
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
