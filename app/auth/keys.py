"""The access-token signing keys and the JWKS that publishes them.

RSA keys sign access tokens (RS256). The configured key comes from `OAUTH_SIGNING_KEY` (PEM text)
or the PEM file at `OAUTH_SIGNING_KEY_FILE`; when neither exists, which is development, a key is
generated once and written to that file (mode 0600, under the git-ignored var/) so restarts keep
tokens valid. Every process given the same key accepts every other process's tokens.

Rotation (`python -m app rotate-signing-key`) adds keys to the `signing_keys` table, which every
process reloads with the revoked-token set. A key ring orders all keys by activation time (the
configured key first, as if active forever): the newest active key signs; a new key is published
(JWKS, verification) from the moment it is stored but only signs from `activates_at`, a little
later, so every process knows it before any token signed with it arrives; an older key stays
published until the tokens it signed have expired (its successor's activation plus the token
lifetime and the leeway), then it is dropped, the configured key included.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

from app.config import AuthSettings, ConfigError
from app.domain.auth import StoredSigningKey

ALGORITHM = "RS256"
LEEWAY_SECONDS = 60
"""Beyond a token's lifetime, how long its key stays published (clock skew, verifier leeway)."""
_FOREVER_AGO = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SigningKey:
    key: RSAKey

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def _with_kid(key: RSAKey) -> SigningKey:
    # The RFC 7638 thumbprint: the same key gets the same kid in every process.
    rebuilt = RSAKey.import_key(
        key.as_dict(private=True), parameters={"use": "sig", "alg": ALGORITHM}
    )
    rebuilt.ensure_kid()
    return SigningKey(rebuilt)


def from_pem(pem: str | bytes) -> SigningKey:
    try:
        key = RSAKey.import_key(pem)
    except Exception as error:
        raise ConfigError(f"the signing key is not an RSA private key in PEM: {error}") from None
    if not key.is_private:
        raise ConfigError("the signing key must be a private key")
    return _with_kid(key)


def generate() -> SigningKey:
    return _with_kid(RSAKey.generate_key(2048, private=True))


def load_signing_key(settings: AuthSettings, *, create: bool = True) -> SigningKey:
    if settings.signing_key_pem:
        return from_pem(settings.signing_key_pem)
    path = Path(settings.signing_key_file)
    if path.exists():
        return from_pem(path.read_bytes())
    if not create:
        raise ConfigError(f"no signing key: set OAUTH_SIGNING_KEY or create {path}")
    key = generate()
    _write_private(path, key.key.as_pem(private=True))
    # Another process may have written the file first: whichever won, everyone uses that one.
    return from_pem(path.read_bytes())


def _write_private(path: Path, pem: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with contextlib.closing(os.fdopen(fd, "wb")) as file:
        file.write(pem)


@dataclass(frozen=True)
class _Entry:
    key: SigningKey
    activates_at: datetime


class KeyRing:
    """Which key signs now and which keys verify: the configured key plus the stored ones."""

    def __init__(self, configured: SigningKey, token_lifetime_seconds: int = 3600) -> None:
        self.configured = configured
        self._retention = timedelta(seconds=token_lifetime_seconds + LEEWAY_SECONDS)
        self._entries: list[_Entry] = [_Entry(configured, _FOREVER_AGO)]

    def load(self, stored: Sequence[StoredSigningKey]) -> None:
        """Replace the stored keys (what the database holds now); the configured key stays."""
        known = {e.key.kid: e.key for e in self._entries}
        entries = {self.configured.kid: _Entry(self.configured, _FOREVER_AGO)}
        for row in stored:
            key = known.get(row.kid) or from_pem(row.private_pem)  # parse each key once
            entries[row.kid] = _Entry(key, row.activates_at)
        self._entries = sorted(entries.values(), key=lambda e: (e.activates_at, e.key.kid))

    def current(self, now: datetime | None = None) -> SigningKey:
        moment = now or datetime.now(UTC)
        active = [e for e in self._entries if e.activates_at <= moment]
        return active[-1].key if active else self._entries[0].key

    def published(self, now: datetime | None = None) -> list[SigningKey]:
        """Keys that may have signed an unexpired token, or are about to sign."""
        moment = now or datetime.now(UTC)
        kept: list[SigningKey] = []
        for index, entry in enumerate(self._entries):
            successor = next(
                (e for e in self._entries[index + 1 :] if e.activates_at <= moment), None
            )
            if successor is None or successor.activates_at + self._retention > moment:
                kept.append(entry.key)
        return kept

    def expired_kids(self, now: datetime | None = None) -> list[str]:
        published = {key.kid for key in self.published(now)}
        return [e.key.kid for e in self._entries if e.key.kid not in published]

    def find(self, kid: str | None, now: datetime | None = None) -> SigningKey | None:
        if kid is None:
            return self.current(now)
        return next((key for key in self.published(now) if key.kid == kid), None)

    def jwks(self, now: datetime | None = None) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.published(now)]}


def stored_key(key: SigningKey, activates_at: datetime) -> StoredSigningKey:
    return StoredSigningKey(
        kid=key.kid,
        private_pem=key.key.as_pem(private=True).decode(),
        created_at=datetime.now(UTC),
        activates_at=activates_at,
    )
