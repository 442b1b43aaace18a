"""Request IDs tie a client's report to the server's log lines.

`RequestIdMiddleware` is the outermost layer: every response, from any route and including 404s,
405s and crashes, carries `X-Request-ID`, taken from the request when it is safe to echo and log,
otherwise generated.
"""

from __future__ import annotations

import logging
import os
import re

from starlette.requests import ClientDisconnect, HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http import encoding
from app.http.errors import INTERNAL_MESSAGE, ErrorCode

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode("latin-1")
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")
STATE_KEY = "request_id"

log = logging.getLogger("app.http")


def request_id_from(header_value: str | None) -> str:
    """The client's ID when it is safe to log and echo, otherwise a fresh one (128 random
    bits in hex, as a UUID4's without building one)."""
    if header_value and _WELL_FORMED.match(header_value):
        return header_value
    return os.urandom(16).hex()


def request_id_in(scope: Scope) -> str:
    """The ID the middleware gave this request (or one from its header, without the middleware)."""
    state = scope.get("state")
    if isinstance(state, dict):
        given = state.get(STATE_KEY)
        if isinstance(given, str):
            return given
    return request_id_from(_header(scope))


def request_id_of(request: HTTPConnection) -> str:
    return request_id_in(request.scope)


def _header(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == _HEADER_KEY:
            return str(value.decode("latin-1"))
    return None


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(_header(scope))
        scope.setdefault("state", {})[STATE_KEY] = request_id
        header = (_HEADER_KEY, request_id.encode("latin-1"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept"):
                started = True
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER_KEY]
                message["headers"] = [*headers, header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client left before its request was read: nobody is waiting for an answer,
            # and nothing went wrong here.
            log.info("client went away before its request was read (request %s)", request_id)
        except Exception:
            log.exception("unhandled error (request %s)", request_id)
            if started or scope["type"] != "http":
                raise
            # Answered here, in the API's error shape, rather than by Starlette's plain-text 500.
            body = encoding.dumps(
                {
                    "errors": [
                        {
                            "message": INTERNAL_MESSAGE,
                            "extensions": {
                                "code": ErrorCode.INTERNAL_SERVER_ERROR.value,
                                "requestId": request_id,
                            },
                        }
                    ]
                }
            )
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})
