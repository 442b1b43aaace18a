"""The HTTP edge: the one layer every HTTP request and WebSocket handshake passes first.

What every response needs is done here, with one wrapper around `send`: the request ID (the
client's X-Request-ID when it is safe to echo and log, otherwise a fresh one; in the scope's state,
the log context and the response), the security headers (app.http.security_headers), the
request's duration in /metrics and its access line (app.http.observe), and a crash answered in the
API's error shape, a JSON 500 carrying the request ID, rather than Starlette's plain-text one.

/graphql is the hot path. Its requests (GET and POST; with CORS configured, those without an
`Origin` header: a browser's cross-origin call still passes the CORS layer) go from here through
the body limit and the authenticator straight to the endpoint, instead of through a layer per job
(CORS, body limit, authentication, Starlette's exception handling and router), each wrapping
`send` again: at a few microseconds a layer, that was a tenth of a point query's CPU. The body
limit and the authentication are the very functions those layers run, so both ways answer alike.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.auth_middleware import authenticate, graphql_reply
from app.http.limits import BodyLimit
from app.http.observe import RequestLog
from app.http.request_id import (
    HEADER_KEY,
    STATE_KEY,
    answer_crash,
    header_value,
    request_id_from,
)
from app.http.security_headers import SecurityHeaders
from app.observability.logs import REQUEST_ID

log = logging.getLogger("app.http")

_ORIGIN = b"origin"
_GRAPHQL_METHODS = frozenset({"GET", "POST"})


@dataclass(frozen=True, slots=True)
class GraphQLRoute:
    """What the edge needs to serve /graphql itself."""

    endpoint: ASGIApp
    limit: BodyLimit
    # CORS is configured: requests with an Origin header take the long way, through its layer.
    cors: bool
    path: str = "/graphql"

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.limit.http(self._authenticated, scope, receive, send)

    async def _authenticated(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = await authenticate(scope, send, graphql_reply)
        if principal is not None:
            scope["state"]["principal"] = principal
            await self.endpoint(scope, receive, send)


class Edge:
    """Outermost of the app's own layers (inside only Starlette's last-resort error handler).
    Without `graphql`, every request takes the long way."""

    def __init__(
        self, app: ASGIApp, hsts_seconds: int = 31_536_000, graphql: GraphQLRoute | None = None
    ) -> None:
        self.app = app
        security = SecurityHeaders(hsts_seconds)
        # Per scheme: the headers every response gets besides its request ID, and the names a
        # response's own copies are dropped under.
        self._headers = {
            scheme: (frozenset({HEADER_KEY, *(name for name, _ in extra)}), extra)
            for scheme in ("http", "https")
            for extra in [security.for_scheme(scheme)]
        }
        self._log = RequestLog()
        self._graphql = graphql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        given: str | None = None
        origin = False
        for name, value in scope["headers"]:
            if name == HEADER_KEY:
                if given is None:
                    given = value.decode("latin-1")
            elif name == _ORIGIN:
                origin = True
        request_id = request_id_from(given)
        state = scope.setdefault("state", {})
        state[STATE_KEY] = request_id
        token = REQUEST_ID.set(request_id)
        replaced, extra = self._headers["https" if scope.get("scheme") == "https" else "http"]
        added = [(HEADER_KEY, request_id.encode("latin-1")), *extra]
        status = 500  # unless a response starts: a crash is answered below
        responded = False

        async def edge_send(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                responded = True
                status = message["status"]
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() not in replaced),
                    *added,
                ]
            await send(message)

        graphql = self._graphql
        try:
            if (
                graphql is not None
                and scope["path"] == graphql.path
                and scope["method"] in _GRAPHQL_METHODS
                and not (origin and graphql.cors)
            ):
                await graphql.serve(scope, receive, edge_send)
            else:
                await self.app(scope, receive, edge_send)
        except ClientDisconnect:
            # The client left before its request was read: nobody is waiting for an answer,
            # and nothing went wrong here.
            log.info("client went away before its request was read (request %s)", request_id)
        except Exception:
            log.exception("unhandled error (request %s)", request_id)
            if responded:
                raise
            await answer_crash(edge_send, request_id)
        finally:
            self._log.record(scope, state, status, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_from(header_value(scope))
        scope.setdefault("state", {})[STATE_KEY] = request_id
        header = (HEADER_KEY, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "websocket.accept":
                kept = [h for h in message.get("headers", ()) if h[0].lower() != HEADER_KEY]
                message["headers"] = [*kept, header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error (request %s)", request_id)
            raise
