"""JWT access tokens in the RFC 9068 profile: minted by the token endpoint, verified per request.

Verification is pure computation over the public key and the configured issuer and audience, so it
needs no database round trip; revocation is the in-memory revoked-jti set (app.auth.revocation).
Only RS256 is accepted: `alg: none`, HMAC algorithms (the public key used as an HMAC secret) and
everything else fail before any claim is read.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from app.auth.errors import InvalidCredentials
from app.auth.keys import ALGORITHM, SigningKey
from app.auth.principal import Principal, PrincipalKind
from app.auth.scopes import ADMIN, ALL_SCOPES
from app.config import AuthSettings
from app.domain.auth import AccessTokenRecord

TOKEN_TYPE = "at+jwt"
_ACCEPTED_TYP = {"at+jwt", "application/at+jwt"}
MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    claims: dict[str, Any]

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
        user_id = self.user_id
        if user_id is None:
            return Principal(
                PrincipalKind.CLIENT, client_id=self.client_id, scopes=self.scopes - {ADMIN}
            )
        kind = PrincipalKind.ADMIN if ADMIN in self.scopes else PrincipalKind.CUSTOMER
        return Principal(kind, user_id=user_id, client_id=self.client_id, scopes=self.scopes)


class AccessTokens:
    def __init__(self, key: SigningKey, settings: AuthSettings) -> None:
        self._key = key
        self._public = key.key.as_dict(private=False)
        self.issuer = settings.issuer
        self.audience = settings.audience
        self.lifetime = settings.access_token_seconds
        self._claims = JWTClaimsRegistry(
            leeway=30,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            client_id={"essential": True},
            jti={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )

    def mint(
        self, *, client_id: str, user_id: UUID | None, scope: str, now: int | None = None
    ) -> tuple[str, AccessTokenRecord]:
        issued = int(time.time()) if now is None else now
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
        header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": self._key.kid}
        token = jwt.encode(header, claims, self._key.key, algorithms=[ALGORITHM])
        record = AccessTokenRecord(
            jti=jti,
            client_id=client_id,
            user_id=user_id,
            scope=scope,
            issued_at=datetime.fromtimestamp(issued, UTC),
            expires_at=datetime.fromtimestamp(issued + self.lifetime, UTC),
        )
        return token, record

    def verify(self, token: str) -> VerifiedToken:
        """The token's claims if it is ours, intact, unexpired and meant for this API."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidCredentials("the access token is too long")
        try:
            decoded = jwt.decode(token, self._key.key, algorithms=[ALGORITHM])
            header = decoded.header
            if str(header.get("typ", "")).lower() not in _ACCEPTED_TYP:
                raise InvalidCredentials("the token is not an access token (typ at+jwt)")
            if header.get("kid") not in (None, self._key.kid):
                raise InvalidCredentials("the token was signed with an unknown key")
            self._claims.validate(decoded.claims)
        except InvalidCredentials:
            raise
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise InvalidCredentials(f"the access token is invalid: {_reason(error)}") from None
        claims = dict(decoded.claims)
        if not isinstance(claims.get("scope", ""), str):
            raise InvalidCredentials("the access token's scope is malformed")
        verified = VerifiedToken(claims)
        try:
            verified.principal()
        except ValueError:
            raise InvalidCredentials("the access token's subject is malformed") from None
        return verified


def _reason(error: Exception) -> str:
    text = getattr(error, "description", None) or str(error) or type(error).__name__
    return str(text)[:200]
