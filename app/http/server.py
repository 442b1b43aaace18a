"""uvicorn, as `python -m app serve` runs it: what a slow or oversized client may hold.

uvicorn bounds idle keep-alive connections but not a request whose headers trickle in: a client
sending one header line a minute holds a connection (and a file descriptor) forever. The HTTP
protocol here closes a connection whose request headers are not complete within
`HEADER_READ_TIMEOUT` seconds, and answers 431 to headers over `MAX_HEADER_BYTES`; slow bodies
are bounded in the app (app.http.limits), and WebSocket messages are held to the HTTP body limit.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings

log = logging.getLogger("app.http.server")


# The most bytes a request line and headers may take. httptools, unlike uvicorn's h11 protocol
# (h11_max_incomplete_event_size), sets no bound, and uvicorn gathers the URL by concatenation,
# so within the header deadline an anonymous client could send megabytes of URL for seconds of
# CPU (16 MB cost ~0.3 s, growing with the square). 256 KiB holds a GET carrying the longest
# query (MAX_QUERY_LENGTH, percent-encoded) and the largest credentials with room to spare.
MAX_HEADER_BYTES = 256 * 1024
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 42\r\n"
    b"connection: close\r\n\r\n"
    b"The request line and headers are too large"
)


class _HeaderTimeoutProtocol(HttpToolsProtocol):
    """httptools' protocol with a deadline and a size limit on each request's headers."""

    header_timeout = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _reading_headers = True
    _header_bytes = 0
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # what the client still sends after its 431 is read and dropped
        if self._reading_headers:
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._refuse_too_large()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # What arrives next is the next request's line and headers.
        self._reading_headers = True
        self._header_bytes = 0

    def on_headers_complete(self) -> None:
        self._disarm()
        self._reading_headers = False
        super().on_headers_complete()

    def _refuse_too_large(self) -> None:
        self._disarm()
        self._reading_headers = False
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.info("refused %s: request headers over %d bytes", client, MAX_HEADER_BYTES)
        self._refused = True
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(_TOO_LARGE)
        # Closing at once, with the client's bytes still arriving, would reset the connection
        # and lose the answer: the write side is shut, what arrives is dropped until the client
        # closes, or for one second.
        if transport.can_write_eof():
            transport.write_eof()
            self.loop.call_later(1.0, transport.close)
        else:
            transport.close()

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
        # No permessage-deflate: a subscription's event is encoded once for all its subscribers,
        # and compressing it again for each socket (its own zlib context) cost more CPU per
        # delivery than everything else together, for payloads of a few hundred bytes.
        "ws_per_message_deflate": False,
    }
