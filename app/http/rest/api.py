"""The versioned REST API: an edge over the same loaders, use cases and policy as GraphQL.

A request names its version with the `api-version` header, else its URL (`/api/v2/...`), else it
is v1. Handlers only translate: HTTP in, a loader read or a use case, a shape out. Who may read or
change what is decided in `app.auth.policy`, the same functions GraphQL asks; errors carry the
same catalogue codes, as RFC 9457 problem documents.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from email.utils import format_datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from app.auth import policy
from app.config import API_VERSIONS, DeprecatedVersion
from app.domain import models
from app.domain.errors import Code
from app.domain.errors import Problem as DomainProblem
from app.domain.orders import OrderFilter, OrderLine
from app.errors import ApiError, BadUserInput, NotFound, RateLimited
from app.http.auth_middleware import principal_of
from app.http.errors import ErrorCode
from app.http.request_id import request_id_of
from app.http.rest import shapes
from app.http.rest.problems import problem_response
from app.http.state import AppState
from app.pagination import (
    Page,
    check_first,
    decode_text_cursor,
    decode_time_cursor,
    encode_text_cursor,
    encode_time_cursor,
)
from app.usecases import orders as order_usecases
from app.usecases.runner import Outcome
from loaders.orders import OrdersPageKey
from loaders.products import ProductsPageKey
from resolvers.context import Context
from resolvers.global_id import pk_of
from resolvers.order import CURSOR_KIND as ORDER_CURSOR
from resolvers.product import CURSOR_KIND as PRODUCT_CURSOR

JSON = "application/json"
_VERSION_SEGMENT = re.compile(r"^v\d{1,3}$")
_STATUS_BY_CODE = {
    ErrorCode.BAD_USER_INPUT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_SERVER_ERROR: 500,
}


class RestError(Exception):
    """A refusal the edge itself makes (bad version, unknown path, unreadable body)."""

    def __init__(
        self,
        status: int,
        detail: str,
        code: ErrorCode = ErrorCode.BAD_USER_INPUT,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.code = status, detail, code
        self.headers = headers or {}
        self.extra = extra


class Rejected(Exception):
    """The use case reported rule violations (its payload's errors in GraphQL): 422."""

    def __init__(self, problems: tuple[DomainProblem, ...]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


# --- versions ------------------------------------------------------------------------------------


def choose_version(header: str | None, url_version: str | None) -> str:
    """The `api-version` header, else the URL's version, else v1; unknown ones are refused."""
    chosen = header.strip().lower() if header is not None and header.strip() else url_version
    if chosen is None:
        return API_VERSIONS[0]
    if chosen.isdigit():
        chosen = f"v{chosen}"
    if chosen not in API_VERSIONS:
        raise RestError(
            400,
            f"API version {chosen[:20]!r} is not supported; use one of {', '.join(API_VERSIONS)}",
            supported_versions=list(API_VERSIONS),
        )
    return chosen


def _http_date(day: datetime) -> str:
    return format_datetime(day, usegmt=True)


def deprecation_headers(
    version: str, resource_path: str, deprecated: tuple[DeprecatedVersion, ...]
) -> dict[str, str]:
    """RFC 9745 `Deprecation`, RFC 8594 `Sunset`, and a `Link` to the successor's resource."""
    for entry in deprecated:
        if entry.version == version:
            successor = API_VERSIONS[API_VERSIONS.index(version) + 1]
            since = datetime.combine(entry.since, time(), tzinfo=UTC)
            headers = {
                "Deprecation": f"@{int(since.timestamp())}",
                "Link": f'</api/{successor}/{resource_path}>; rel="successor-version"',
            }
            if entry.sunset is not None:
                headers["Sunset"] = _http_date(datetime.combine(entry.sunset, time(), tzinfo=UTC))
            return headers
    return {}


# --- the operations ------------------------------------------------------------------------------


@dataclass(slots=True)
class Call:
    """One REST request, as the handlers see it."""

    version: str
    context: Context
    path: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    # Set by a handler that created something: the response is 201 with this Location.
    location: str | None = None
    link_next: str | None = None

    @property
    def v2(self) -> bool:
        return self.version == "v2"


Handler = Callable[[Call], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str  # relative to /api/vN/, e.g. "orders/{id}/cancel"
    handler: Handler
    summary: str
    responses: dict[str, type[BaseModel]]  # by version
    public: bool = False  # the catalogue: Cache-Control public
    request: type[BaseModel] | None = None
    query: tuple[str, ...] = ()
    success: int = 200
    headers: tuple[str, ...] = ()
    segments: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.path.split("/")))

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params = {}
        for segment, part in zip(self.segments, parts, strict=True):
            if segment.startswith("{"):
                params[segment[1:-1]] = part
            elif segment != part:
                return None
        return params


def _id(call: Call, type_name: str) -> UUID:
    return pk_of(call.path["id"], type_name)


def _first_after(call: Call) -> tuple[int, str | None]:
    raw = call.query.get("first")
    try:
        first = check_first(None if raw is None else int(raw))
    except ValueError:
        raise BadUserInput(f"`first` must be an integer, not {str(raw)[:20]!r}") from None
    return first, call.query.get("after") or None


async def _user(call: Call, user_id: UUID) -> BaseModel:
    loaders = call.context.loaders
    user, profile = await asyncio.gather(
        loaders.user_by_id.load(user_id), loaders.profile_by_user_id.load(user_id)
    )
    if user is None:
        raise NotFound("No user has this ID")
    return shapes.user_v2(user, profile) if call.v2 else shapes.user_v1(user, profile)


async def get_user(call: Call) -> BaseModel:
    principal = call.context.principal
    user_id = _id(call, "User")
    policy.require_authenticated(principal)
    if not policy.may_read_user(principal, user_id):
        raise NotFound("No user has this ID")
    return await _user(call, user_id)


async def get_me(call: Call) -> BaseModel:
    principal = call.context.principal
    policy.require_authenticated(principal)
    user_id = policy.own_account(principal)
    if user_id is None:
        raise NotFound("This credential belongs to an application, not to a user")
    return await _user(call, user_id)


def _product(call: Call, product: models.Product) -> BaseModel:
    return shapes.product_v2(product) if call.v2 else shapes.product_v1(product)


async def list_products(call: Call) -> BaseModel:
    first, after = _first_after(call)
    cursor = None if after is None else decode_text_cursor(PRODUCT_CURSOR, after)
    page = await call.context.loaders.products_page.load(ProductsPageKey(first, cursor))
    end = encode_text_cursor(PRODUCT_CURSOR, page.items[-1].sku) if page.items else None
    items = [_product(call, product) for product in page.items]
    return _list(call, page, items, end, shapes.ProductListV1, shapes.ProductListV2)


async def get_product(call: Call) -> BaseModel:
    product = await call.context.loaders.product_by_id.load(_id(call, "Product"))
    if product is None:
        raise NotFound("No product has this ID")
    return _product(call, product)


async def _order(call: Call, order: models.Order) -> shapes.OrderV1 | shapes.OrderV2:
    items = await call.context.loaders.order_items_by_order_id.load(order.id)
    return shapes.order_v2(order, items) if call.v2 else shapes.order_v1(order, items)


async def list_orders(call: Call) -> BaseModel:
    owner = policy.order_list_owner(call.context.principal)
    first, after = _first_after(call)
    cursor = None if after is None else decode_time_cursor(ORDER_CURSOR, after)
    status = call.query.get("status")
    if status is not None and status not in models.OrderStatus.__members__:
        raise BadUserInput(f"`status` must be one of PLACED, FULFILLED, CANCELLED, not {status!r}")
    where = OrderFilter(
        status=None if status is None else models.OrderStatus(status),
        created_after=None,
        user_id=owner,
    )
    page = await call.context.loaders.orders_page.load(OrdersPageKey(first, cursor, where))
    last = page.items[-1] if page.items else None
    end = None if last is None else encode_time_cursor(ORDER_CURSOR, (last.created_at, last.id))
    items = list(await asyncio.gather(*(_order(call, order) for order in page.items)))
    return _list(call, page, items, end, shapes.OrderListV1, shapes.OrderListV2)


def _list(
    call: Call,
    page: Page[Any],
    items: list[Any],
    end: str | None,
    v1: type[BaseModel],
    v2: type[BaseModel],
) -> BaseModel:
    if page.has_next and end is not None:
        first = call.query.get("first")
        query = f"after={end}" + (f"&first={first}" if first else "")
        call.link_next = query
    if call.v2:
        info = shapes.PageInfo(has_next_page=page.has_next, end_cursor=end)
        return v2(items=items, page_info=info)
    return v1(items=items, next_cursor=end if page.has_next else None)


async def get_order(call: Call) -> BaseModel:
    principal = call.context.principal
    order_id = _id(call, "Order")
    policy.require_authenticated(principal)
    order = await call.context.loaders.order_by_id.load(order_id)
    if order is None or not policy.may_read_order(principal, order):
        raise NotFound("No order has this ID")
    return await _order(call, order)


async def _written(call: Call, outcome: Outcome[models.Order]) -> shapes.OrderV1 | shapes.OrderV2:
    if outcome.problems:
        raise Rejected(outcome.problems)
    assert outcome.value is not None
    return await _order(call, outcome.value)


async def create_order(call: Call) -> BaseModel:
    body = shapes.CreateOrderInput.model_validate(call.body)
    lines = []
    for index, line in enumerate(body.items):
        try:
            lines.append(OrderLine(pk_of(line.product_id, "Product"), line.quantity))
        except BadUserInput as error:
            raise Rejected(
                (
                    DomainProblem(
                        Code.BAD_USER_INPUT,
                        error.message,
                        ("items", str(index), "productId"),
                    ),
                )
            ) from None
    command = order_usecases.CreateOrder(lines, call.headers.get("idempotency-key"))
    context = call.context
    outcome = await order_usecases.create_order(context.unit_of_work, context.principal, command)
    order = await _written(call, outcome)
    call.location = f"/api/{call.version}/orders/{order.id}"
    return order


async def cancel_order(call: Call) -> BaseModel:
    context = call.context
    outcome = await order_usecases.cancel_order(
        context.unit_of_work, context.principal, _id(call, "Order")
    )
    return await _written(call, outcome)


_PAGING = ("first", "after")
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "users/{id}", get_user, "A user", {"v1": shapes.UserV1, "v2": shapes.UserV2}),
    Operation(
        "GET", "me", get_me, "The signed-in user", {"v1": shapes.UserV1, "v2": shapes.UserV2}
    ),
    Operation(
        "GET",
        "products",
        list_products,
        "The catalogue, by SKU",
        {"v1": shapes.ProductListV1, "v2": shapes.ProductListV2},
        public=True,
        query=_PAGING,
    ),
    Operation(
        "GET",
        "products/{id}",
        get_product,
        "A product",
        {"v1": shapes.ProductV1, "v2": shapes.ProductV2},
        public=True,
    ),
    Operation(
        "GET",
        "orders",
        list_orders,
        "Orders, newest first (a customer: their own)",
        {"v1": shapes.OrderListV1, "v2": shapes.OrderListV2},
        query=(*_PAGING, "status"),
    ),
    Operation(
        "GET", "orders/{id}", get_order, "An order", {"v1": shapes.OrderV1, "v2": shapes.OrderV2}
    ),
    Operation(
        "POST",
        "orders",
        create_order,
        "Place an order for the signed-in user (the same use case as createOrder)",
        {"v1": shapes.OrderV1, "v2": shapes.OrderV2},
        request=shapes.CreateOrderInput,
        success=201,
        headers=("Idempotency-Key",),
    ),
    Operation(
        "POST",
        "orders/{id}/cancel",
        cancel_order,
        "Cancel an order and restock its items (its owner with orders:write, or an admin)",
        {"v1": shapes.OrderV1, "v2": shapes.OrderV2},
    ),
)


