"""`python -m app serve`: uvicorn, in one or WORKERS processes, with a shutdown losing no request.

On SIGTERM (or SIGINT) each process, in order:

1. stops accepting: connections the kernel has already accepted but uvicorn has not yet (the
   listen backlog) are taken and served rather than reset when the listener closes; new ones are
   refused, which a proxy retries on another process even for a POST (nothing was sent);
2. closes its WebSockets with 1001 (going away) so clients reconnect elsewhere at once;
3. gives connections that have just been accepted a moment to send their request, so a request
   already on the wire is answered, not cut off;
4. lets uvicorn finish in-flight requests, for up to SHUTDOWN_GRACE_SECONDS, then cancels what is
   left;
5. runs the application's shutdown: background work (dispatcher, relay, broker) stops last.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors import multiprocess

log = logging.getLogger("app.server")

# How long connections accepted just before the signal may take to start their request.
REQUEST_START_GRACE = 0.5


class GracefulServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        log.info("stopping: no new connections; finishing what is in flight")
        await self._stop_accepting()
        state = _app_state(self.config.loaded_app)
        grace = self.config.timeout_graceful_shutdown or 0.0
        if state is not None:
            await state.sockets.go_away(grace)
        await self._let_new_connections_start()
        await super().shutdown(sockets)

    async def _stop_accepting(self) -> None:
        loop = asyncio.get_running_loop()
        waiting: list[socket.socket] = []
        for server in self.servers:
            for listener in server.sockets:
                waiting.extend(_accept_backlog(listener.fileno()))
            server.close()
        for connection in waiting:
            await loop.connect_accepted_socket(self._protocol, sock=connection)
        if waiting:
            log.info("serving %d connection(s) accepted before the shutdown", len(waiting))

    def _protocol(self) -> asyncio.Protocol:
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol

    async def _let_new_connections_start(self) -> None:
        """uvicorn closes a connection that has no request in progress at once. One accepted a
        moment ago may have its request on the wire; closing it would reset that request, and a
        proxy does not retry a POST it has sent. Such connections get a moment to start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REQUEST_START_GRACE
        # uvicorn's connections signal nothing when a request starts: polled, within a bound.
        while loop.time() < deadline and any(  # noqa: ASYNC110
            getattr(connection, "cycle", True) is None
            for connection in self.server_state.connections
        ):
            await asyncio.sleep(0.01)


def _accept_backlog(fd: int) -> list[socket.socket]:
    """Take every connection waiting in a listener's backlog, without blocking."""
    listener = socket.socket(fileno=os.dup(fd))
    accepted: list[socket.socket] = []
    try:
        listener.setblocking(False)
        while True:
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            connection.setblocking(False)
            accepted.append(connection)
    finally:
        listener.close()
    return accepted


def _app_state(app: Any) -> Any:
    """The application's AppState under uvicorn's wrappers (proxy headers, logging)."""
    while app is not None and not isinstance(app, Starlette):
        app = getattr(app, "app", None)
    if app is None:
        return None
    return getattr(app.state, "og", None)


class _Worker(multiprocess.Process):
    """A worker process running GracefulServer (uvicorn's would run a plain Server)."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = GracefulServer(config=self.config)
        return self._server


def run(config: uvicorn.Config) -> None:
    """Serve with `config` in this process, or in `config.workers` processes sharing one socket."""
    if config.workers > 1:
        # The supervisor starts (and restarts) workers through this module-level name.
        multiprocess.Process = _Worker  # type: ignore[misc]
        sock = config.bind_socket()
        multiprocess.Multiprocess(config, sockets=[sock]).run()
        return
    GracefulServer(config).run()
