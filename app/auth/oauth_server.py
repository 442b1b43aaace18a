"""The OAuth 2 authorization server: Authlib's grant and endpoint logic behind an async adapter.

Authlib's server core is synchronous and expects to query storage from inside its calls. Running
it on the event loop with blocking queries would stall every request, so the adapter splits each
request in three:

1. before: everything Authlib will ask for is fetched asynchronously: the client named by the
   request (from HTTP Basic or the form) and, for introspection and revocation, the token's
   database record (its JWT is verified in memory first);
2. during: Authlib runs synchronously over those in-memory objects (`query_client` and
   `query_token` return what was prefetched; `save_token` and `revoke_token` only record what
   to write). This part is pure computation: parsing, SHA-256 and one RS256 signature, about a
   millisecond, so it runs on the loop rather than paying for a thread hop;
3. after: the recorded writes (issued tokens, revocations) are committed asynchronously, and
   failed client authentications are counted for throttling.

The prefetched objects travel in a context variable set just around the synchronous call, so
concurrent requests never see each other's records.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidScopeError,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from app.auth.errors import InvalidCredentials
from app.auth.ratelimit import RateLimiter
from app.auth.revocation import RevokedTokens
from app.auth.scopes import ADMIN, ALL_SCOPES, CLIENT_SCOPES, scope_string
from app.auth.tokens import AccessTokens, VerifiedToken
from app.config import AuthSettings
from app.db.engine import Database
from app.domain.auth import AccessTokenRecord, ClientType, OAuthClient, same_secret
from app.repositories import clients as client_repo

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
GRANT_TYPES = ("client_credentials",)


@dataclass
class OAuthResponse:
    status: int
    body: dict[str, Any]
    headers: list[tuple[str, str]]

    @property
    def error(self) -> str | None:
        error = self.body.get("error")
        return error if isinstance(error, str) else None


@dataclass
class FormRequest:
    """An HTTP request reduced to what the endpoints read: method, URL, headers and form."""

    method: str
    uri: str
    headers: Mapping[str, str]
    form: dict[str, str]

    def claimed_client_id(self) -> str | None:
        """The client the request says it is, before any check (to prefetch its record)."""
        authorization = self.headers.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return unquote(decoded.partition(":")[0]) or None
        return self.form.get("client_id") or None


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: FormRequest) -> None:
        super().__init__(request.method, request.uri, headers=request.headers)
        self._form = request.form
        self.payload = BasicOAuth2Payload(request.form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class _Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, client: OAuthClient) -> None:
        self.record = client

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.record.redirect_uris[0] if self.record.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        return scope_string(set(scope.split()) & self.record.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return same_secret(client_secret, self.record.client_secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.record.client_type is ClientType.PUBLIC:
            return method == "none"
        return method in CLIENT_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.record.grant_types


class _Token(TokenMixin):  # type: ignore[misc]
    def __init__(self, verified: VerifiedToken, record: AccessTokenRecord) -> None:
        self.verified = verified
        self.record = record

    def check_client(self, client: _Client) -> bool:
        return client.get_client_id() == self.record.client_id

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return int((self.record.expires_at - self.record.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.record.expires_at <= datetime.now(UTC)

    def is_revoked(self) -> bool:
        return self.record.revoked_at is not None


@dataclass
class _Prefetched:
    client: OAuthClient | None = None
    token: _Token | None = None
    issued: list[AccessTokenRecord] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)


_current: ContextVar[_Prefetched] = ContextVar("oauth_prefetched")


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_requested_scope(self) -> None:
        """A token carries at most what its client is registered for; asking for more fails."""
        requested = self.request.payload.scope
        if requested is None:
            return
        wanted = set(requested.split())
        if not wanted or not wanted <= set(self.request.client.record.scopes) & CLIENT_SCOPES:
            raise InvalidScopeError("the client may not request that scope")


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
        return _current.get().token

    def check_permission(self, token: _Token, client: _Client, request: Any) -> bool:
        # A client may introspect the tokens issued to it; anything else reads as inactive.
        return bool(token.check_client(client))

    def introspect_token(self, token: _Token) -> dict[str, Any]:
        claims = token.verified.claims
        return {
            "active": True,
            "token_type": "Bearer",
            "scope": token.record.scope,
            "client_id": token.record.client_id,
            "sub": claims["sub"],
            "aud": claims["aud"],
            "iss": claims["iss"],
            "exp": claims["exp"],
            "iat": claims["iat"],
            "jti": claims["jti"],
        }


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
        return _current.get().token

    def revoke_token(self, token: _Token, request: Any) -> None:
        _current.get().revoked.append(token.record.jti)


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, tokens: AccessTokens) -> None:
        super().__init__(scopes_supported=list(ALL_SCOPES))
        self._tokens = tokens
        self.register_grant(_ClientCredentials)
        self.register_endpoint(_Introspection)
        self.register_endpoint(_Revocation)
        self.register_token_generator("default", self._generate)

    def query_client(self, client_id: str) -> _Client | None:
        client = _current.get().client
        if client is None or client.client_id != client_id or not client.is_active:
            return None
        return _Client(client)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        pass  # the generator already recorded it (it alone sees the jti)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: FormRequest | _Request) -> _Request:
        return request if isinstance(request, _Request) else _Request(request)

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> OAuthResponse:
        return OAuthResponse(status, dict(body), list(headers))

    def _generate(
        self,
        grant_type: str,
        client: _Client,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        granted = set(scope.split()) if scope else set(client.record.scopes)
        granted &= CLIENT_SCOPES if user is None else set(ALL_SCOPES)
        text = scope_string(granted - ({ADMIN} if user is None else set()))
        access_token, record = self._tokens.mint(
            client_id=client.get_client_id(), user_id=None, scope=text
        )
        _current.get().issued.append(record)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self._tokens.lifetime,
            "scope": text,
        }


class OAuthServer:
    """The async face the HTTP routes call."""

    def __init__(
        self,
        *,
        db: Database,
        settings: AuthSettings,
        tokens: AccessTokens,
        revoked: RevokedTokens,
        limiter: RateLimiter,
    ) -> None:
        self._db = db
        self._settings = settings
        self._tokens = tokens
        self._revoked = revoked
        self._limiter = limiter
        self._server = _Server(tokens)

    async def token(self, request: FormRequest) -> OAuthResponse:
        return await self._run(request, lambda r: self._server.create_token_response(r))

    async def introspect(self, request: FormRequest) -> OAuthResponse:
        return await self._run(
            request,
            lambda r: self._server.create_endpoint_response("introspection", r),
            with_token=True,
        )

    async def revoke(self, request: FormRequest) -> OAuthResponse:
        return await self._run(
            request,
            lambda r: self._server.create_endpoint_response("revocation", r),
            with_token=True,
        )

    async def _run(
        self, request: FormRequest, call: Any, *, with_token: bool = False
    ) -> OAuthResponse:
        client_id = request.claimed_client_id()
        failures_key = f"client-auth-failures:{client_id}"
        per_minute = self._settings.client_auth_failures_per_minute
        if client_id is not None:
            wait = await self._limiter.acquire(failures_key, per_minute, per_minute, cost=0)
            if wait:
                return OAuthResponse(
                    429,
                    {
                        "error": "invalid_client",
                        "error_description": "too many failed client authentications",
                    },
                    [("Retry-After", str(wait)), ("Cache-Control", "no-store")],
                )
        prefetched = await self._prefetch(request, client_id, with_token)
        with _bound(prefetched):
            response: OAuthResponse = call(_Request(request))
        if response.error == "invalid_client":
            _as_unauthorized(response)
            if client_id is not None:
                await self._limiter.acquire(failures_key, per_minute, per_minute)
        if prefetched.issued or prefetched.revoked:
            now = datetime.now(UTC)
            async with self._db.transaction() as conn:
                await client_repo.insert_tokens(conn, prefetched.issued)
                for jti in prefetched.revoked:
                    await client_repo.revoke_tokens_where(conn, now, jti=jti)
            for jti in prefetched.revoked:
                self._revoked.add(jti)
        return response

    async def _prefetch(
        self, request: FormRequest, client_id: str | None, with_token: bool
    ) -> _Prefetched:
        prefetched = _Prefetched()
        verified: VerifiedToken | None = None
        if with_token and (token := request.form.get("token")):
            try:
                verified = self._tokens.verify(token)
            except InvalidCredentials:
                verified = None  # not ours, tampered or expired: inactive / nothing to revoke
        if client_id is None and verified is None:
            return prefetched
        async with self._db.read() as conn:
            if client_id is not None and len(client_id) <= 64:
                prefetched.client = await client_repo.get_by_client_id(conn, client_id)
            if verified is not None:
                record = await client_repo.get_token(conn, verified.jti)
                if record is not None:
                    prefetched.token = _Token(verified, record)
        return prefetched


def _as_unauthorized(response: OAuthResponse) -> None:
    """invalid_client is always 401 with a challenge, whichever method the client tried."""
    response.status = 401
    if not any(name.lower() == "www-authenticate" for name, _ in response.headers):
        response.headers.append(("WWW-Authenticate", 'Basic error="invalid_client"'))


@contextmanager
def _bound(prefetched: _Prefetched) -> Iterator[None]:
    token = _current.set(prefetched)
    try:
        yield
    finally:
        _current.reset(token)


def metadata(settings: AuthSettings) -> dict[str, Any]:
    """RFC 8414 metadata: every URL is built from the configured issuer."""
    issuer = settings.issuer
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": list(ALL_SCOPES),
        # No authorization endpoint yet, so no response type is supported.
        "response_types_supported": [],
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
    }
