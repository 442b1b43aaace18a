"""The OAuth 2 authorization server: Authlib's grant and endpoint logic behind an async adapter.

Authlib's server core is synchronous and expects to query storage from inside its calls. Running
it on the event loop with blocking queries would stall every request, so the adapter splits each
request in three:

1. before: everything Authlib will ask for is fetched asynchronously: the client named by the
   request (from HTTP Basic or the form) and, for introspection and revocation, the token's
   database record (its JWT is verified in memory first; revocation also looks an opaque refresh
   token up by its SHA-256);
2. during: Authlib runs synchronously over those in-memory objects (`query_client` and
   `query_token` return what was prefetched; `save_token` and `revoke_token` only record what
   to write). This part is pure computation: parsing, SHA-256 and one RS256 signature, about a
   millisecond, so it runs on the loop rather than paying for a thread hop;
3. after: the recorded writes (issued tokens, revocations) are committed asynchronously, and
   failed client authentications are counted for throttling, per client and address; past the
   limit a failure is answered 429, but a correct secret is never refused.

User grants (authorization_code with PKCE S256, refresh_token with rotation) follow the same
pattern: the code or refresh token is looked up by its SHA-256 before Authlib runs; Authlib only
records that it must be consumed, and the commit consumes it with a conditional UPDATE, so two
concurrent uses cannot both succeed. A replayed code or refresh token revokes its whole family (the
access and refresh tokens descending from one code exchange) and answers a bare `invalid_grant`,
exactly like an unknown one.

The prefetched objects travel in a context variable set just around the synchronous call, so
concurrent requests never see each other's records.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote
from uuid import UUID

from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from app.auth import grants
from app.auth.errors import InvalidCredentials
from app.auth.ratelimit import RateLimiter
from app.auth.revocation import RevokedTokens
from app.auth.scopes import ADMIN, ALL_SCOPES, CLIENT_SCOPES, ROLE_SCOPES, scope_string
from app.auth.tokens import AccessTokens, VerifiedToken
from app.config import AuthSettings
from app.db.engine import Database
from app.domain.auth import (
    AccessTokenRecord,
    AuthorizationCode,
    ClientType,
    OAuthClient,
    RefreshToken,
    same_secret,
    secret_hash,
)
from app.domain.models import User
from app.domain.text import is_storable
from app.repositories import clients as client_repo
from app.repositories import grants as grant_repo
from app.repositories import users as user_repo
from app.unit_of_work import UnitOfWorkFactory

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
CODE_CHALLENGE_METHODS = ("S256",)
MAX_SECRET_LENGTH = 512


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
    address: str = "local"  # the client's network address, for failure throttling

    def _basic(self) -> tuple[bool, str | None]:
        """(whether HTTP Basic is used, its decoded `id:secret` text or None when malformed)."""
        scheme, _, value = self.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "basic":
            return False, None
        if not value.strip():
            return True, None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):  # binascii.Error, non-ASCII text, not UTF-8
            return True, None
        # A NUL (raw, or percent-encoded in the ID) could never name a stored client.
        return True, decoded if is_storable(unquote(decoded)) else None

    def malformed_basic(self) -> bool:
        """HTTP Basic credentials that are not base64 of UTF-8 text (Authlib would crash)."""
        used, decoded = self._basic()
        return used and decoded is None

    def claimed_client_id(self) -> str | None:
        """The client the request says it is, before any check (to prefetch its record)."""
        used, decoded = self._basic()
        if used:
            return None if decoded is None else unquote(decoded.partition(":")[0]) or None
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
        return response_type == "code" and "authorization_code" in self.record.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.record.grant_types


class _StoredToken(TokenMixin):  # type: ignore[misc]
    """What Authlib asks of a token, answered from its stored record (access or refresh)."""

    record: AccessTokenRecord | RefreshToken

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


class _Token(_StoredToken):
    record: AccessTokenRecord

    def __init__(self, verified: VerifiedToken, record: AccessTokenRecord) -> None:
        self.verified = verified
        self.record = record


class _Code(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, record: AuthorizationCode) -> None:
        self.record = record
        self.code_challenge = record.code_challenge
        self.code_challenge_method = record.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope


class _Refresh(_StoredToken):
    record: RefreshToken

    def __init__(self, record: RefreshToken) -> None:
        self.record = record


@dataclass
class _Prefetched:
    client: OAuthClient | None = None
    token: _Token | None = None
    code: AuthorizationCode | None = None
    refresh: RefreshToken | None = None
    user: User | None = None
    issued: list[AccessTokenRecord] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    # User grants: the family new tokens join, what to consume, what to revoke after a replay.
    family_id: UUID | None = None
    new_refresh: list[RefreshToken] = field(default_factory=list)
    consume_code: str | None = None
    rotate_refresh: str | None = None
    replayed_family: UUID | None = None
    revoke_family: UUID | None = None  # a refresh token revoked at /oauth/revoke


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


def _same_s256(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(expected, challenge)


class _Pkce(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only, for every client (RFC 9700 §2.1.1); Authlib's default allows `plain`
    and lets confidential clients skip it. The authorize step (app.auth.authorize) already refused
    a missing challenge, so every stored code has one and the verifier is always required."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = list(CODE_CHALLENGE_METHODS)
    CODE_CHALLENGE_METHODS = {"S256": _same_s256}

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [*CLIENT_AUTH_METHODS, "none"]

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        prefetched = _current.get()
        record = prefetched.code
        if record is None or record.client_id != client.get_client_id():
            return None
        if record.used_at is not None:
            # A replay: whoever holds this code may be an attacker; end what it produced.
            prefetched.replayed_family = record.family_id
            return None
        if record.expires_at <= datetime.now(UTC):
            return None
        prefetched.family_id = uuid.uuid4()
        return _Code(record)

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        _current.get().consume_code = authorization_code.record.code_hash

    def authenticate_user(self, authorization_code: _Code) -> User | None:
        return _active_user(authorization_code.record.user_id)


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [*CLIENT_AUTH_METHODS, "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> _Refresh | None:
        """Every refusal returns None, so Authlib answers the same bare invalid_grant for an
        unknown, expired, revoked, replayed or foreign token: nothing tells them apart."""
        prefetched = _current.get()
        record = prefetched.refresh
        if record is None or record.client_id != self.request.client.get_client_id():
            return None
        if record.revoked_at is not None:
            return None
        if record.used_at is not None:
            prefetched.replayed_family = record.family_id
            return None
        if record.expires_at <= datetime.now(UTC) or _active_user(record.user_id) is None:
            return None
        prefetched.family_id = record.family_id
        return _Refresh(record)

    def authenticate_user(self, refresh_token: _Refresh) -> User | None:
        return _active_user(refresh_token.record.user_id)

    def revoke_old_credential(self, refresh_token: _Refresh) -> None:
        _current.get().rotate_refresh = refresh_token.record.token_hash


def _active_user(user_id: UUID) -> User | None:
    user = _current.get().user
    if user is None or user.id != user_id or user.is_disabled:
        return None
    return user


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
    """RFC 7009 for access tokens (JWTs) and refresh tokens (opaque, found by their hash).

    Public clients revoke their own tokens by naming themselves (`client_id`, no secret): they
    hold no secret, and revoking is only ever a loss for whoever holds the token. The hint is only
    a hint (§2.1): both kinds are looked up whatever it says.
    """

    CLIENT_AUTH_METHODS = [*CLIENT_AUTH_METHODS, "none"]

    def query_token(
        self, token_string: str, token_type_hint: str | None
    ) -> _Token | _Refresh | None:
        prefetched = _current.get()
        if prefetched.token is not None:
            return prefetched.token
        return None if prefetched.refresh is None else _Refresh(prefetched.refresh)

    def revoke_token(self, token: _Token | _Refresh, request: Any) -> None:
        if isinstance(token, _Refresh):
            # A refresh token stands for its whole grant (§2.1): end every token of the family.
            _current.get().revoke_family = token.record.family_id
        else:
            _current.get().revoked.append(token.record.jti)


class _Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, tokens: AccessTokens, settings: AuthSettings) -> None:
        super().__init__(scopes_supported=list(ALL_SCOPES))
        self._tokens = tokens
        self._refresh_lifetime = timedelta(seconds=settings.refresh_token_seconds)
        self.register_grant(_ClientCredentials)
        self.register_grant(_CodeGrant, [_Pkce(required=True)])
        self.register_grant(_RefreshGrant)
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
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        if user is not None:
            return self._user_token(client, user, scope, include_refresh_token)
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

    def _user_token(
        self, client: _Client, user: User, scope: str | None, include_refresh_token: bool
    ) -> dict[str, Any]:
        """A user's token: what was granted, still within the client's and the role's scopes."""
        prefetched = _current.get()
        allowed = client.record.scopes & ROLE_SCOPES[user.role]
        requested = set(scope.split()) if scope else set(allowed)
        text = scope_string(requested & allowed)
        access_token, record = self._tokens.mint(
            client_id=client.get_client_id(),
            user_id=user.id,
            scope=text,
            family_id=prefetched.family_id,
        )
        prefetched.issued.append(record)
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self._tokens.lifetime,
            "scope": text,
        }
        if include_refresh_token and prefetched.family_id is not None:
            plaintext = secrets.token_urlsafe(32)
            now = datetime.now(UTC)
            prefetched.new_refresh.append(
                RefreshToken(
                    token_hash=secret_hash(plaintext),
                    family_id=prefetched.family_id,
                    client_id=client.get_client_id(),
                    user_id=user.id,
                    scope=text,
                    issued_at=now,
                    expires_at=now + self._refresh_lifetime,
                )
            )
            body["refresh_token"] = plaintext
        return body


