"""Authenticate GraphQL requests before they reach the endpoint.

A plain ASGI middleware (not BaseHTTPMiddleware, which breaks context variables and streaming):
it asks the one authenticator for the request's principal and leaves it in `request.state`, or
answers 401 / 429 itself so no GraphQL runs for a refused credential.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.authenticator import CREDENTIAL_HEADERS, Authenticator
from app.auth.errors import InvalidCredentials, TooManyRequests
from app.auth.principal import ANONYMOUS, Principal
from app.errors import ServiceUnavailable
from app.http import encoding
from app.http.request_id import HEADER, request_id_in
from app.http.rest.problems import problem_response

log = logging.getLogger("app.http.auth")

_CREDENTIAL_KEYS = frozenset(name.encode("latin-1") for name in CREDENTIAL_HEADERS)


def principal_of(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    return principal if isinstance(principal, Principal) else ANONYMOUS


def _www_authenticate(error: InvalidCredentials) -> str:
    # Descriptions are fixed text, but a header must never carry anything but printable ASCII
    # (a CR/LF would split it, other bytes fail to encode), so anything else is replaced.
    description = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in error.message)
    return f'Bearer error="{error.error}", error_description="{description}"'


Reply = Callable[..., Awaitable[None]]


async def authenticate(scope: Scope, send: Send, reply: Reply) -> Principal | None:
    """The request's principal, or None once `reply` has answered the refusal (400 or 401 for
    credentials, 429 for the rate limit, 503 when authentication cannot be checked)."""
    request_id = request_id_in(scope)
    authenticator: Authenticator = scope["app"].state.og.auth.authenticator
    client = scope.get("client")
    try:
        # Only the headers that can carry a credential (names are lower case in ASGI): the
        # authenticator reads nothing else, and needs to see each of their copies.
        credentials = Headers(raw=[h for h in scope["headers"] if h[0] in _CREDENTIAL_KEYS])
        return await authenticator.authenticate(credentials, client[0] if client else "")
    except InvalidCredentials as error:
        # RFC 6750: a malformed request (two credentials, a repeated header, another
        # scheme) is 400; a credential that does not prove anything is 401.
        malformed = error.error == "invalid_request"
        await reply(
            send,
            400 if malformed else 401,
            error.message,
            "BAD_USER_INPUT" if malformed else "UNAUTHENTICATED",
            request_id,
            [("www-authenticate", _www_authenticate(error))],
        )
    except TooManyRequests as error:
        await reply(
            send,
            429,
            str(error),
            "RATE_LIMITED",
            request_id,
            [("retry-after", str(error.retry_after))],
            {"retryAfter": error.retry_after},
        )
    except ServiceUnavailable as error:
        # The engine has translated database trouble already (app.db.engine); anything
        # else raised here is a bug, which the edge answers with a 500.
        log.warning("authentication unavailable (request %s): %s", request_id, error.message)
        await reply(
            send,
            503,
            "Authentication is temporarily unavailable",
            "SERVICE_UNAVAILABLE",
            request_id,
            [("retry-after", "1")],
        )
    return None


class AuthMiddleware:
    """`paths` are answered in GraphQL's error shape; paths under `problem_prefixes` (the REST
    API) in RFC 9457 problem documents. (The edge authenticates its own /graphql requests the
    same way: app.http.edge.)"""

    def __init__(
        self,
        app: ASGIApp,
        paths: Sequence[str] = ("/graphql",),
        problem_prefixes: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.paths = tuple(paths)
        self.problem_prefixes = tuple(problem_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = scope["path"].startswith(self.problem_prefixes)
        if scope["path"] not in self.paths and not problems:
            await self.app(scope, receive, send)
            return
        principal = await authenticate(scope, send, _problem_reply if problems else graphql_reply)
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
            await self.app(scope, receive, send)


async def graphql_reply(
    send: Send,
    status: int,
    message: str,
    code: str,
    request_id: str,
    headers: list[tuple[str, str]],
    extra: dict[str, object] | None = None,
) -> None:
    body = encoding.dumps(
        {"errors": [{"message": message, "extensions": {"code": code, **(extra or {})}}]}
    )
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (HEADER.lower().encode(), request_id.encode()),
        *((name.encode(), value.encode("latin-1")) for name, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _problem_reply(
    send: Send,
    status: int,
    message: str,
    code: str,
    request_id: str,
    headers: list[tuple[str, str]],
    extra: dict[str, object] | None = None,
) -> None:
    response = problem_response(
        status,
        message,
        code,
        request_id,
        dict(headers),
        **{
            "retry_after" if name == "retryAfter" else name: value
            for name, value in (extra or {}).items()
        },
    )
    response.headers[HEADER] = request_id
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> dict[str, object]:
    return {"type": "http.disconnect"}
