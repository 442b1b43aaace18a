"""OAuth clients, issued access tokens and API keys: the records behind every credential."""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

# Clock skew tolerated when verifying an access token's `exp`: a token is still accepted this long
# after it expires, so a revoked one must stay refused at least as long.
VERIFICATION_LEEWAY = timedelta(seconds=30)


class ClientType(enum.StrEnum):
    CONFIDENTIAL = "confidential"
    PUBLIC = "public"


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (client secret, API key, code, refresh token).

    These secrets are 32 random bytes, so a fast hash is enough: there is nothing to brute-force.
    Passwords, which people choose, use Argon2id instead.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_secret(secret: str, stored_hash: str | None) -> bool:
    """Constant-time comparison of a presented secret with a stored hash."""
    if stored_hash is None:
        return False
    return hmac.compare_digest(secret_hash(secret), stored_hash)


@dataclass(frozen=True, slots=True)
class OAuthClient:
    id: UUID
    client_id: str
    client_secret_hash: str | None
    name: str
    client_type: ClientType
    grant_types: frozenset[str]
    scopes: frozenset[str]
    redirect_uris: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class AccessTokenRecord:
    jti: str
    client_id: str
    user_id: UUID | None
    scope: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    family_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """A code as stored: only its hash, and everything it was bound to when it was issued."""

    code_hash: str
    client_id: str
    user_id: UUID
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    family_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """One refresh token of a family; each use rotates it (`used_at`) to a new one."""

    token_hash: str
    family_id: UUID
    client_id: str
    user_id: UUID
    scope: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    user_id: UUID
    name: str
    last_four: str
    environment: str
    scopes: frozenset[str]
    rate_per_minute: int | None
    use_count: int
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredSigningKey:
    """A signing key in the database: it signs from `activates_at` until a newer one does."""

    kid: str
    private_pem: str
    created_at: datetime
    activates_at: datetime