# --- the endpoint --------------------------------------------------------------------------------


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2): W/ prefixes are ignored; `*` matches anything."""
    if if_none_match is None:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def _split(path: str) -> tuple[str | None, list[str]]:
    parts = [part for part in path.split("/") if part]
    if parts and _VERSION_SEGMENT.match(parts[0]):
        return parts[0], parts[1:]
    return None, parts


async def _body(request: Request) -> Any:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JSON:
        raise RestError(415, "Request bodies must be application/json")
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise RestError(400, "The request body is not valid JSON") from None


def _validation_problems(error: ValidationError) -> list[shapes.FieldError]:
    return [
        shapes.FieldError(
            field=[str(part) for part in item["loc"]] or None,
            message=item["msg"],
            code=ErrorCode.BAD_USER_INPUT.value,
        )
        for item in error.errors()[:20]
    ]


async def rest_endpoint(request: Request) -> Response:
    state: AppState = request.app.state.og
    request_id = request_id_of(request)
    try:
        url_version, parts = _split(request.path_params.get("path", ""))
        version = choose_version(request.headers.get("api-version"), url_version)
        resource = "/".join(parts)
        if resource == "openapi.json" and request.method == "GET":
            from app.http.rest.openapi import document

            return Response(
                json.dumps(document(version)),
                media_type=JSON,
                headers={"Cache-Control": "public, max-age=300"},
            )
        matched = [(op, op.match(parts)) for op in OPERATIONS]
        found = [(op, params) for op, params in matched if params is not None]
        if not found:
            raise RestError(
                404, f"No resource at /api/{version}/{resource[:100]}", ErrorCode.NOT_FOUND
            )
        method = "GET" if request.method == "HEAD" else request.method
        for op, params in found:
            if op.method == method:
                return await _serve(request, state, op, params, version, resource, request_id)
        allowed = sorted({op.method for op, _ in found})
        raise RestError(
            405, f"{request.method} is not allowed here", headers={"Allow": ", ".join(allowed)}
        )
    except RestError as error:
        return problem_response(
            error.status,
            error.detail,
            error.code.value,
            request_id,
            error.headers,
            **error.extra,
        )


async def _render(state: AppState, op: Operation, call: Call, resource: str) -> bytes:
    """The handler's answer as JSON; for the catalogue, through the response cache."""

    async def render() -> dict[str, Any]:
        result = await op.handler(call)
        return {"body": result.model_dump_json(by_alias=True), "next": call.link_next}

    responses = state.responses
    if not op.public or responses is None or op.method != "GET":
        return str((await render())["body"]).encode()
    visibility = policy.response_visibility(call.context.principal)
    rendered = await responses.rest(call.version, resource, call.query, visibility, render)
    call.link_next = rendered["next"]
    return str(rendered["body"]).encode()


