"""GET/POST /oauth/authorize: the login and consent pages of the authorization-code flow.

Server-rendered HTML that works without JavaScript. The login session lives in a signed cookie
(Starlette's SessionMiddleware, itsdangerous) scoped to this path: `HttpOnly`, `SameSite=Lax`,
`Secure` outside development. GraphQL never reads it (the authenticator reads only headers).
Every form carries the session's CSRF token; a POST without the right one is refused before
anything else happens. Successful POSTs answer 303 (RFC 9700 §4.11), so the browser follows with
a GET and never re-posts credentials to the client.
"""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import Mapping
from string import Template
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.authorize import (
    AuthorizationRequest,
    NoRedirect,
    RedirectError,
    redirect_location,
    single_values,
    validate,
)
from app.auth.login import Outcome
from app.auth.scopes import scope_string
from app.auth.services import AuthServices
from app.config import AuthSettings
from app.domain.models import User
from app.errors import ServiceUnavailable
from app.repositories import users as user_repo

PATH = "/oauth/authorize"
COOKIE = "og_session"
MAX_FORM_BYTES = 16 * 1024
SCOPE_TEXT = {
    "products:read": "See the product catalogue",
    "orders:read": "See your orders",
    "orders:write": "Place and change your orders",
    "orders:fulfill": "Fulfil orders",
    "users:read": "See every user's account",
    "admin": "Administer everything",
}
_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

_PAGE = Template("""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · ordergraph</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
label,input,button{display:block;margin:.4rem 0}input{width:100%;padding:.4rem}
.error{color:#a00}button{padding:.5rem 1rem}.row{display:flex;gap:1rem}</style>
</head>
<body>
<h1>$title</h1>
$body
</body>
</html>
""")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, status: int = 200, **headers: str) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.substitute(title=_e(title), body=body),
        status_code=status,
        headers={**_HEADERS, **headers},
    )


def _hidden(values: Mapping[str, str]) -> str:
    return "\n".join(
        f'<input type="hidden" name="{_e(name)}" value="{_e(value)}">'
        for name, value in values.items()
    )


def _error_page(message: str, status: int = 400, **headers: str) -> HTMLResponse:
    return _page("Cannot continue", f'<p class="error">{_e(message)}</p>', status, **headers)


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def _login_page(
    request: Request, auth: AuthorizationRequest, error: str | None = None, status: int = 200
) -> HTMLResponse:
    message = f'<p class="error" role="alert">{_e(error)}</p>' if error else ""
    body = f"""<p><strong>{_e(auth.client.name)}</strong> asks you to sign in.</p>
{message}
<form method="post" action="{PATH}">
{_hidden({**auth.parameters(), "csrf_token": _csrf(request), "action": "login"})}
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>"""
    return _page("Sign in", body, status)


def _consent_page(request: Request, auth: AuthorizationRequest, user: User) -> HTMLResponse:
    granted = auth.granted_to(user)
    items = "".join(
        f"<li>{_e(SCOPE_TEXT.get(s, s))} (<code>{_e(s)}</code>)</li>"
        for s in (s for s in scope_string(granted).split())
    )
    withheld = auth.scopes - granted
    note = (
        f"<p>Not granted (your account does not hold them): {_e(scope_string(withheld))}</p>"
        if withheld
        else ""
    )
    fields = {**auth.parameters(), "scope": scope_string(granted)}
    body = f"""<p>Signed in as <strong>{_e(user.email)}</strong>.</p>
<p><strong>{_e(auth.client.name)}</strong> would like to:</p>
<ul>{items or "<li>Know who you are</li>"}</ul>
{note}
<form method="post" action="{PATH}">
{_hidden({**fields, "csrf_token": _csrf(request), "action": "consent"})}
<div class="row">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</div>
</form>"""
    return _page("Authorize access", body)


def _services(request: Request) -> AuthServices:
    services: AuthServices = request.app.state.og.auth
    return services


def _to_client(auth: AuthorizationRequest, settings: AuthSettings, **values: str) -> Response:
    """Back to the client's registered redirect URI, with `state` and `iss` (RFC 9207)."""
    location = redirect_location(
        auth.redirect_uri, {**values, "state": auth.state, "iss": settings.issuer}
    )
    return RedirectResponse(location, status_code=303, headers=_HEADERS)


def _redirect_error(
    params: Mapping[str, str], auth_error: RedirectError, settings: AuthSettings, request: Request
) -> Response:
    # validate() only raises RedirectError once the client and redirect URI are verified.
    location = redirect_location(
        params["redirect_uri"],
        {
            "error": auth_error.error,
            "error_description": auth_error.description,
            "state": params.get("state"),
            "iss": settings.issuer,
        },
    )
    status = 303 if request.method == "POST" else 302
    return RedirectResponse(location, status_code=status, headers=_HEADERS)


