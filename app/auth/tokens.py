"""JWT access tokens in the RFC 9068 profile: minted by the token endpoint, verified per request.

Verification is pure computation over the public key and the configured issuer and audience, so it
needs no database round trip; revocation is the in-memory revoked-jti set (app.auth.revocation).
Only RS256 is accepted: `alg: none`, HMAC algorithms (the public key used as an HMAC secret) and
everything else fail before any claim is read.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from joserfc import jwt
from joserfc.errors import BadSignatureError, ClaimError, ExpiredTokenError, JoseError
from joserfc.jws import extract_compact
from joserfc.jwt import JWTClaimsRegistry

from app.auth.errors import InvalidCredentials
from app.auth.keys import ALGORITHM, KeyRing, SigningKey
from app.auth.principal import Principal, PrincipalKind
from app.auth.scopes import ADMIN, ALL_SCOPES
from app.config import AuthSettings
from app.domain.auth import VERIFICATION_LEEWAY, AccessTokenRecord

TOKEN_TYPE = "at+jwt"
_ACCEPTED_TYP = {"at+jwt", "application/at+jwt"}
MAX_TOKEN_LENGTH = 8192
# Verified tokens remembered per process: ~1 KB each, so at most a few MB.
_REMEMBERED_TOKENS = 4096


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    claims: dict[str, Any]
    # Worked out once: a remembered token serves every request its client sends.
    _principal: Principal | None = field(default=None, compare=False, repr=False)

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def user_id(self) -> UUID | None:
        """Client-credentials tokens name the client as their subject (RFC 9068 §2.2)."""
        if self.subject == self.client_id:
            return None
        return UUID(self.subject)

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(str(self.claims.get("scope", "")).split()) & set(ALL_SCOPES)

    def principal(self) -> Principal:
        principal = self._principal
        if principal is None:
            principal = self._make_principal()
            object.__setattr__(self, "_principal", principal)
        return principal

    def _make_principal(self) -> Principal:
        user_id = self.user_id
        if user_id is None:
            return Principal(
                PrincipalKind.CLIENT, client_id=self.client_id, scopes=self.scopes - {ADMIN}
            )
        kind = PrincipalKind.ADMIN if ADMIN in self.scopes else PrincipalKind.CUSTOMER
        return Principal(kind, user_id=user_id, client_id=self.client_id, scopes=self.scopes)


class AccessTokens:
    def __init__(
        self,
        keys: SigningKey | KeyRing,
        settings: AuthSettings,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        # The time tokens are minted at and checked against (exp, with the leeway). The default
        # looks `time.time` up at each call, so a test that patches it moves this clock too.
        self.clock = clock or (lambda: time.time())
        self.keys = (
            keys if isinstance(keys, KeyRing) else KeyRing(keys, settings.access_token_seconds)
        )
        self.issuer = settings.issuer
        self.audience = settings.audience
        self.lifetime = settings.access_token_seconds
        self._leeway = int(VERIFICATION_LEEWAY.total_seconds())
        # Verified tokens, oldest first: token -> (claims, the key ring's generation, the moment
        # it stops being valid: exp plus the leeway, as the claims check counts it, or when its
        # key stops being published).
        self._verified: dict[str, tuple[VerifiedToken, object, float]] = {}
        self._claims = JWTClaimsRegistry(
            now=lambda: int(self.clock()),
            leeway=self._leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            client_id={"essential": True},
            jti={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )

    def mint(
        self,
        *,
        client_id: str,
        user_id: UUID | None,
        scope: str,
        now: int | None = None,
        family_id: UUID | None = None,
    ) -> tuple[str, AccessTokenRecord]:
        issued = int(self.clock()) if now is None else now
        jti = secrets.token_urlsafe(24)
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client_id if user_id is None else str(user_id),
            "client_id": client_id,
            "scope": scope,
            "jti": jti,
            "iat": issued,
            "exp": issued + self.lifetime,
        }
        key = self.keys.current(datetime.fromtimestamp(issued, UTC))
        header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": key.kid}
        token = jwt.encode(header, claims, key.key, algorithms=[ALGORITHM])
        record = AccessTokenRecord(
            jti=jti,
            client_id=client_id,
            user_id=user_id,
            scope=scope,
            issued_at=datetime.fromtimestamp(issued, UTC),
            expires_at=datetime.fromtimestamp(issued + self.lifetime, UTC),
            family_id=family_id,
        )
        return token, record

    def verify(self, token: str) -> VerifiedToken:
        """The token's claims if it is ours, intact, unexpired and meant for this API.

        A client sends the same token with every request until it expires, and checking the
        RS256 signature and the claims is most of what authenticating a request costs; so a
        verified token is remembered (a bounded number of them) until its `exp` or until its key
        stops being published, whichever comes first, and only while the ring's keys stay as
        they were: a key taken out of the ring stops its tokens at once. Revocation is not
        cached: the authenticator checks the revoked set on every request.
        """
        remembered = self._verified.get(token)
        if remembered is not None:
            verified, generation, refused_from = remembered
            if self.clock() < refused_from and self.keys.generation is generation:
                return verified
            del self._verified[token]
        verified, key = self._verify(token)
        if len(self._verified) >= _REMEMBERED_TOKENS:
            del self._verified[next(iter(self._verified))]  # the oldest
        expires = int(verified.claims["exp"]) + self._leeway
        trusted = self.keys.trusted_until(key.kid) or 0.0
        self._verified[token] = (verified, self.keys.generation, min(expires, trusted))
        return verified

    def _verify(self, token: str) -> tuple[VerifiedToken, SigningKey]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidCredentials("the access token is too long")
        try:
            # The header is read unverified only to pick the key; the signature is checked next.
            kid = jws_kid(token)
            key = self.keys.find(kid)
            if key is None:
                raise InvalidCredentials("the token was signed with an unknown key")
            decoded = jwt.decode(token, key.key, algorithms=[ALGORITHM])
            header = decoded.header
            if str(header.get("typ", "")).lower() not in _ACCEPTED_TYP:
                raise InvalidCredentials("the token is not an access token (typ at+jwt)")
            self._claims.validate(decoded.claims)
        except InvalidCredentials:
            raise
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise InvalidCredentials(_reason(error)) from None
        claims = dict(decoded.claims)
        if not isinstance(claims.get("scope", ""), str):
            raise InvalidCredentials("the access token's scope is malformed")
        verified = VerifiedToken(claims)
        try:
            verified.principal()
        except ValueError:
            raise InvalidCredentials("the access token's subject is malformed") from None
        return verified, key


def jws_kid(token: str) -> str | None:
    """The `kid` of a compact JWS header, unverified; malformed headers are an error."""
    header = extract_compact(token.encode("ascii")).protected
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidCredentials("the token's key ID is malformed")
    return kid


def _reason(error: Exception) -> str:
    """A fixed ASCII description: joserfc's messages quote the token's own (attacker-chosen)
    header text, which must never reach a response header or body."""
    if isinstance(error, ExpiredTokenError):
        return "the access token has expired"
    if isinstance(error, ClaimError):
        return "the access token's claims are not valid for this API"
    if isinstance(error, BadSignatureError):
        return "the access token's signature is invalid"
    return "the access token is malformed"
