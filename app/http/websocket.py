"""GraphQL over WebSocket at /graphql: `graphql-transport-ws` and the legacy `graphql-ws`.

Strawberry's protocol handlers do the framing and the protocol state (init, ack, ids, 4401 before
the acknowledgement, 4408 init timeout, 4409 duplicate id, 4429 second init in
graphql-transport-ws). This module adds what they leave to the application, for both protocols:

- the `connection_init` payload's `Authorization` / `X-API-Key` go to the same authenticator as
  HTTP; none is an anonymous socket, an invalid credential closes it with 4403;
- every operation runs through the same pipeline as HTTP (app.http.pipeline: document
  preparation, variables, admission control and EXECUTION_TIMEOUT for queries and mutations) and
  is charged to the credential's rate limit;
- errors carry `extensions.code` like HTTP responses (app.http.errors);
- at most WS_MAX_OPERATIONS operations in flight per socket (`TOO_MANY_OPERATIONS` error);
- server keepalive, and the credentials checked again every WS_AUTH_RECHECK_SECONDS: an expired
  or revoked token, a revoked key or a disabled owner closes the socket with 4403;
- subscriptions are served by app.http.subscriptions (cursors and replay, one shared execution
  per event, catch-up from the store); one that is truly too slow closes its socket with 1013;
- the legacy protocol gets what Strawberry only does for the newer one: an init timeout,
  4403 for a refused init, 4429 for a second init, 4409 for a duplicate id, 4400 for a malformed
  message.

Each operation runs with its own Context.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing, suppress
from datetime import timedelta
from inspect import isawaitable
from typing import Any

import strawberry
from graphql import ExecutionResult as CoreExecutionResult
from graphql import OperationType, create_source_event_stream
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.async_base_view import AsyncWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message as TransportMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage
from strawberry.types.unset import UNSET, UnsetType

from app.auth.authenticator import CREDENTIAL_HEADERS
from app.auth.errors import InvalidCredentials, TooManyRequests
from app.auth.principal import ANONYMOUS, Principal
from app.config import WebSocketSettings
from app.errors import ApiError, ServiceUnavailable
from app.http import encoding
from app.http.errors import ErrorCode, error_entry, format_error
from app.http.pipeline import Answer, Caller, OperationRequest, Refused, Transport
from app.http.request_id import request_id_of
from app.http.socket_limits import LimitReached, Release
from app.http.state import AppState
from app.http.subscriptions import TOO_SLOW, Encoded, Query, SendWatch, TooSlow
from app.observability import metrics
from resolvers.context import Context
from resolvers.subscription import Feed

log = logging.getLogger("app.http.websocket")

# Close codes beyond those Strawberry sends itself (see the README's table).
BAD_MESSAGE = 4400
UNAUTHORIZED = 4401
FORBIDDEN = 4403
DUPLICATE_ID = 4409
TOO_MANY_INIT = 4429
TRY_AGAIN_LATER = 1013
INTERNAL_ERROR = 1011


class CloseSocket(Exception):
    """An operation found that the whole socket must end (bad credentials, too slow)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _TryLater(Exception):
    """Authentication could not be decided now (rate limit, database): close with 1013."""


# What an operation sends: a refusal (the protocol's `error` message), a result (`next`, or the
# legacy `data`), or a subscription's event payload encoded once for all its subscribers.
Frame = Refused | Answer | Encoded


def _request_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return "The operation's payload must be an object"
    if not isinstance(payload.get("query"), str):
        return "The operation's payload needs a `query` string"
    for name, kind in (("variables", dict), ("operationName", str), ("extensions", dict)):
        if payload.get(name) is not None and not isinstance(payload[name], kind):
            return f"`{name}` has the wrong type"
    return None


def _operation_request(payload: Mapping[str, Any]) -> OperationRequest:
    return OperationRequest(
        payload["query"],
        payload.get("variables"),
        payload.get("operationName"),
        payload.get("extensions"),
    )


def _credentials(params: Mapping[str, object]) -> dict[str, str]:
    """The credential headers of a connection_init payload (names case-insensitive, each once)."""
    found: dict[str, str] = {}
    for key, value in params.items():
        if key.lower() in CREDENTIAL_HEADERS:
            if not isinstance(value, str):
                raise ConnectionRejectionError({"message": f"`{key}` must be a string"})
            if key.lower() in found:
                raise ConnectionRejectionError({"message": f"send one {key.lower()}, not several"})
            found[key.lower()] = value
    return found