class _Replayed(Exception):
    """A code or refresh token was consumed by a concurrent request first: roll back."""


class OAuthServer:
    """The async face the HTTP routes call."""

    def __init__(
        self,
        *,
        db: Database,
        uow: UnitOfWorkFactory,
        settings: AuthSettings,
        tokens: AccessTokens,
        revoked: RevokedTokens,
        limiter: RateLimiter,
    ) -> None:
        self._db = db
        self._uow = uow
        self._settings = settings
        self._tokens = tokens
        self._revoked = revoked
        self._limiter = limiter
        self._server = _Server(tokens, settings)

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
            with_refresh=True,
        )

    async def _run(
        self,
        request: FormRequest,
        call: Any,
        *,
        with_token: bool = False,
        with_refresh: bool = False,
    ) -> OAuthResponse:
        if request.malformed_basic():
            malformed = OAuthResponse(
                401,
                {"error": "invalid_client", "error_description": "malformed Basic credentials"},
                [],
            )
            _as_unauthorized(malformed)
            return malformed
        client_id = request.claimed_client_id()
        prefetched = await self._prefetch(request, client_id, with_token, with_refresh)
        with _bound(prefetched):
            response: OAuthResponse = call(_Request(request))
        if response.error == "invalid_client":
            _as_unauthorized(response)
            if prefetched.client is not None:
                wait = await self._client_auth_failed(prefetched.client.client_id, request.address)
                if wait:
                    return _too_many_failures(wait)
        if prefetched.replayed_family is not None:
            await self.revoke_family(prefetched.replayed_family)
        if prefetched.revoke_family is not None:
            await self.revoke_family(prefetched.revoke_family)
        if prefetched.issued or prefetched.revoked:
            try:
                await self._commit(prefetched)
            except _Replayed:
                family = await self._family_of(prefetched)
                if family is not None:
                    await self.revoke_family(family)
                return OAuthResponse(400, {"error": "invalid_grant"}, [])
            for jti in prefetched.revoked:
                self._revoked.add(jti)
        return response

    async def _client_auth_failed(self, client_id: str, address: str) -> int:
        """Count a failed authentication of a registered client from one address.

        Only failures are counted and only after authenticating, so a correct secret is never
        refused; the bucket is per (client, address), so nobody can lock a client out from
        elsewhere; and only registered clients get buckets (an unknown ID has nothing to guess),
        under a fixed-size hashed key, so junk IDs cannot fill the limiter's memory.
        """
        digest = hashlib.sha256(f"{client_id}\0{address}".encode()).hexdigest()[:32]
        per_minute = self._settings.client_auth_failures_per_minute
        return await self._limiter.acquire(f"client-auth-failures:{digest}", per_minute, per_minute)

    async def _commit(self, prefetched: _Prefetched) -> None:
        stored = await grants.store_tokens(
            self._uow,
            grants.TokenWrites(
                issued=prefetched.issued,
                new_refresh=prefetched.new_refresh,
                revoked_jtis=prefetched.revoked,
                consume_code=prefetched.consume_code,
                family_id=prefetched.family_id,
                rotate_refresh=prefetched.rotate_refresh,
            ),
        )
        if not stored:
            raise _Replayed

    async def _family_of(self, prefetched: _Prefetched) -> UUID | None:
        """The family that won the race for a code (the refresh token's family is known)."""
        if prefetched.rotate_refresh is not None:
            return prefetched.family_id
        if prefetched.consume_code is None:
            return None
        async with self._db.read() as conn:
            code = await grant_repo.get_code(conn, prefetched.consume_code)
        return None if code is None else code.family_id

    async def revoke_family(self, family_id: UUID | None) -> None:
        """Revoke every access and refresh token descending from one code exchange."""
        if family_id is None:
            return
        await grants.revoke_family(self._uow, family_id)
        await self._revoked.refresh(self._db)  # refused here at once, elsewhere within seconds

    async def issue_code(
        self,
        *,
        client: OAuthClient,
        user: User,
        redirect_uri: str,
        scope: str,
        code_challenge: str,
    ) -> str:
        """A new authorization code (returned once; only its hash is stored)."""
        code = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        record = AuthorizationCode(
            code_hash=secret_hash(code),
            client_id=client.client_id,
            user_id=user.id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            code_challenge_method="S256",
            issued_at=now,
            expires_at=now + timedelta(seconds=self._settings.authorization_code_seconds),
        )
        await grants.issue_code(self._uow, record)
        return code

    async def _prefetch(
        self, request: FormRequest, client_id: str | None, with_token: bool, with_refresh: bool
    ) -> _Prefetched:
        prefetched = _Prefetched()
        verified: VerifiedToken | None = None
        token = request.form.get("token") if with_token else None
        if token:
            try:
                verified = self._tokens.verify(token)
            except InvalidCredentials:
                verified = None  # not ours, tampered or expired: inactive / nothing to revoke
        grant_type = request.form.get("grant_type")
        secret = None
        if not with_token and grant_type == "authorization_code":
            secret = request.form.get("code")
        elif not with_token and grant_type == "refresh_token":
            secret = request.form.get("refresh_token")
        elif with_refresh and verified is None:
            secret = token  # not an access token of ours: perhaps a refresh token
            grant_type = "refresh_token"
        if secret is not None and not 0 < len(secret) <= MAX_SECRET_LENGTH:
            secret = None
        if client_id is None and verified is None:
            return prefetched
        async with self._db.read() as conn:
            if client_id is not None and len(client_id) <= 64:
                prefetched.client = await client_repo.get_by_client_id(conn, client_id)
            if verified is not None:
                record = await client_repo.get_token(conn, verified.jti)
                if record is not None:
                    prefetched.token = _Token(verified, record)
            user_id: UUID | None = None
            if secret is not None and grant_type == "authorization_code":
                prefetched.code = await grant_repo.get_code(conn, secret_hash(secret))
                user_id = None if prefetched.code is None else prefetched.code.user_id
            elif secret is not None:
                prefetched.refresh = await grant_repo.get_refresh_token(conn, secret_hash(secret))
                user_id = None if prefetched.refresh is None else prefetched.refresh.user_id
            if user_id is not None:
                prefetched.user = (await user_repo.get_by_ids(conn, [user_id])).get(user_id)
        return prefetched


def _too_many_failures(wait: int) -> OAuthResponse:
    return OAuthResponse(
        429,
        {"error": "invalid_client", "error_description": "too many failed client authentications"},
        [("Retry-After", str(wait)), ("Cache-Control", "no-store")],
    )


CLIENT_AUTH_FAILED = "client authentication failed"


def _as_unauthorized(response: OAuthResponse) -> None:
    """invalid_client is always 401 with a challenge, whichever method the client tried, and
    one description: an unknown client ID and a wrong secret must look alike to a guesser."""
    response.status = 401
    response.body["error_description"] = CLIENT_AUTH_FAILED
    response.headers = [h for h in response.headers if h[0].lower() != "www-authenticate"]
    response.headers.append(
        (
            "WWW-Authenticate",
            f'Basic error="invalid_client", error_description="{CLIENT_AUTH_FAILED}"',
        )
    )


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
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "scopes_supported": list(ALL_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "code_challenge_methods_supported": list(CODE_CHALLENGE_METHODS),
        "authorization_response_iss_parameter_supported": True,
        "token_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
    }
