"""API key material: `sk_live_…` / `sk_test_…` with 32 random bytes, kept only as SHA-256."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from app.domain.auth import secret_hash

_SHAPE = re.compile(r"^sk_(live|test)_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class NewKey:
    plaintext: str
    key_hash: str
    last_four: str


def generate(environment: str) -> NewKey:
    plaintext = f"sk_{environment}_{secrets.token_urlsafe(32)}"
    return NewKey(plaintext, secret_hash(plaintext), plaintext[-4:])


def looks_like_key(value: str) -> bool:
    return value.startswith("sk_")


def well_formed(value: str) -> bool:
    return _SHAPE.match(value) is not None