async def _send_event(websocket: AsyncWebSocketAdapter, text: str, watch: SendWatch) -> None:
    """Send an already encoded event (encoded once for every subscriber of its group).

    A client that stops reading fills the socket's buffers and the send waits; once it has
    waited WS_MAX_LAG_SECONDS (the hub's SendWatch) the subscriber is truly too slow: 1013, and
    it resumes with the last cursor it received (the close frame follows what is buffered, once
    it reads again)."""
    assert isinstance(websocket, ASGIWebSocketAdapter)
    task = watch.start()
    try:
        await websocket.ws.send_text(text)
    except WebSocketDisconnect as error:
        raise WebSocketDisconnected from error
    except asyncio.CancelledError:
        if watch.expired(task):
            raise CloseSocket(TRY_AGAIN_LATER, TOO_SLOW) from None
        raise
    finally:
        watch.done(task)


def _next_message(kind: str, operation_id: str, payload: str) -> str:
    return f'{{"id":{encoding.dumps_text(operation_id)},"type":"{kind}","payload":{payload}}}'


class Session:
    """One socket: who it authenticated as, and how its operations run.

    Strawberry hands this object to both protocol handlers as their context and fills in
    `connection_params` from connection_init; every operation gets its own `Context`.
    """

    def __init__(
        self,
        state: AppState,
        request_id: str,
        client_address: str,
        releases: list[Release] | None = None,
    ) -> None:
        self.state = state
        self.request_id = request_id
        self.client_address = client_address
        self.connection_params: dict[str, object] | None = None
        self.credentials: dict[str, str] = {}
        self.principal: Principal = ANONYMOUS
        # What the socket holds against the per-address and per-principal caps, given back
        # when it closes (GraphQLWebSocket.__call__).
        self.releases = [] if releases is None else releases

    @property
    def settings(self) -> WebSocketSettings:
        return self.state.settings.websocket

    @property
    def sends(self) -> SendWatch:
        """What notices an event send waiting too long (events come only from the hub)."""
        hub = self.state.subscriptions
        assert hub is not None
        return hub.sends

    async def authenticate(self) -> None:
        """connection_init: the payload's credentials, through the HTTP authenticator."""
        credentials = _credentials(self.connection_params or {})
        try:
            self.principal = await self.state.auth.authenticator.authenticate(
                credentials, self.client_address
            )
        except InvalidCredentials as error:
            raise ConnectionRejectionError(
                {"message": error.message, "extensions": {"code": ErrorCode.UNAUTHENTICATED}}
            ) from None
        except TooManyRequests as error:
            raise _TryLater(f"Rate limited; retry after {error.retry_after} s") from None
        except ServiceUnavailable as error:
            log.warning(
                "authentication unavailable (socket %s): %s", self.request_id, error.message
            )
            raise _TryLater("Authentication is temporarily unavailable") from None
        try:
            self.releases.append(self.state.socket_limits.take_principal_socket(self.principal))
        except LimitReached as error:
            raise _TryLater(f"Too many sockets for this credential: {error}") from None
        self.credentials = credentials

    async def watch_credentials(self, close: Callable[[int, str], Awaitable[None]]) -> None:
        """Close the socket once its credential no longer authenticates.

        This task is what ends a socket whose credential was revoked, so it must never end
        quietly: an outage is waited out (the next round decides; refusing would drop every
        socket whenever the database blinks), and anything unexpected closes the socket (1011)
        rather than leaving it open unchecked.
        """
        if not self.credentials:
            return  # anonymous: nothing can expire
        authenticator = self.state.auth.authenticator
        while True:
            await asyncio.sleep(self.settings.auth_recheck)
            try:
                await authenticator.recheck(self.credentials)
            except InvalidCredentials:
                await close(FORBIDDEN, "Credentials expired or revoked")
                return
            except ServiceUnavailable as error:
                log.warning(
                    "credential recheck deferred (socket %s): %s", self.request_id, error.message
                )
            except Exception:
                log.exception("credential recheck failed (socket %s)", self.request_id)
                await close(INTERNAL_ERROR, "Internal error")
                return

    async def run(self, request: OperationRequest) -> AsyncGenerator[Frame, None]:
        """One operation's frames: a refusal, one result, or a subscription's results."""
        state = self.state
        # Charged like an HTTP request (the credential's bucket, or the address's without one),
        # so a socket is no way around the rate limit.
        try:
            self.principal = await state.auth.authenticator.authenticate(
                self.credentials, self.client_address
            )
        except InvalidCredentials:
            raise CloseSocket(FORBIDDEN, "Credentials expired or revoked") from None
        except TooManyRequests as error:
            yield Refused(
                [error_entry(str(error), ErrorCode.RATE_LIMITED, retryAfter=error.retry_after)]
            )
            return
        except ServiceUnavailable:
            yield Refused(
                [
                    error_entry(
                        "Authentication is temporarily unavailable",
                        ErrorCode.SERVICE_UNAVAILABLE,
                    )
                ]
            )
            return
        pipeline = state.pipeline
        caller = Caller(
            principal=self.principal,
            request_id=self.request_id,
            client_address=self.client_address,
            transport="websocket",
        )
        started = time.perf_counter()
        plan = await pipeline.plan(request, Transport.WEBSOCKET, caller)
        if isinstance(plan, Refused):
            _observe_refusal(request.operation_name, started)
            yield plan
            return
        if plan.kind is not OperationType.SUBSCRIPTION:
            yield await pipeline.execute(plan, caller)
            return
        refused = await pipeline.charge_subscription(plan, caller)
        if refused is not None:
            _observe_refusal(plan.operation_name, started)
            yield refused
            return
        query = Query(
            plan.query, plan.document, plan.operation, plan.operation_name, plan.raw_variables
        )
        context = state.context(
            principal=self.principal,
            request_id=self.request_id,
            client_address=self.client_address,
        )
        async for frame in self._subscription(query, context):
            yield frame

    async def _subscription(self, query: Query, context: Context) -> AsyncGenerator[Frame, None]:
        """Run the resolver (authorization, arguments) for its feed, then let the hub serve it.
        The subscription counts against its address's and principal's caps until it ends."""
        hub = self.state.subscriptions
        if hub is None:
            yield Refused(
                [error_entry("Subscriptions are not served here", ErrorCode.SERVICE_UNAVAILABLE)]
            )
            return
        principal = context.principal
        try:
            release = self.state.socket_limits.take_subscription(self.client_address, principal)
        except LimitReached as error:
            yield Refused(
                [error_entry(f"Too many subscriptions: {error}", ErrorCode.TOO_MANY_OPERATIONS)]
            )
            return
        try:
            executor = ExecutorThrowingOnIncremental.build(
                self.state.schema._schema,
                query.document,
                None,
                context,
                query.variables,
                query.operation_name,
            )
            if isinstance(executor, list):
                yield self._refused(executor)
                return
            source = create_source_event_stream(executor)
            if isawaitable(source):
                source = await source
            if isinstance(source, CoreExecutionResult):
                yield self._refused(source.errors or [])
                return
            if not isinstance(source, Feed):  # pragma: no cover - every resolver returns one
                raise TypeError(f"a subscription resolver returned {type(source).__name__}")
            payloads = hub.serve(source, query, principal, lambda: self._context_for(principal))
            try:
                async with aclosing(payloads):
                    async for payload in payloads:
                        yield payload
            except ApiError as error:  # an unusable cursor, before anything was sent
                yield Refused([error_entry(error.message, ErrorCode(error.code))])
            except TooSlow as error:
                raise CloseSocket(TRY_AGAIN_LATER, str(error)[:120]) from None
        finally:
            release()

    def _refused(self, errors: Any) -> Refused:
        debug = self.state.settings.debug
        return Refused([format_error(e, self.request_id, debug) for e in errors])

    def _context_for(self, principal: Principal) -> Context:
        return self.state.context(
            principal=principal, request_id=self.request_id, client_address=self.client_address
        )


