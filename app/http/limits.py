"""Request body size, enforced for every route before a handler holds the whole body."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http import encoding
from app.http.errors import ErrorCode


class _TooLarge(Exception):
    pass


def _too_large_body(limit: int) -> bytes:
    message = f"The request body is larger than {limit} bytes, the limit (MAX_BODY_BYTES)"
    return encoding.dumps(
        {"errors": [{"message": message, "extensions": {"code": ErrorCode.BAD_USER_INPUT}}]}
    )


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413: by Content-Length before reading, otherwise as
    the streamed (e.g. chunked) body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = _too_large_body(self.max_bytes)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
