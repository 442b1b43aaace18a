"""The GraphQL endpoint over HTTP: POST for any operation, GET for queries only."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from app.db.engine import track_statements
from app.http.errors import format_error
from app.http.request_id import HEADER, request_id_from
from app.state import AppState
from resolvers.context import Context

JSON_TYPES = ("application/json", "application/graphql-response+json")


def _error_response(message: str, code: str, status: int, request_id: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers={HEADER: request_id})


async def _params(request: Request) -> dict[str, Any] | str:
    """The request's operation parameters, or a message saying why there are none."""
    if request.method == "GET":
        params: dict[str, Any] = dict(request.query_params)
        if "variables" in params:
            try:
                params["variables"] = json.loads(params["variables"])
            except ValueError:
                return "`variables` is not valid JSON"
        if "extensions" in params:
            try:
                params["extensions"] = json.loads(params["extensions"])
            except ValueError:
                return "`extensions` is not valid JSON"
        return params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return "POST bodies must be application/json"
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return "The request body is not valid JSON"
    if not isinstance(body, dict):
        return "The request body must be a JSON object"
    return body


async def graphql_endpoint(request: Request) -> Response:
    state: AppState = request.app.state.og
    request_id = request_id_from(request.headers.get(HEADER))
    params = await _params(request)
    if isinstance(params, str):
        return _error_response(params, "BAD_USER_INPUT", 400, request_id)
    query = params.get("query")
    variables = params.get("variables")
    operation_name = params.get("operationName")
    if not isinstance(query, str) or not query.strip():
        return _error_response(
            "`query` must be a non-empty string", "BAD_USER_INPUT", 400, request_id
        )
    if variables is not None and not isinstance(variables, dict):
        return _error_response("`variables` must be an object", "BAD_USER_INPUT", 400, request_id)
    if operation_name is not None and not isinstance(operation_name, str):
        return _error_response(
            "`operationName` must be a string", "BAD_USER_INPUT", 400, request_id
        )

    allowed = (
        (OperationType.QUERY,)
        if request.method == "GET"
        else (OperationType.QUERY, OperationType.MUTATION)
    )
    after_commit = None if state.dispatcher is None else state.dispatcher.wake
    context = Context.create(state.db, request_id=request_id, after_commit=after_commit)
    started = time.perf_counter()
    with track_statements() as stats:
        try:
            result = await state.schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
                allowed_operation_types=allowed,
            )
        except InvalidOperationTypeError:
            return _error_response(
                "Only queries may be sent with GET", "BAD_USER_INPUT", 405, request_id
            )
        except CannotGetOperationTypeError:
            return _error_response(
                "The document has no operation with that name", "BAD_USER_INPUT", 400, request_id
            )
        except MissingQueryError:
            return _error_response("`query` is missing", "BAD_USER_INPUT", 400, request_id)

    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [format_error(e, request_id, state.settings.debug) for e in result.errors]
    if result.data is not None or not result.errors:
        body["data"] = result.data
    if state.settings.debug:
        body["extensions"] = {
            "debug": {
                "sqlStatements": stats.statements,
                "sqlMs": round(stats.seconds * 1000, 3),
                "elapsedMs": round((time.perf_counter() - started) * 1000, 3),
            }
        }
    return JSONResponse(body, headers={HEADER: request_id})