def _observe_refusal(operation_name: str | None, started: float) -> None:
    """An operation refused before it ran, in /metrics beside those the pipeline executed."""
    metrics.observe_operation("websocket", operation_name, "refused", time.perf_counter() - started)


async def _close(close: Callable[[int, str], Awaitable[None]], code: int, reason: str) -> None:
    """Close, unless the peer has already gone (nothing is left to tell it)."""
    with suppress(RuntimeError, WebSocketDisconnected):
        await close(code, reason)


def _message(**fields: Any) -> Any:
    """A protocol message whose payload Strawberry's TypedDicts cannot describe (coded errors)."""
    return fields


def _too_many(limit: int) -> dict[str, Any]:
    return error_entry(
        f"At most {limit} operations may run at once on one socket (WS_MAX_OPERATIONS); "
        "complete one first",
        ErrorCode.TOO_MANY_OPERATIONS,
    )


class TransportWsHandler(BaseGraphQLTransportWSHandler[Session, None]):
    """graphql-transport-ws, with the additions listed in the module docstring."""

    _care: list[asyncio.Task[None]] | None = None
    _extensions: dict[str, dict[str, Any] | None] | None = None

    async def close(self, code: int, reason: str) -> None:
        await _close(self.websocket.close, code, reason)

    async def handle_message(self, message: TransportMessage) -> None:
        raw: object = message
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            await self.close(BAD_MESSAGE, "A message must be an object with a `type`")
            return
        if raw["type"] == "subscribe":
            if not isinstance(raw.get("id"), str) or not raw["id"]:
                await self.close(BAD_MESSAGE, "`subscribe` needs a non-empty string `id`")
                return
            problem = _request_problem(raw.get("payload"))
            if problem is not None:
                await self.close(BAD_MESSAGE, problem)
                return
        elif raw["type"] == "complete" and not isinstance(raw.get("id"), str):
            await self.close(BAD_MESSAGE, "`complete` needs a string `id`")
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except _TryLater as error:
            await self.close(TRY_AGAIN_LATER, str(error))
            return
        if self.connection_acknowledged and self._care is None:
            self._care = [
                asyncio.create_task(self._keepalive()),
                asyncio.create_task(self.context.watch_credentials(self.close)),
            ]

    async def _keepalive(self) -> None:
        with suppress(WebSocketDisconnected, RuntimeError):
            while True:
                await asyncio.sleep(self.context.settings.keepalive)
                await self.send_message({"type": "ping"})

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self.context.settings.max_operations
        if (
            self.connection_acknowledged
            and message["id"] not in self.operations
            and len(self.operations) >= limit
        ):
            await self.send_message(
                _message(id=message["id"], type="error", payload=[_too_many(limit)])
            )
            return
        if self._extensions is None:
            self._extensions = {}
        self._extensions[message["id"]] = message["payload"].get("extensions")
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Session, None]) -> None:
        extensions = (self._extensions or {}).pop(operation.id, None)
        request = OperationRequest(
            operation.query, operation.variables, operation.operation_name, extensions
        )
        try:
            async with aclosing(self.context.run(request)) as frames:
                async for frame in frames:
                    if isinstance(frame, Refused):
                        await operation.send_operation_message(
                            _message(id=operation.id, type="error", payload=frame.errors)
                        )
                        return
                    if isinstance(frame, Encoded):
                        if operation.completed:
                            return
                        text = _next_message("next", operation.id, frame.payload)
                        await _send_event(self.websocket, text, self.context.sends)
                        continue
                    await operation.send_operation_message(
                        _message(id=operation.id, type="next", payload=frame.body)
                    )
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except CloseSocket as close:
            self.operations.pop(operation.id, None)
            await self.close(close.code, close.reason)
        except (WebSocketDisconnected, RuntimeError):
            self.operations.pop(operation.id, None)  # the peer has gone

    async def shutdown(self) -> None:
        for task in self._care or ():
            task.cancel()
        for task in self._care or ():
            with suppress(asyncio.CancelledError):
                await task
        await super().shutdown()


