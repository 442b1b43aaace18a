"""The GraphQL endpoint, per the GraphQL-over-HTTP spec: POST for any operation, GET for queries.

The view answers in application/json or application/graphql-response+json as the Accept header
asks. With graphql-response+json the status tells whether the request was valid: 400 when the
operation was refused before execution (parse, limits, validation, variables), 200 once it ran
(503 when it ran but failed because a dependency was unavailable). With application/json every
well-formed request gets 200. `data` is present, possibly null, exactly when execution started.

The operation itself runs through the pipeline shared with the WebSocket transport
(app.http.pipeline); this view only reads HTTP requests and maps outcomes to statuses.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.config import GraphQLLimits
from app.http import encoding
from app.http.auth_middleware import principal_of
from app.http.errors import ErrorCode, error_entry
from app.http.negotiation import GRAPHQL_RESPONSE_JSON, HTML, JSON, choose_media_type
from app.http.observe import OPERATION_KEY
from app.http.pipeline import Caller, OperationRequest, Refusal, Refused, Transport
from app.http.request_id import request_id_of
from app.http.state import AppState
from app.observability import metrics

HtmlPage = Callable[[Request], Response]


# --- reading the request -------------------------------------------------------------------------


class RequestError(Exception):
    """The HTTP request itself is unusable: no GraphQL request could be read from it."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        code: ErrorCode = ErrorCode.BAD_USER_INPUT,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.headers = headers or {}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# A run of digits orjson may read differently: it turns integers beyond 64 bits into floats,
