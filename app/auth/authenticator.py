"""The one authenticator: request headers in, a Principal out.

HTTP middleware calls it for every GraphQL request; the WebSocket `connection_init` handler calls
the same function with the init payload's headers. It accepts `Authorization: Bearer <JWT>`,
`Authorization: Bearer sk_…` and `X-API-Key: sk_…`; no credentials means the anonymous principal.
Cookies are never read: the OAuth login session cannot be used against the API.

Cost per request: a JWT needs no database statement (signature, claims, in-memory revoked set);
an API key needs one (the key with its owner's role and state), so a revoked key or a disabled
user is refused at once. Both pass through the rate limiter.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.auth import api_keys
from app.auth.errors import InvalidCredentials, TooManyRequests
from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.auth.ratelimit import RateLimiter
from app.auth.revocation import KeyUsage, RevokedTokens
from app.auth.scopes import ADMIN, ROLE_SCOPES
from app.auth.tokens import AccessTokens
from app.config import AuthSettings
from app.db.engine import Database
from app.domain.auth import secret_hash
from app.repositories import api_keys as key_repo

# The headers that carry a credential; each may appear once per request.
CREDENTIAL_HEADERS = ("authorization", "x-api-key")


class Authenticator:
    def __init__(
        self,
        *,
        db: Database,
        settings: AuthSettings,
        tokens: AccessTokens,
        revoked: RevokedTokens,
        limiter: RateLimiter,
        usage: KeyUsage,
    ) -> None:
        self._db = db
        self._settings = settings
        self._tokens = tokens
        self._revoked = revoked
        self._limiter = limiter
        self._usage = usage

    async def authenticate(self, headers: Mapping[str, str], address: str = "") -> Principal:
        """The principal the headers prove; raises InvalidCredentials or TooManyRequests.

        Every request is charged to a token bucket: the credential's, or without one the client
        address's (`address`), so anonymous callers cannot spend the server's CPU freely either.
        """
        principal = await self._identify(headers, charge=True)
        if principal.is_anonymous:
            settings = self._settings
            await self._limit(
                f"anon:{address}",
                settings.anonymous_rate_per_minute,
                settings.anonymous_rate_burst,
            )
        return principal

    async def recheck(self, headers: Mapping[str, str]) -> Principal:
        """The principal the headers still prove, neither rate-limited nor counted as a use.

        A long-lived WebSocket calls this periodically: an expired or revoked token, a revoked key
        or a disabled owner raises InvalidCredentials as it would for a new request.
        """
        return await self._identify(headers, charge=False)

    async def _identify(self, headers: Mapping[str, str], *, charge: bool) -> Principal:
        found: dict[str, str] = {}
        for key, value in headers.items():
            name = key.lower()
            if name not in CREDENTIAL_HEADERS:
                continue
            if name in found:
                # Which one would count is up to each proxy and framework: refuse, never guess.
                raise InvalidCredentials(f"send one {name} header, not several", "invalid_request")
            found[name] = value
        authorization = found.get("authorization", "").strip()
        api_key = found.get("x-api-key", "").strip()
        if not authorization and not api_key:
            return ANONYMOUS
        if authorization and api_key:
            raise InvalidCredentials(
                "send either Authorization or X-API-Key, not both", "invalid_request"
            )
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                raise InvalidCredentials(
                    "use `Authorization: Bearer <token or API key>`", "invalid_request"
                )
            if not api_keys.looks_like_key(credential):
                return await self._from_jwt(credential, charge)
            api_key = credential
        return await self._from_api_key(api_key, charge)

    async def _from_jwt(self, token: str, charge: bool) -> Principal:
        verified = self._tokens.verify(token)
        if verified.jti in self._revoked:
            raise InvalidCredentials("the access token has been revoked")
        principal = verified.principal()
        if not charge:
            return principal
        bucket = (
            f"client:{principal.client_id}"
            if principal.user_id is None
            else f"user:{principal.client_id}:{principal.user_id}"
        )
        await self._limit(bucket, self._settings.rate_per_minute)
        return principal

    async def _from_api_key(self, key: str, charge: bool) -> Principal:
        if not api_keys.well_formed(key):
            raise InvalidCredentials("the API key is malformed")
        async with self._db.read() as conn:
            found = await key_repo.find_active_by_hash(conn, secret_hash(key))
        if found is None:
            raise InvalidCredentials("the API key is unknown or revoked")
        if found.user_disabled:
            raise InvalidCredentials("the API key's owner is disabled")
        record = found.key
        if charge:
            await self._limit(
                f"key:{record.id}", record.rate_per_minute or self._settings.rate_per_minute
            )
            # And the owner's bucket, shared by all their keys: more keys, not more requests.
            await self._limit(f"keys-of:{record.user_id}", self._settings.rate_per_minute)
            self._usage.note(record.id)
        scopes = record.scopes & ROLE_SCOPES[found.role]
        kind = PrincipalKind.ADMIN if ADMIN in scopes else PrincipalKind.CUSTOMER
        return Principal(kind, user_id=record.user_id, scopes=scopes, api_key_id=record.id)

    async def _limit(self, bucket: str, per_minute: int, burst: int | None = None) -> None:
        burst = min(self._settings.rate_burst if burst is None else burst, per_minute)
        wait = await self._limiter.acquire(bucket, per_minute, burst)
        if wait:
            raise TooManyRequests(wait)