class LegacyWsHandler(BaseGraphQLWSHandler[Session, None]):
    """The legacy graphql-ws (subscriptions-transport-ws) protocol, held to the same rules."""

    _init_received = False
    _care: list[asyncio.Task[None]] | None = None

    async def close(self, code: int, reason: str) -> None:
        await _close(self.websocket.close, code, reason)

    async def handle(self) -> None:
        timer = asyncio.create_task(self._init_timeout())
        try:
            await super().handle()
        finally:
            tasks = [timer, *(self._care or ())]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task

    async def _init_timeout(self) -> None:
        await asyncio.sleep(self.context.settings.init_timeout)
        if not self._init_received:
            await self.close(4408, "Connection initialisation timeout")

    async def handle_message(self, message: OperationMessage) -> None:
        raw: object = message
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            await self.close(BAD_MESSAGE, "A message must be an object with a `type`")
            return
        kind = raw["type"]
        if kind == "connection_init":
            await self._connection_init(raw.get("payload"))
        elif kind == "start":
            await self._start(raw)
        elif kind == "stop" and not isinstance(raw.get("id"), str):
            await self.close(BAD_MESSAGE, "`stop` needs a string `id`")
        else:
            await super().handle_message(message)

    async def _connection_init(self, payload: object) -> None:
        if self._init_received:
            await self.close(TOO_MANY_INIT, "Too many initialisation requests")
            return
        self._init_received = True
        if payload is not None and not isinstance(payload, dict):
            await self.close(BAD_MESSAGE, "Invalid connection init payload")
            return
        self.context.connection_params = payload or {}
        try:
            await self.context.authenticate()
        except ConnectionRejectionError as error:
            await self.send_message({"type": "connection_error", "payload": error.payload})
            await self.close(FORBIDDEN, "Forbidden")
            return
        except _TryLater as error:
            await self.send_message(
                {"type": "connection_error", "payload": {"message": str(error)}}
            )
            await self.close(TRY_AGAIN_LATER, str(error))
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        self.keep_alive_task = asyncio.create_task(self.handle_keep_alive())
        self._care = [asyncio.create_task(self.context.watch_credentials(self.close))]

    async def _start(self, message: dict[str, Any]) -> None:
        if not self.connection_acknowledged:
            await self.close(UNAUTHORIZED, "Unauthorized")
            return
        operation_id = message.get("id")
        if not isinstance(operation_id, str) or not operation_id:
            await self.close(BAD_MESSAGE, "`start` needs a non-empty string `id`")
            return
        problem = _request_problem(message.get("payload"))
        if problem is not None:
            await self.close(BAD_MESSAGE, problem)
            return
        if operation_id in self.tasks:
            await self.close(DUPLICATE_ID, f"Subscriber for {operation_id[:64]} already exists")
            return
        limit = self.context.settings.max_operations
        if len(self.tasks) >= limit:
            await self.send_message(
                _message(type="error", id=operation_id, payload=_too_many(limit))
            )
            return
        request = _operation_request(message["payload"])
        self.tasks[operation_id] = asyncio.create_task(self._run(operation_id, request))

    async def _run(self, operation_id: str, request: OperationRequest) -> None:
        try:
            async with aclosing(self.context.run(request)) as frames:
                async for frame in frames:
                    if isinstance(frame, Refused):
                        # The legacy `error` message carries one error.
                        await self.send_message(
                            _message(type="error", id=operation_id, payload=frame.errors[0])
                        )
                        return
                    if isinstance(frame, Encoded):
                        text = _next_message("data", operation_id, frame.payload)
                        await _send_event(self.websocket, text, self.context.sends)
                        continue
                    await self.send_message(
                        _message(type="data", id=operation_id, payload=frame.body)
                    )
            await self.send_message({"type": "complete", "id": operation_id})
        except asyncio.CancelledError:
            with suppress(WebSocketDisconnected, RuntimeError):
                await self.send_message({"type": "complete", "id": operation_id})
            raise
        except CloseSocket as close:
            await self.close(close.code, close.reason)
        except (WebSocketDisconnected, RuntimeError):
            pass  # the peer has gone
        finally:
            self.tasks.pop(operation_id, None)


