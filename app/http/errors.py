"""Turn execution errors into the API's error catalogue; internal details never reach clients."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

from app.errors import ApiError, RateLimited

log = logging.getLogger("app.graphql")

INTERNAL_MESSAGE = "Internal server error"


def format_error(error: GraphQLError, request_id: str, debug: bool) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    extensions = dict(formatted.get("extensions") or {})
    if isinstance(original, ApiError):
        extensions["code"] = original.code
        if isinstance(original, RateLimited):
            extensions["retryAfter"] = original.retry_after
    elif original is None:
        extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
    elif isinstance(original, GraphQLError):
        extensions.setdefault("code", "BAD_USER_INPUT")
    else:
        log.error(
            "internal error in %s (request %s)",
            ".".join(map(str, error.path or [])) or "operation",
            request_id,
            exc_info=original,
        )
        extensions["code"] = "INTERNAL_SERVER_ERROR"
        extensions["requestId"] = request_id
        if not debug:
            formatted["message"] = INTERNAL_MESSAGE
    formatted["extensions"] = extensions
    return formatted
