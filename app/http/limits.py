"""Request body size and pace, and WebSocket message size, for every route.

A body over MAX_BODY_BYTES is refused with 413 before a handler holds it; a body whose next chunk
takes longer than BODY_READ_TIMEOUT gets 408, so a client trickling bytes cannot hold a request
(and its connection) open; a WebSocket message over the same size closes its socket (1009), so
a socket is no way around the body limit.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.errors import ErrorCode


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


MESSAGE_TOO_BIG = 1009


def _too_large_body(limit: int) -> bytes:
    return _error_body(f"The request body is larger than {limit} bytes, the limit (MAX_BODY_BYTES)")


def _error_body(message: str) -> bytes:
    return json.dumps(
        {"errors": [{"message": message, "extensions": {"code": ErrorCode.BAD_USER_INPUT}}]}
    ).encode()


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413: by Content-Length before reading, otherwise as
    the streamed (e.g. chunked) body passes the limit; and a body that stalls with 408."""

    def __init__(self, max_bytes: int, read_timeout: float = 10.0) -> None:
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout

    async def http(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Run `app` on an HTTP request with its body held to the limits."""
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        received = 0
        started = False
        complete = False

        async def counting_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body: waiting for a disconnect is no slow read
                return await receive()
            try:
                async with asyncio.timeout(self.read_timeout):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
                complete = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(send)
        except _TooSlow:
            if started:
                raise
            await self._refuse(
                send,
                408,
                f"The request body did not arrive within {self.read_timeout:g} s of its last "
                "part (BODY_READ_TIMEOUT)",
            )

    def websocket_receive(self, receive: Receive, send: Send) -> Receive:
        """`receive` for a WebSocket: a message over the limit closes the socket (1009)."""

        async def sized_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                size = len(message.get("bytes") or b"") if text is None else len(text)
                if text is not None and size * 4 > self.max_bytes:
                    size = len(text.encode("utf-8", "surrogatepass"))
                if size > self.max_bytes:
                    reason = f"Messages are limited to {self.max_bytes} bytes (MAX_BODY_BYTES)"
                    await send(
                        {"type": "websocket.close", "code": MESSAGE_TOO_BIG, "reason": reason}
                    )
                    return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}
            return message

        return sized_receive

    async def _refuse(self, send: Send, status: int = 413, message: str | None = None) -> None:
        body = _too_large_body(self.max_bytes) if message is None else _error_body(message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """`BodyLimit` as a layer, for every route but the edge's own /graphql (app.http.edge)."""

    def __init__(self, app: ASGIApp, limit: BodyLimit) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.limit.http(self.app, scope, receive, send)
        elif scope["type"] == "websocket":
            await self.app(scope, self.limit.websocket_receive(receive, send), send)
        else:
            await self.app(scope, receive, send)
