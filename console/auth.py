"""Who may see the console, and who may act.

With ``console.token`` set, every request needs ``Authorization: Bearer <token>`` or the login
form's cookie. The cookie holds a digest of the token, never the token, and every comparison is
constant-time. Actions (POST) also need the CSRF token the pages embed, unless the request
carries the Bearer header itself (a browser never adds that header on its own).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Any

from starlette.requests import Request

COOKIE = "hookstream_console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self._key = secrets.token_bytes(32)
        """Per process: a restart signs everyone out, which is what a changed token needs too."""

    @property
    def required(self) -> bool:
        return self.token is not None

    def session_value(self) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), b"hookstream-console-session", hashlib.sha256).hexdigest()

    def token_matches(self, offered: str) -> bool:
        return self.token is not None and hmac.compare_digest(offered.encode(), self.token.encode())

    def how(self, request: Request) -> str | None:
        """``"bearer"`` or ``"cookie"`` for an authenticated request (``"open"`` without a
        token), None for one that is not."""
        if self.token is None:
            return "open"
        scheme, _, offered = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(offered.strip()):
            return "bearer"
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode(), self.session_value().encode()):
            return "cookie"
        return None

    def csrf_token(self) -> str:
        return hmac.new(self._key, b"csrf", hashlib.sha256).hexdigest()

    def csrf_ok(self, request: Request, form: Any) -> bool:
        if self.how(request) == "bearer":
            return True
        offered = request.headers.get(CSRF_HEADER) or str(form.get(CSRF_FIELD, ""))
        return hmac.compare_digest(offered.encode(), self.csrf_token().encode())

    def who(self, request: Request) -> str:
        """For the action log: how the caller authenticated and from where (never the token)."""
        client = request.client.host if request.client else "?"
        return f"{self.how(request) or 'unauthenticated'} from {client}"
