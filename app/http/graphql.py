"""The GraphQL endpoint, per the GraphQL-over-HTTP spec: POST for any operation, GET for queries.

The view answers in application/json or application/graphql-response+json as the Accept header
asks. With graphql-response+json the status tells whether the request was valid: 400 when the
operation was refused before execution (parse, limits, validation, variables), 200 once it ran
(503 when it ran but failed because a dependency was unavailable). With application/json every
well-formed request gets 200. `data` is present, possibly null, exactly when execution started.

Each query text is parsed, limited and validated once (see `documents`); `PreparedDocument` hands
the result to Strawberry so it neither parses nor validates again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from graphql import DocumentNode, GraphQLError, OperationType, get_variable_values
from graphql.validation import ASTValidationRule
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType as StrawberryOperationType

from app.config import GraphQLLimits
from app.db.engine import track_statements
from app.http.auth_middleware import principal_of
from app.http.errors import ErrorCode, error_entry, format_error
from app.http.negotiation import GRAPHQL_RESPONSE_JSON, HTML, JSON, choose_media_type
from app.http.observe import OPERATION_KEY
from app.http.request_id import request_id_of
from app.observability import metrics
from app.state import AppState

HtmlPage = Callable[[Request], Response]

_MAX_VARIABLE_ERRORS = 20
_GET_ALLOWED = (StrawberryOperationType.QUERY,)
_POST_ALLOWED = (StrawberryOperationType.QUERY, StrawberryOperationType.MUTATION)


# --- handing the prepared document to Strawberry -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Handover:
    query: str
    document: DocumentNode
    rules: frozenset[type[ASTValidationRule]]


_handover: ContextVar[_Handover | None] = ContextVar("prepared_document", default=None)


class PreparedDocument(SchemaExtension):
    """Gives Strawberry the document the view already parsed and validated.

    Validation is skipped only when every rule Strawberry would run was among those the view ran,
    so an extension that adds rules still has them applied.
    """

    def on_parse(self) -> Iterator[None]:
        handover = _handover.get()
        if handover is not None and handover.query == self.execution_context.query:
            self.execution_context.graphql_document = handover.document
        yield

    def on_validate(self) -> Iterator[None]:
        handover = _handover.get()
        context = self.execution_context
        if (
            handover is not None
            and context.graphql_document is handover.document
            and handover.rules.issuperset(context.validation_rules)
        ):
            context.pre_execution_errors = []
        yield


@contextmanager
def prepared_document_for(
    query: str, document: DocumentNode, rules: Iterable[type[ASTValidationRule]]
) -> Iterator[None]:
    """While the block runs, Strawberry executes `query` with this already-validated document."""
    token = _handover.set(_Handover(query, document, frozenset(rules)))
    try:
        yield
    finally:
        _handover.reset(token)


# --- reading the request -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Params:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


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


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        raise RequestError(f"{what} is not valid JSON") from None
    except RecursionError:
        raise RequestError(f"{what} is nested too deeply") from None


def _params(raw: Any, where: str = "The request") -> Params:
    if not isinstance(raw, dict):
        raise RequestError(f"{where} must be a JSON object with a `query`")
    query = raw.get("query")
    if query is None:
        raise RequestError(f"{where} has no `query`")
    if not isinstance(query, str):
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
    return Params(query, variables, operation_name, extensions)


def _get_params(request: Request) -> Params:
    raw: dict[str, Any] = dict(request.query_params)
    for name in ("variables", "extensions"):
        if name in raw:
            raw[name] = _json(raw[name], f"`{name}`")
    return _params(raw, "A GET request's URL")


async def _post_body(request: Request, limits: GraphQLLimits) -> list[Params] | Params:
    media_type, *params = request.headers.get("content-type", "").split(";")
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
    body = await request.body()
    if not body.strip():
        raise RequestError("The request body is empty; send a JSON object with a `query`")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("The request body is not valid UTF-8") from None
    raw = _json(text, "The request body")
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


# --- running one operation -----------------------------------------------------------------------


def lift_deadline_for_mutation(deadline: asyncio.Timeout, operation: OperationType) -> None:
    """Once admitted, a mutation runs to its end; only queries are stopped at the deadline.

    Cancelling a mutation cannot take back a commit that has happened (or is happening), so a
    timeout would tell the client a write failed when it may have succeeded, and a retry without
    an idempotency key would repeat it. A mutation's database work is bounded anyway, by the
    statement timeout and the lock (busy) timeouts, and its unit of work is short.
    """
    if operation is OperationType.MUTATION:
        deadline.reschedule(None)


@dataclass(slots=True)
class Outcome:
    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] | None = None
    # SQL statements the operation issued, when it was executed.
    statements: int | None = None


def _refused(errors: list[dict[str, Any]], media_type: str, status: int | None = None) -> Outcome:
    """An operation refused before execution: no `data`, and 400 only where the media type says."""
    if status is None:
        status = 400 if media_type == GRAPHQL_RESPONSE_JSON else 200
    return Outcome({"errors": errors}, status)


async def _run(
    request: Request, state: AppState, params: Params, media_type: str, request_id: str
) -> Outcome:
    settings = state.settings
    documents = state.documents
    prepared = await documents.prepare_off_loop(params.query)

    def refused(errors: tuple[GraphQLError, ...] | list[GraphQLError]) -> Outcome:
        return _refused([format_error(e, request_id, settings.debug) for e in errors], media_type)

    if prepared.document is None:
        return refused(prepared.errors)
    operation = prepared.operation(params.operation_name)
    if isinstance(operation, GraphQLError):
        return refused([operation])
    if operation.name is not None:
        request.scope.setdefault("state", {})[OPERATION_KEY] = operation.name.value
    if operation.operation is OperationType.MUTATION and request.method == "GET":
        return Outcome(
            {"errors": [error_entry("Mutations must be sent with POST", ErrorCode.BAD_USER_INPUT)]},
            405,
            {"Allow": "POST"},
        )
    if operation.operation is OperationType.SUBSCRIPTION:
        return refused(
            [
                GraphQLError(
                    "Subscriptions are not served over plain HTTP; use the WebSocket transport",
                    extensions={"code": ErrorCode.BAD_USER_INPUT},
                )
            ]
        )
    if prepared.errors:
        return refused(prepared.errors)
    schema = state.schema._schema
    coerced = get_variable_values(
        schema,
        operation.variable_definitions or [],
        params.variables or {},
        max_errors=_MAX_VARIABLE_ERRORS,
    )
    if isinstance(coerced, list):
        return refused(
            [
                GraphQLError(
                    error.message,
                    nodes=error.nodes,
                    extensions={"code": ErrorCode.BAD_USER_INPUT},
                )
                for error in coerced
            ]
        )

    context = state.context(
        principal=principal_of(request),
        request_id=request_id,
        client_address=request.client.host if request.client is not None else "",
    )
    limits = settings.graphql
    started = time.perf_counter()
    token = _handover.set(_Handover(params.query, prepared.document, frozenset(documents.rules)))
    body: dict[str, Any] = {}
    admitted = False
    with track_statements() as stats:
        try:
            # One deadline covers waiting for a turn and executing. Waiting happens here, before
            # any DataLoader borrows a connection: when the process is saturated, requests queue
            # at the door instead of all slowing down together with connections checked out.
            async with asyncio.timeout(limits.execution_timeout) as deadline, state.operations:
                admitted = True
                lift_deadline_for_mutation(deadline, operation.operation)
                result = await state.schema.execute(
                    params.query,
                    variable_values=params.variables,
                    context_value=context,
                    operation_name=params.operation_name,
                    allowed_operation_types=_GET_ALLOWED
                    if request.method == "GET"
                    else _POST_ALLOWED,
                    operation_extensions=params.extensions,
                )
        except TimeoutError:
            body["errors"] = [
                error_entry(
                    f"The operation did not finish within {limits.execution_timeout:g} s "
                    "(EXECUTION_TIMEOUT)"
                    if admitted
                    else "The server is too busy: the operation waited "
                    f"{limits.execution_timeout:g} s (EXECUTION_TIMEOUT) for one of its "
                    f"{limits.max_concurrent_operations} execution slots "
                    "(MAX_CONCURRENT_OPERATIONS); retry later",
                    ErrorCode.SERVICE_UNAVAILABLE,
                )
            ]
            body["data"] = None
        else:
            if result.errors:
                body["errors"] = [
                    format_error(e, request_id, settings.debug) for e in result.errors
                ]
            body["data"] = result.data
        finally:
            _handover.reset(token)
    if settings.debug:
        body["extensions"] = {
            "debug": {
                "sqlStatements": stats.statements,
                "sqlMs": round(stats.seconds * 1000, 3),
                "elapsedMs": round((time.perf_counter() - started) * 1000, 3),
            }
        }
    status = 200
    headers: dict[str, str] = {}
    codes = [e["extensions"].get("code") for e in body.get("errors", ())]
    retry_after = max(
        (
            int(e["extensions"]["retryAfter"])
            for e in body.get("errors", ())
            if e["extensions"].get("code") == ErrorCode.RATE_LIMITED
        ),
        default=0,
    )
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    if media_type == GRAPHQL_RESPONSE_JSON and body["data"] is None:
        # Execution started, but the whole operation failed for want of a dependency, or was
        # refused by a rate limit (a sign-up from an address that sent too many).
        if ErrorCode.SERVICE_UNAVAILABLE in codes:
            status = 503
        elif ErrorCode.RATE_LIMITED in codes:
            status = 429
    return Outcome(body, status, headers or None, stats.statements)


async def _observed(
    request: Request, state: AppState, params: Params, media_type: str, request_id: str
) -> Outcome:
    """`_run`, measured for /metrics and named for the access log."""
    request.scope.setdefault("state", {})[OPERATION_KEY] = params.operation_name
    started = time.perf_counter()
    outcome = await _run(request, state, params, media_type, request_id)
    metrics.observe_operation(
        "http",
        request.scope["state"][OPERATION_KEY],
        metrics.outcome_of(outcome.body),
        time.perf_counter() - started,
        outcome.statements,
    )
    return outcome


# --- the endpoint --------------------------------------------------------------------------------


def _respond(
    content: Any, status: int, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(
        body.encode("utf-8"),
        status_code=status,
        media_type=f"{media_type}; charset=utf-8",
        headers=headers,
    )


def graphql_endpoint_for(
    html_page: HtmlPage | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """The /graphql endpoint. `html_page`, when given, answers GETs that prefer text/html (a
    browser opening /graphql): the one hook for an in-browser IDE such as GraphiQL."""

    async def graphql_endpoint(request: Request) -> Response:
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
                params: list[Params] | Params = _get_params(request)
            else:
                params = await _post_body(request, state.settings.graphql)
        except RequestError as error:
            return _respond(
                {"errors": [error_entry(error.message, error.code)]},
                error.status,
                media_type,
                error.headers,
            )
        if isinstance(params, Params):
            outcome = await _observed(request, state, params, media_type, request_id)
            return _respond(outcome.body, outcome.status, media_type, outcome.headers)
        # A batch runs its operations in order, each as if sent alone; the batch itself is 200.
        outcomes = [
            await _observed(request, state, item, media_type, request_id) for item in params
        ]
        return _respond([o.body for o in outcomes], 200, media_type)

    return graphql_endpoint