async def _session_user(request: Request) -> User | None:
    """The signed-in user, if the session is fresh and the user still exists and is enabled."""
    settings = _services(request).settings
    raw, signed_in_at = request.session.get("uid"), request.session.get("auth_at")
    if not isinstance(raw, str) or not isinstance(signed_in_at, int):
        return None
    if time.time() - signed_in_at > settings.session_seconds:
        request.session.clear()
        return None
    try:
        user_id = UUID(raw)
    except ValueError:
        return None
    async with _services(request).db.read() as conn:
        user = (await user_repo.get_by_ids(conn, [user_id])).get(user_id)
    if user is None or user.is_disabled:
        request.session.clear()
        return None
    return user


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise NoRedirect("the form must be sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise NoRedirect("the form is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise NoRedirect("the form is not valid form data") from None
    return single_values(pairs)


async def authorize(request: Request) -> Response:
    services = _services(request)
    settings = services.settings
    try:
        if request.method == "GET":
            params = single_values(parse_qsl(request.url.query, keep_blank_values=True))
        else:
            params = await _form(request)
            expected = request.session.get("csrf")
            presented = params.get("csrf_token", "")
            if not isinstance(expected, str) or not secrets.compare_digest(
                expected.encode(), presented.encode()
            ):
                return _error_page(
                    "The form has expired or did not come from this site (CSRF check failed). "
                    "Go back to the application and start again.",
                    403,
                )
        auth = await validate(services.db, params)
    except NoRedirect as error:
        return _error_page(f"This authorization request is invalid: {error}.")
    except RedirectError as error:
        return _redirect_error(params, error, settings, request)

    if request.method == "GET":
        user = await _session_user(request)
        return _login_page(request, auth) if user is None else _consent_page(request, auth, user)
    if params.get("action") == "login":
        return await _login(request, auth, params)
    if params.get("action") == "consent":
        return await _consent(request, auth, params)
    return _error_page("The form is incomplete.")


async def _login(
    request: Request, auth: AuthorizationRequest, params: Mapping[str, str]
) -> Response:
    services = _services(request)
    address = request.client.host if request.client else "unknown"
    result = await services.logins.sign_in(
        params.get("email", ""), params.get("password", ""), address
    )
    if result.outcome is Outcome.THROTTLED:
        response = _login_page(
            request,
            auth,
            f"Too many failed sign-ins. Try again in {result.retry_after} seconds.",
            429,
        )
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    if result.outcome is Outcome.INVALID or result.user is None:
        return _login_page(request, auth, "The email or password is wrong.", 400)
    # A new session (and CSRF token) on sign-in, so a planted cookie cannot be fixed in place.
    request.session.clear()
    request.session.update(
        uid=str(result.user.id), auth_at=int(time.time()), csrf=secrets.token_urlsafe(32)
    )
    return RedirectResponse(
        f"{PATH}?{urlencode(auth.parameters())}", status_code=303, headers=_HEADERS
    )


async def _consent(
    request: Request, auth: AuthorizationRequest, params: Mapping[str, str]
) -> Response:
    services = _services(request)
    user = await _session_user(request)
    if user is None:
        return _login_page(request, auth, "Please sign in again.", 401)
    if params.get("decision") != "approve":
        return _to_client(
            auth, services.settings, error="access_denied", error_description="the user denied"
        )
    if not auth.scopes <= auth.granted_to(user):
        # The form asked for more than the page offered: tampering, not a choice.
        return _to_client(
            auth,
            services.settings,
            error="invalid_scope",
            error_description="the consent covers scopes the user cannot grant",
        )
    code = await services.oauth.issue_code(
        client=auth.client,
        user=user,
        redirect_uri=auth.redirect_uri,
        scope=scope_string(auth.scopes),
        code_challenge=auth.code_challenge,
    )
    return _to_client(auth, services.settings, code=code)


async def _endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    try:
        response = await authorize(request)
    except ServiceUnavailable:
        response = _error_page(
            "The service is temporarily unavailable. Please try again in a moment.",
            503,
            **{"Retry-After": "1"},
        )
    await response(scope, receive, send)


def endpoint(settings: AuthSettings) -> ASGIApp:
    """The ASGI app to route at /oauth/authorize: the pages inside the session middleware,
    whose cookie is sent back to this path only."""
    return SessionMiddleware(
        _endpoint,
        secret_key=settings.session_key,
        session_cookie=COOKIE,
        max_age=settings.session_seconds,
        path=PATH,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
