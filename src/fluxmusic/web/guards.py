"""ASGI guards in front of the whole app (UI and API): the bearer token and the body-size cap.

**Token.** With a token, every request needs ``Authorization: Bearer TOKEN``; otherwise it gets a 401
(JSON for API clients; for a browser asking for a page, a 401 page that asks for the token). Submitting
that form sets an ``HttpOnly``, ``SameSite=Strict`` session cookie (an HMAC of the token, never the token
itself) that stands in for the header on the browser's later requests. Tokens are compared in constant
time.

**Body size.** A ``Content-Length`` over the cap is refused (413) before anything is read; a body
without one (chunked) is counted as it arrives and refused as soon as it passes the cap.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from fluxmusic.web.errors import ApiError, error_body

__all__ = ["BodyLimit", "TokenGuard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "fluxmusic_session"
LOGIN_PATH = "/login"


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


async def _send_json(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    await _send(send, status, json.dumps(error_body(status, message)).encode(), "application/json", headers)


async def _send(
    send: Send, status: int, body: bytes, media_type: str, headers: dict[str, str] | None = None
) -> None:
    items = [(b"content-type", media_type.encode()), (b"content-length", str(len(body)).encode())]
    items += [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": items})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(ApiError):
    """A request body over the cap (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over this server's limit of {limit} bytes")


class BodyLimit:
    """Refuse request bodies over ``limit_for(scope)`` bytes with 413."""

    def __init__(self, app: App, limit_for: Callable[[Scope], int]) -> None:
        self.app, self.limit_for = app, limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope)
        declared = _header(scope, b"content-length")
        if declared and (not declared.isdigit() or int(declared) > limit):
            return await _send_json(send, 413, BodyTooLarge(limit).message)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fluxmusic: token needed</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
input{{width:100%;padding:.5rem;margin:.5rem 0;box-sizing:border-box}}button{{padding:.5rem 1rem}}
.error{{color:#b00020}}</style></head>
<body><h1>fluxmusic</h1><p>This server needs its access token (<code>fluxmusic serve --token</code>).</p>
<p class="error">{error}</p>
<form method="post" action="{action}"><label>Token <input type="password" name="token" id="token"
 autocomplete="current-password" autofocus required></label><button type="submit">Open</button></form>
</body></html>"""


class TokenGuard:
    """Require ``Authorization: Bearer TOKEN`` (or the cookie its login page sets) on every request."""

    def __init__(self, app: App, token: str) -> None:
        self.app, self.token = app, token.encode()
        self.session = hmac.new(self.token, b"fluxmusic-session", hashlib.sha256).hexdigest()

    def _allowed(self, scope: Scope) -> bool:
        auth = _header(scope, b"authorization")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token):
            return True
        for part in _header(scope, b"cookie").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(value.encode(), self.session.encode()):
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._allowed(scope):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return None
        root = scope.get("root_path", "")
        if scope["path"] == LOGIN_PATH and scope["method"] == "POST":
            return await self._login(scope, receive, send, root)
        headers = {"WWW-Authenticate": 'Bearer realm="fluxmusic"'}
        if scope["method"] == "GET" and "text/html" in _header(scope, b"accept"):
            page = LOGIN_PAGE.format(error="", action=html.escape(root + LOGIN_PATH))
            return await _send(send, 401, page.encode(), "text/html; charset=utf-8", headers)
        await _send_json(send, 401, "this server needs Authorization: Bearer TOKEN", headers)
        return None

    async def _login(self, scope: Scope, receive: Receive, send: Send, root: str) -> None:
        body = b""
        while len(body) <= 4096:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        given = parse_qs(body[:4096].decode("latin-1")).get("token", [""])[0]
        if hmac.compare_digest(given.encode("latin-1"), self.token):
            cookie = f"{COOKIE}={self.session}; HttpOnly; SameSite=Strict; Path={root or '/'}"
            return await _send(send, 303, b"", "text/plain", {"Location": root + "/", "Set-Cookie": cookie})
        page = LOGIN_PAGE.format(error="Wrong token.", action=html.escape(root + LOGIN_PATH))
        return await _send(send, 401, page.encode(), "text/html; charset=utf-8")