# where the standard library keeps them exact (and GraphQL's coercion words its error by type).
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def _json(raw: bytes, what: str) -> Any:
    """The JSON value of `raw`: read by orjson (several times faster), and by the standard
    library wherever orjson could read it differently or refuses it, so what is accepted and
    how a refusal is worded stay the standard library's (lone surrogates, for example, are its
    to accept and the variables check's to refuse)."""
    if _LONG_NUMBER.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(f"{what} is not valid UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        raise RequestError(f"{what} is not valid JSON") from None
    except RecursionError:
        raise RequestError(f"{what} is nested too deeply") from None


def _params(raw: Any, where: str = "The request") -> OperationRequest:
    if not isinstance(raw, dict):
        raise RequestError(f"{where} must be a JSON object with a `query`")
    query = raw.get("query")
    if query is not None and not isinstance(query, str):
        raise RequestError("`query` must be a string")
    variables = raw.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError("`variables` must be an object or null")
    operation_name = raw.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestError("`operationName` must be a string or null")
    extensions = raw.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError("`extensions` must be an object or null")
    if query is None and "persistedQuery" not in (extensions or {}):
        raise RequestError(f"{where} has no `query`")
    return OperationRequest(query, variables, operation_name, extensions)


def _get_params(request: Request) -> OperationRequest:
    raw: dict[str, Any] = dict(request.query_params)
    for name in ("variables", "extensions"):
        if name in raw:
            raw[name] = _json(raw[name].encode("utf-8", "surrogatepass"), f"`{name}`")
    return _params(raw, "A GET request's URL")


async def _post_body(
    request: Request, limits: GraphQLLimits
) -> list[OperationRequest] | OperationRequest:
    content_type = request.headers.get("content-type", "")
    if content_type != JSON:  # else (nearly every request) nothing to parse
        _check_content_type(content_type)
    body = await _read_body(request.receive)
    if not body.strip():
        raise RequestError("The request body is empty; send a JSON object with a `query`")
    raw = _json(body, "The request body")
    if not isinstance(raw, list):
        return _params(raw)
    if limits.max_batch == 0:
        raise RequestError(
            "Batched requests (a JSON array of operations) are not accepted; send one "
            "operation per request (MAX_BATCH_OPERATIONS is 0)"
        )
    if not raw:
        raise RequestError("The batch (a JSON array) is empty")
    if len(raw) > limits.max_batch:
        raise RequestError(
            f"The batch holds {len(raw)} operations; the limit (MAX_BATCH_OPERATIONS) "
            f"is {limits.max_batch}"
        )
    return [_params(item, f"Operation {index} of the batch") for index, item in enumerate(raw)]


def _check_content_type(content_type: str) -> None:
    """415 unless the Content-Type is application/json in UTF-8 (the default charset)."""
    media_type, *params = content_type.split(";")
    media_type = media_type.strip().lower()
    charset = next(
        (
            value.strip().strip('"').lower()
            for name, _, value in (p.partition("=") for p in params)
            if name.strip().lower() == "charset"
        ),
        "utf-8",
    )
    if media_type != JSON or charset != "utf-8":
        raise RequestError(
            "POST bodies must be application/json (UTF-8)"
            + (
                f", not {media_type[:100]}"
                if media_type
                else "; the Content-Type header is missing"
            ),
            status=415,
        )


async def _read_body(receive: Receive) -> bytes:
    """The whole body, straight from the server's messages (no Request stream wrapped around
    them: this is every POST's path)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect


# --- running one operation -----------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] | None = None


_TRANSPORTS = {"GET": Transport.HTTP_GET, "POST": Transport.HTTP_POST}


async def _run(
    request: Request, state: AppState, params: OperationRequest, media_type: str, request_id: str
) -> Outcome:
    """One operation through the pipeline; here only its outcome becomes a status."""
    pipeline = state.pipeline
    started = time.perf_counter()
    principal = principal_of(request)
    client = request.scope.get("client")
    caller = Caller(
        principal=principal, request_id=request_id, client_address=client[0] if client else ""
    )
    plan = await pipeline.plan(params, _TRANSPORTS[request.method], caller)
    state_of_request = request.scope.setdefault("state", {})
    if isinstance(plan, Refused):
        state_of_request[OPERATION_KEY] = params.operation_name
        metrics.observe_operation(
            "http", params.operation_name, "refused", time.perf_counter() - started
        )
        return _refused(plan, media_type)
    name = plan.operation.name
    state_of_request[OPERATION_KEY] = name.value if name is not None else params.operation_name
    answer = await pipeline.execute(plan, caller)
    if isinstance(answer, Refused):
        # Refused before execution (the principal's cost budget): counted as refused.
        metrics.observe_operation(
            "http", state_of_request[OPERATION_KEY], "refused", time.perf_counter() - started
        )
        return _refused(answer, media_type)
    body = answer.body
    status = 200
    headers: dict[str, str] = {}
    codes = [e["extensions"].get("code") for e in body["errors"]] if "errors" in body else []
    retry_after = _retry_after(body) if codes else 0
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    if media_type == GRAPHQL_RESPONSE_JSON and body["data"] is None:
        # Execution started, but the whole operation failed for want of a dependency, or was
        # refused by a rate limit (a sign-up from an address that sent too many).
        if ErrorCode.SERVICE_UNAVAILABLE in codes:
            status = 503
        elif ErrorCode.RATE_LIMITED in codes:
            status = 429
    if request.method == "GET" and plan.persisted:
        max_age = state.settings.persisted_queries.max_age
        if principal.is_anonymous and not codes and max_age:
            # The same hash and variables always name the same public answer: a CDN may keep
            # it. Credentials change the answer, so only anonymous requests are public.
            headers["Cache-Control"] = f"public, max-age={max_age}"
        else:
            headers["Cache-Control"] = "private, no-store"
        headers["Vary"] = "Accept, Authorization, X-API-Key"
    return Outcome(body, status, headers or None)


def _retry_after(body: dict[str, Any]) -> int:
    return max(
        (
            int(e["extensions"]["retryAfter"])
            for e in body.get("errors", ())
            if e["extensions"].get("code") == ErrorCode.RATE_LIMITED
        ),
        default=0,
    )


_REFUSED_STATUS = {
    # Per the GraphQL-over-HTTP spec only application/graphql-response+json may say with a
    # status that the operation did not run; with application/json it is always 200.
    Refusal.INVALID: 400,
    Refusal.NOT_FOUND: 404,
    Refusal.RATE_LIMITED: 429,
}


def _refused(refused: Refused, media_type: str) -> Outcome:
    """An operation refused before execution: no `data`; the status where the media type says."""
    if refused.reason is Refusal.METHOD_NOT_ALLOWED:
        return Outcome(refused.body, 405, {"Allow": "POST"})
    retry_after = _retry_after(refused.body)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    status = _REFUSED_STATUS[refused.reason] if media_type == GRAPHQL_RESPONSE_JSON else 200
    return Outcome(refused.body, status, headers)


# --- the endpoint --------------------------------------------------------------------------------


class _JsonResponse:
    """A JSON answer sent as two ASGI messages, without a Starlette Response in between."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, content: Any, status: int, media_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.body = encoding.dumps(content)
        self.status = status
        raw = (
            [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in headers.items()
            ]
            if headers
            else []
        )
        raw.append((b"content-length", str(len(self.body)).encode("latin-1")))
        raw.append((b"content-type", _CONTENT_TYPES[media_type]))
        self.headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


_CONTENT_TYPES = {
    media_type: f"{media_type}; charset=utf-8".encode("latin-1")
    for media_type in (JSON, GRAPHQL_RESPONSE_JSON)
}
_Answer = _JsonResponse | Response


def _respond(
    content: Any, status: int, media_type: str, headers: dict[str, str] | None = None
) -> _JsonResponse:
    return _JsonResponse(content, status, media_type, headers)


class GraphQLEndpoint:
    """The /graphql endpoint, a plain ASGI app: every GraphQL request over HTTP passes here, so
    it reads the body and sends the answer itself. `html_page`, when given, answers GETs that
    prefer text/html (a browser opening /graphql): the one hook for an in-browser IDE such as
    GraphiQL."""

    def __init__(self, html_page: HtmlPage | None = None) -> None:
        self._html_page = html_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self._answer(Request(scope, receive))
        await answer(scope, receive, send)

    async def _answer(self, request: Request) -> _Answer:
        html_page = self._html_page
        state: AppState = request.app.state.og
        request_id = request_id_of(request)
        # A browser opening /graphql (no query in the URL) may get the page; a GET carrying a
        # query is a GraphQL request whatever the Accept header says.
        wants_page = request.method == "GET" and "query" not in request.query_params
        media_type = choose_media_type(
            request.headers.get("accept"), html=html_page is not None and wants_page
        )
        if media_type is None:
            return _respond(
                {
                    "errors": [
                        error_entry(
                            f"This endpoint answers in {GRAPHQL_RESPONSE_JSON} or {JSON}; "
                            "the Accept header allows neither",
                            ErrorCode.BAD_USER_INPUT,
                        )
                    ]
                },
                406,
                JSON,
            )
        if media_type == HTML and html_page is not None:
            return html_page(request)
        try:
            if request.method == "GET":
                params: list[OperationRequest] | OperationRequest = _get_params(request)
            else:
                params = await _post_body(request, state.settings.graphql)
        except RequestError as error:
            return _respond(
                {"errors": [error_entry(error.message, error.code)]},
                error.status,
                media_type,
                error.headers,
            )
        if isinstance(params, OperationRequest):
            outcome = await _run(request, state, params, media_type, request_id)
            return _respond(outcome.body, outcome.status, media_type, outcome.headers)
        # A batch runs its operations in order, each as if sent alone; the batch itself is 200.
        outcomes = [await _run(request, state, item, media_type, request_id) for item in params]
        return _respond([o.body for o in outcomes], 200, media_type)


def graphql_endpoint_for(html_page: HtmlPage | None = None) -> GraphQLEndpoint:
    """The /graphql endpoint (see GraphQLEndpoint)."""
    return GraphQLEndpoint(html_page)
