"""uvicorn, as `python -m app serve` runs it: what a slow or oversized client may hold.

uvicorn bounds idle keep-alive connections but not a request whose headers trickle in: a client
sending one header line a minute holds a connection (and a file descriptor) forever. The HTTP
protocol here closes a connection whose request headers are not complete within
`HEADER_READ_TIMEOUT` seconds; slow bodies are bounded in the app (app.http.limits), and
WebSocket messages are held to the HTTP body limit.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings

log = logging.getLogger("app.http.server")


class _HeaderTimeoutProtocol(HttpToolsProtocol):
    """httptools' protocol with a deadline on each request's headers."""

    header_timeout = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.info("closed %s: request headers incomplete after %g s", client, self.header_timeout)
        self.transport.close()


def http_protocol(header_timeout: float) -> type[HttpToolsProtocol]:
    return type(
        "HeaderTimeoutProtocol", (_HeaderTimeoutProtocol,), {"header_timeout": header_timeout}
    )


@functools.cache
def _header_timeout_from_environment() -> float:
    return Settings.from_env().graphql.header_read_timeout


class WorkerHeaderTimeoutProtocol(_HeaderTimeoutProtocol):
    """The protocol each of several workers (WORKERS > 1) imports by name: uvicorn hands its
    settings to workers by pickling them, which a class made at run time does not survive. A
    worker reads HEADER_READ_TIMEOUT from the environment it inherits, as it builds its app."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = _header_timeout_from_environment()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn settings `serve` adds to host, port and proxy headers."""
    return {
        "http": f"{__name__}:WorkerHeaderTimeoutProtocol"
        if settings.operations.workers > 1
        else http_protocol(settings.graphql.header_read_timeout),
        # A WebSocket message may be as large as a request body, no larger (uvicorn: 16 MiB).
        "ws_max_size": settings.graphql.max_body_bytes,
    }
