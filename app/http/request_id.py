"""Request IDs tie a client's report to the server's log lines.

Every response, from any route and including 404s, 405s and crashes, carries `X-Request-ID`
(app.http.edge gives it), taken from the request when it is safe to echo and log, otherwise
generated.
"""

from __future__ import annotations

import os
import re

from starlette.requests import HTTPConnection
from starlette.types import Scope, Send

from app.http import encoding
from app.http.errors import INTERNAL_MESSAGE, ErrorCode

HEADER = "X-Request-ID"
HEADER_KEY = HEADER.lower().encode("latin-1")
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")
STATE_KEY = "request_id"


def request_id_from(header_value: str | None) -> str:
    """The client's ID when it is safe to log and echo, otherwise a fresh one (128 random
    bits in hex, as a UUID4's without building one)."""
    if header_value and _WELL_FORMED.match(header_value):
        return header_value
    return _random.next_id()


class _RandomBits:
    """The operating system's random bytes, read 4 KiB at a time rather than with a system call
    for every request; a forked process starts on its own (os.register_at_fork)."""

    _CHUNK = 4096
    _ID_BYTES = 16

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0

    def next_id(self) -> str:
        offset = self._offset
        if offset + self._ID_BYTES > len(self._buffer):
            self._buffer, offset = os.urandom(self._CHUNK), 0
        self._offset = offset + self._ID_BYTES
        return self._buffer[offset : offset + self._ID_BYTES].hex()

    def forget(self) -> None:
        self._buffer, self._offset = b"", 0


_random = _RandomBits()
os.register_at_fork(after_in_child=_random.forget)


def request_id_in(scope: Scope) -> str:
    """The ID the edge gave this request (or one from its header, without the edge)."""
    state = scope.get("state")
    if isinstance(state, dict):
        given = state.get(STATE_KEY)
        if isinstance(given, str):
            return given
    return request_id_from(header_value(scope))


def request_id_of(request: HTTPConnection) -> str:
    return request_id_in(request.scope)


def header_value(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == HEADER_KEY:
            return str(value.decode("latin-1"))
    return None


async def answer_crash(send: Send, request_id: str) -> None:
    """A crash before any response started, answered in the API's error shape rather than by
    Starlette's plain-text 500 (app.http.edge, which has logged it)."""
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
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
