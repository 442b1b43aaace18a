"""The access-token signing key and the JWKS that publishes it.

One RSA key signs every access token (RS256). It comes from `OAUTH_SIGNING_KEY` (PEM text) or the
PEM file at `OAUTH_SIGNING_KEY_FILE`; when neither exists, which is development, a key is generated
once and written to that file (mode 0600, under the git-ignored var/) so restarts keep tokens
valid. Every process given the same key accepts every other process's tokens.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

from app.config import AuthSettings, ConfigError

ALGORITHM = "RS256"


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