# Where GraphQLWebSocket.__call__ leaves the socket's cap releases for its Session.
_RELEASES = "og_socket_releases"


class GraphQLWebSocket(GraphQL[Session, None]):
    """The WebSocket side of /graphql. HTTP requests never reach it (app.http.graphql serves
    them). Cross-origin browser handshakes are refused (403) unless their origin is in
    CORS_ALLOWED_ORIGINS (Strawberry's origin check); the socket carries credentials only in
    connection_init, never cookies."""

    graphql_transport_ws_handler_class = TransportWsHandler
    graphql_ws_handler_class = LegacyWsHandler

    def __init__(
        self,
        schema: strawberry.Schema,
        settings: WebSocketSettings,
        allowed_origins: Sequence[str] = (),
    ) -> None:
        super().__init__(
            schema,
            allowed_origins=allowed_origins,
            graphql_ide=None,
            keep_alive=True,
            keep_alive_interval=settings.keepalive,
            connection_init_wait_timeout=timedelta(seconds=settings.init_timeout),
            # Counted (with a coded error) by the handlers above.
            max_subscriptions_per_connection=None,
        )

    def encode_json(self, data: object) -> str:
        return encoding.dumps_text(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        state: AppState = scope["app"].state.og
        client = scope.get("client")
        releases: list[Release] = []
        try:
            releases.append(state.socket_limits.take_socket(client[0] if client else ""))
        except LimitReached as error:
            log.info("socket refused (%s): %s", client, error)
            # Closing before accepting refuses the handshake (HTTP 403).
            await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})
            return
        scope.setdefault("state", {})[_RELEASES] = releases
        try:
            await super().__call__(scope, receive, send)
        finally:
            for release in releases:
                release()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Session:
        state: AppState = request.app.state.og
        client = request.client.host if request.client is not None else ""
        releases = request.scope.get("state", {}).get(_RELEASES)
        return Session(state, request_id_of(request), client, releases)

    async def on_ws_connect(self, context: Session) -> UnsetType | dict[str, object] | None:
        await context.authenticate()
        unset: UnsetType = UNSET
        return unset
