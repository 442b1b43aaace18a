"""RFC 9457 problem documents: every REST error, with the API's catalogue code in `code`."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from app.http.rest.shapes import Problem

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem_response(
    status: int,
    detail: str,
    code: str,
    request_id: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = Problem(
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        code=code,
        request_id=request_id,
        **extra,
    )
    # Optional members are left out when empty; nested ones (an error's `field`) stay, null.
    members = {
        k: v for k, v in body.model_dump(mode="json", by_alias=True).items() if v is not None
    }
    return Response(
        json.dumps(members, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )
