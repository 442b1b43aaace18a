"""The authorization endpoint's rules (RFC 6749 §4.1, RFC 9700, RFC 9207), without HTTP.

Order matters: until the client and its redirect URI are known to be genuine, nothing may be sent
to the redirect URI (an open redirector otherwise), so those failures are `NoRedirect` and the
page shows an error. Everything after that goes back to the client as `RedirectError`, with
`state` and `iss`. PKCE with S256 is required of every client, confidential or public: a missing
`code_challenge`, `plain`, or a missing method are refused here, before anyone signs in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.auth.scopes import ROLE_SCOPES, UnknownScope, parse_scopes, scope_string
from app.db.engine import Database
from app.domain.auth import OAuthClient
from app.domain.models import User
from app.domain.text import is_storable
from app.repositories import clients as client_repo

AUTHORIZATION_PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
MAX_STATE_LENGTH = 1024


class NoRedirect(Exception):
    """The client or redirect URI cannot be trusted: say so on a page, never redirect."""


class RedirectError(Exception):
    """An error to report to the (validated) client through its redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class AuthorizationRequest:
    client: OAuthClient
    redirect_uri: str
    scopes: frozenset[str]
    state: str | None
    code_challenge: str

    def parameters(self) -> dict[str, str]:
        """The request again, for the hidden fields of the login and consent forms."""
        values = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope_string(self.scopes),
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.state is not None:
            values["state"] = self.state
        return values

    def granted_to(self, user: User) -> frozenset[str]:
        """What the user can actually delegate: the request, within what their role holds."""
        return self.scopes & ROLE_SCOPES[user.role]


def single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Parameters as a dict; a repeated one is refused (RFC 6749 §3.1) before anything else."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if not (is_storable(name) and is_storable(value)):
            raise NoRedirect("parameters must be text without NUL characters")
        if name in values:
            raise NoRedirect(f"the parameter {name!r} is repeated")
        values[name] = value
    return values


async def validate(db: Database, params: Mapping[str, str]) -> AuthorizationRequest:
    client_id = params.get("client_id", "")
    if not client_id or len(client_id) > 64:
        raise NoRedirect("the request names no client (client_id)")
    async with db.read() as conn:
        client = await client_repo.get_by_client_id(conn, client_id)
    if client is None or not client.is_active:
        raise NoRedirect("the client is unknown or has been revoked")
    if "authorization_code" not in client.grant_types:
        raise NoRedirect("the client is not registered for the authorization-code flow")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise NoRedirect("the request has no redirect_uri")
    if redirect_uri not in client.redirect_uris:
        raise NoRedirect("the redirect_uri is not one the client registered")
    # From here on the redirect URI is trusted: errors go back to the client.
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE_LENGTH:
        raise NoRedirect("the state parameter is too long")
    if params.get("response_type") != "code":
        raise RedirectError("unsupported_response_type", "only response_type=code is supported")
    challenge = params.get("code_challenge", "")
    if not challenge:
        raise RedirectError("invalid_request", "code_challenge is required (PKCE with S256)")
    if params.get("code_challenge_method") != "S256":
        raise RedirectError("invalid_request", "code_challenge_method must be S256")
    if not _CHALLENGE.match(challenge):
        raise RedirectError("invalid_request", "code_challenge is malformed")
    raw_scope = params.get("scope")
    try:
        scopes = parse_scopes(raw_scope) if raw_scope else client.scopes
    except UnknownScope as error:
        raise RedirectError("invalid_scope", str(error)) from None
    if not scopes or not scopes <= client.scopes:
        raise RedirectError("invalid_scope", "the client may not request that scope")
    return AuthorizationRequest(client, redirect_uri, scopes, state, challenge)


def redirect_location(redirect_uri: str, values: Mapping[str, str | None]) -> str:
    """The redirect URI with the response parameters added to whatever query it has."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in values.items() if v is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))
