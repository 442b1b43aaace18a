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

Stored private keys are encrypted at rest (Fernet: AES-128-CBC with HMAC-SHA256) under a
key-encryption key: `OAUTH_KEY_ENCRYPTION_KEY` (comma-separated Fernet keys, the first encrypts,
all decrypt, for rotating it), or outside production one derived from the configured signing key
with HKDF, which every process given that key derives alike. Production without it refuses to
store or read encrypted keys. Rows stored before encryption (plain PEM) are still read.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
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


SEALED_PREFIX = "fernet:"
_PLAIN_PREFIX = "-----BEGIN"


class KeySealer:
    """Encrypts private keys before they are stored and decrypts them when they are loaded."""

    def __init__(self, fernet: MultiFernet | None) -> None:
        self._fernet = fernet

    @classmethod
    def derived_from(cls, configured: SigningKey) -> KeySealer:
        """A development key-encryption key: HKDF over the configured signing key."""
        raw = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"ordergraph signing-key encryption v1",
        ).derive(configured.key.as_pem(private=True))
        return cls(MultiFernet([Fernet(base64.urlsafe_b64encode(raw))]))

    @classmethod
    def from_config(cls, keys: str) -> KeySealer:
        try:
            fernets = [Fernet(key.strip().encode()) for key in keys.split(",") if key.strip()]
        except ValueError:
            raise ConfigError(
                "OAUTH_KEY_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes)"
            ) from None
        if not fernets:
            raise ConfigError("OAUTH_KEY_ENCRYPTION_KEY is empty")
        return cls(MultiFernet(fernets))

    def seal(self, pem: bytes) -> str:
        if self._fernet is None:
            raise ConfigError("set OAUTH_KEY_ENCRYPTION_KEY to store signing keys in production")
        return SEALED_PREFIX + self._fernet.encrypt(pem).decode("ascii")

    def open(self, kid: str, stored: str) -> bytes:
        if stored.startswith(_PLAIN_PREFIX):
            return stored.encode()  # stored before keys were encrypted
        if not stored.startswith(SEALED_PREFIX) or self._fernet is None:
            raise ConfigError(f"cannot read stored signing key {kid}: set OAUTH_KEY_ENCRYPTION_KEY")
        try:
            return self._fernet.decrypt(stored[len(SEALED_PREFIX) :].encode("ascii"))
        except (InvalidToken, ValueError):
            raise ConfigError(
                f"cannot decrypt stored signing key {kid}: OAUTH_KEY_ENCRYPTION_KEY is not the "
                "key it was stored with"
            ) from None


def key_sealer(settings: AuthSettings, configured: SigningKey) -> KeySealer:
    if settings.key_encryption_key:
        return KeySealer.from_config(settings.key_encryption_key)
    if settings.environment != "production":
        return KeySealer.derived_from(configured)
    return KeySealer(None)


@dataclass(frozen=True)
class _Entry:
    key: SigningKey
    activates_at: datetime


class KeyRing:
    """Which key signs now and which keys verify: the configured key plus the stored ones."""

    def __init__(
        self,
        configured: SigningKey,
        token_lifetime_seconds: int = 3600,
        sealer: KeySealer | None = None,
    ) -> None:
        self.configured = configured
        self.sealer = sealer or KeySealer.derived_from(configured)
        self._retention = timedelta(seconds=token_lifetime_seconds + LEEWAY_SECONDS)
        self._entries: list[_Entry] = [_Entry(configured, _FOREVER_AGO)]

    def load(self, stored: Sequence[StoredSigningKey]) -> None:
        """Replace the stored keys (what the database holds now); the configured key stays."""
        known = {e.key.kid: e.key for e in self._entries}
        entries = {self.configured.kid: _Entry(self.configured, _FOREVER_AGO)}
        for row in stored:
            # Decrypt and parse each key once.
            key = known.get(row.kid) or from_pem(self.sealer.open(row.kid, row.private_pem))
            entries[row.kid] = _Entry(key, row.activates_at)
        ordered = sorted(entries.values(), key=lambda e: (e.activates_at, e.key.kid))
        if ordered != self._entries:  # a reload that changes nothing keeps the generation
            self._entries = ordered

    @property
    def generation(self) -> object:
        """Changes whenever the ring's keys do: what is learnt about a key holds for one
        generation (app.auth.tokens remembers verified tokens for one)."""
        return self._entries

    def trusted_until(self, kid: str) -> float | None:
        """The moment (POSIX seconds) `find(kid)` stops answering the key with this ID, as the
        ring stands (infinity for the newest), or None when the ring has no such key.

        The ring is sorted by activation, so the first successor to activate is the next entry,
        and `published` keeps a key until that activation plus the retention."""
        entries = self._entries
        for index, entry in enumerate(entries):
            if entry.key.kid == kid:
                if index + 1 == len(entries):
                    return math.inf
                return (entries[index + 1].activates_at + self._retention).timestamp()
        return None

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


def stored_key(key: SigningKey, activates_at: datetime, sealer: KeySealer) -> StoredSigningKey:
    """The row to store: the private key encrypted (the `private_pem` column holds the cipher)."""
    return StoredSigningKey(
        kid=key.kid,
        private_pem=sealer.seal(key.key.as_pem(private=True)),
        created_at=datetime.now(UTC),
        activates_at=activates_at,
    )
