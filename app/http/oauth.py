"""OAuth 2 routes: token, introspection, revocation, server metadata and the JWKS.

Errors are RFC 6749 JSON bodies, never HTML: malformed requests are refused here with
`invalid_request` before Authlib sees them, and a database outage is 503 `temporarily_unavailable`
with `Retry-After` (never a 500, never the GraphQL error shape).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.auth.oauth_server import FormRequest, OAuthResponse, OAuthServer, metadata
from app.auth.services import AuthServices
from app.domain.text import is_storable
from app.errors import ServiceUnavailable

MAX_FORM_BYTES = 16 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _services(request: Request) -> AuthServices:
    services: AuthServices = request.app.state.og.auth
    return services


def _error(status: int, error: str, description: str) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=NO_STORE
    )


async def _form_request(request: Request) -> FormRequest | Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _error(400, "invalid_request", "the request body is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return _error(400, "invalid_request", "the body is not valid form data")
    form: dict[str, str] = {}
    for name, value in pairs:
        if not (is_storable(name) and is_storable(value)):
            return _error(400, "invalid_request", "parameters must be text without NUL characters")
        if name in form:
            # RFC 6749 §3.2: parameters must not be repeated.
            return _error(400, "invalid_request", f"the parameter {name!r} is repeated")
        form[name] = value
    settings = _services(request).settings
    return FormRequest(
        method=request.method,
        uri=f"{settings.issuer}{request.url.path}",
        headers=request.headers,
        form=form,
        address=request.client.host if request.client else "unknown",
    )


def _unavailable_is_503(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    @wraps(handler)
    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except ServiceUnavailable:
            response = _error(
                503, "temporarily_unavailable", "the server is temporarily unavailable"
            )
            response.headers["Retry-After"] = "1"
            return response

    return guarded


def _respond(result: OAuthResponse) -> Response:
    headers: dict[str, str] = dict(NO_STORE)
    for name, value in result.headers:
        if name.lower() != "content-type":
            headers[name] = value
    return JSONResponse(result.body, status_code=result.status, headers=headers)


def _form_endpoint(
    step: Callable[[OAuthServer, FormRequest], Awaitable[OAuthResponse]],
) -> Callable[[Request], Awaitable[Response]]:
    """A form-posting OAuth endpoint: read the form, let the server act, answer in RFC 6749 JSON."""

    @_unavailable_is_503
    async def endpoint(request: Request) -> Response:
        parsed = await _form_request(request)
        if isinstance(parsed, Response):
            return parsed
        return _respond(await step(_services(request).oauth, parsed))

    return endpoint


token = _form_endpoint(OAuthServer.token)
introspect = _form_endpoint(OAuthServer.introspect)
revoke = _form_endpoint(OAuthServer.revoke)


async def server_metadata(request: Request) -> Response:
    body: dict[str, Any] = metadata(_services(request).settings)
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})


async def jwks(request: Request) -> Response:
    return JSONResponse(
        _services(request).keys.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


routes = [
    Route("/oauth/token", token, methods=["POST"]),
    Route("/oauth/introspect", introspect, methods=["POST"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", server_metadata, methods=["GET"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
]