async def _serve(
    request: Request,
    state: AppState,
    op: Operation,
    params: dict[str, str],
    version: str,
    resource: str,
    request_id: str,
) -> Response:
    context = state.context(
        principal=principal_of(request),
        request_id=request_id,
        client_address=request.client.host if request.client is not None else "",
    )
    call = Call(
        version=version,
        context=context,
        path=params,
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
    )
    headers = {
        "Vary": "Authorization, api-version",
        **deprecation_headers(version, resource, state.settings.api_deprecated_versions),
    }
    try:
        if op.request is not None:
            call.body = await _body(request)
        body = await _render(state, op, call, resource)
    except ApiError as error:
        code = ErrorCode(error.code)
        extra: dict[str, Any] = {}
        if isinstance(error, RateLimited):
            headers["Retry-After"] = str(error.retry_after)
            extra["retry_after"] = error.retry_after
        if code is ErrorCode.UNAUTHENTICATED:
            headers["WWW-Authenticate"] = "Bearer"
        return problem_response(
            _STATUS_BY_CODE.get(code, 400), error.message, code.value, request_id, headers, **extra
        )
    except ValidationError as error:
        return problem_response(
            400,
            "The request body does not match the schema",
            ErrorCode.BAD_USER_INPUT.value,
            request_id,
            headers,
            errors=_validation_problems(error),
        )
    except Rejected as rejected:
        return problem_response(
            422,
            rejected.problems[0].message,
            rejected.problems[0].code.value,
            request_id,
            headers,
            errors=[
                shapes.FieldError(
                    field=None if p.field is None else list(p.field),
                    message=p.message,
                    code=p.code.value,
                )
                for p in rejected.problems
            ],
        )
    if call.link_next is not None:
        headers["Link"] = ", ".join(
            filter(
                None,
                [headers.get("Link"), f'</api/{version}/{resource}?{call.link_next}>; rel="next"'],
            )
        )
    if request.method == "POST":
        if call.location is not None:
            headers["Location"] = call.location
        return Response(
            body, status_code=op.success if call.location else 200, media_type=JSON, headers=headers
        )
    etag = etag_of(body)
    headers["ETag"] = etag
    headers["Cache-Control"] = "public, no-cache" if op.public else "private, no-cache"
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=JSON, headers=headers)


async def not_found(request: Request, exc: Exception) -> Response:
    """The app's 404: a problem document under /api/ (paths no route matches, such as one with a
    control character), Starlette's plain text elsewhere."""
    if request.url.path.startswith("/api/"):
        return problem_response(
            404, "No resource at this path", ErrorCode.NOT_FOUND.value, request_id_of(request)
        )
    return PlainTextResponse("Not Found", status_code=404)
