"""The process's open WebSockets: counted for /metrics, and told to go away at shutdown.

Pure ASGI around the WebSocket route: it sees each socket's `send`, so at shutdown it can close
every accepted socket with 1001 (going away) itself, whatever protocol handler owns the socket,
and clients reconnect to another process. uvicorn would otherwise close them with 1012 only after
the listeners are gone.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics

GOING_AWAY = 1001
log = logging.getLogger("app.http")


class OpenSockets:
    def __init__(self) -> None:
        self._accepted: dict[int, Send] = {}
        self._empty = asyncio.Event()
        self._empty.set()
        self.closing = False

    def __len__(self) -> int:
        return len(self._accepted)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        return _Tracked(self, app)

    def opened(self, key: int, send: Send) -> bool:
        """A socket is being accepted; False refuses it (the process is shutting down)."""
        if self.closing:
            return False
        self._accepted[key] = send
        self._empty.clear()
        metrics.WEBSOCKETS.inc()
        return True

    def closed(self, key: int) -> None:
        if self._accepted.pop(key, None) is not None:
            metrics.WEBSOCKETS.dec()
            if not self._accepted:
                self._empty.set()

    async def go_away(self, grace: float) -> None:
        """Close every accepted socket with 1001 and wait (up to `grace` seconds) for their handlers
        to finish; new handshakes are refused from now on."""
        self.closing = True
        sends = list(self._accepted.values())
        if sends:
            log.info("closing %d WebSocket(s) with 1001 (going away)", len(sends))
        for send in sends:
            with suppress(Exception):  # the peer may be gone already
                await send(
                    {"type": "websocket.close", "code": GOING_AWAY, "reason": "server restarting"}
                )
        with suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._empty.wait()


class _Tracked:
    """The ASGI wrapper (a class: Starlette takes a plain function for a WebSocket endpoint)."""

    def __init__(self, sockets: OpenSockets, app: ASGIApp) -> None:
        self.sockets = sockets
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        key = id(scope)
        sockets = self.sockets

        async def send_tracked(message: Message) -> None:
            if message["type"] == "websocket.accept" and not sockets.opened(key, send):
                # Shutting down: refuse (403) so the client goes to another process.
                message = {"type": "websocket.close", "code": GOING_AWAY}
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        finally:
            sockets.closed(key)
