"""The API's one error catalogue, and turning errors into response entries.

Every error a client sees carries `extensions.code` from `ErrorCode`; internal details never reach
clients unless DEBUG is on, and every internal error is logged with its traceback and request ID.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from graphql import GraphQLError

from app.errors import ApiError, RateLimited

log = logging.getLogger("app.graphql")

INTERNAL_MESSAGE = "Internal server error"


class ErrorCode(enum.StrEnum):
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    TOO_MANY_OPERATIONS = "TOO_MANY_OPERATIONS"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    PERSISTED_QUERY_REQUIRED = "PERSISTED_QUERY_REQUIRED"


def error_entry(message: str, code: ErrorCode, **extensions: Any) -> dict[str, Any]:
    """An error the HTTP layer reports itself, before or instead of executing an operation."""
    return {"message": message, "extensions": {"code": code.value, **extensions}}


def format_error(error: GraphQLError, request_id: str, debug: bool) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    extensions = dict(formatted.get("extensions") or {})
    if isinstance(original, ApiError):
        extensions["code"] = original.code
        if isinstance(original, RateLimited):
            extensions["retryAfter"] = original.retry_after
    elif "code" in extensions:
        pass  # coded where it was raised: parse, limit, validation and request errors
    elif original is None and error.path is None:
        extensions["code"] = ErrorCode.GRAPHQL_VALIDATION_FAILED.value
    elif isinstance(original, GraphQLError) and error.path is None:
        extensions["code"] = ErrorCode.BAD_USER_INPUT.value
    else:
        # A resolver raised something unexpected, or graphql-core found a resolver breaking the
        # schema's promises (a null for a non-null field): a bug either way.
        log.error(
            "internal error in %s (request %s): %s",
            ".".join(map(str, error.path or [])) or "operation",
            request_id,
            error.message,
            exc_info=original,
        )
        extensions["code"] = ErrorCode.INTERNAL_SERVER_ERROR.value
        extensions["requestId"] = request_id
        if not debug:
            formatted["message"] = INTERNAL_MESSAGE
    formatted["extensions"] = extensions
    return formatted
