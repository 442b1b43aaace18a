"""Key rotation: which key signs, which keys the JWKS publishes, when the old one is dropped."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from app.auth.errors import InvalidCredentials
from app.auth.keys import LEEWAY_SECONDS, KeyRing, KeySealer, generate, key_sealer, stored_key
from app.auth.tokens import AccessTokens
from app.config import ConfigError
from tests.auth_support import auth_settings

CONFIGURED = generate()
NEW = generate()
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIFETIME = 3600


def _ring() -> KeyRing:
    ring = KeyRing(CONFIGURED, LIFETIME)
    ring.load([stored_key(NEW, T0, ring.sealer)])
    return ring


def _kids(ring: KeyRing, at: datetime) -> set[str]:
    return {key["kid"] for key in ring.jwks(at)["keys"]}


def test_a_new_key_is_published_before_it_signs() -> None:
    ring = _ring()
    before = T0 - timedelta(seconds=5)
    assert ring.current(before).kid == CONFIGURED.kid
    assert _kids(ring, before) == {CONFIGURED.kid, NEW.kid}


def test_after_activation_the_new_key_signs_and_the_old_stays_until_its_tokens_expire() -> None:
    ring = _ring()
    assert ring.current(T0).kid == NEW.kid
    still = T0 + timedelta(seconds=LIFETIME + LEEWAY_SECONDS - 1)
    gone = T0 + timedelta(seconds=LIFETIME + LEEWAY_SECONDS + 1)
    assert _kids(ring, still) == {CONFIGURED.kid, NEW.kid}
    assert _kids(ring, gone) == {NEW.kid}
    assert ring.expired_kids(gone) == [CONFIGURED.kid]


def test_tokens_of_both_keys_verify_until_the_old_key_is_dropped() -> None:
    ring = KeyRing(CONFIGURED, LIFETIME)
    tokens = AccessTokens(ring, auth_settings())
    old_token, _ = tokens.mint(client_id="c", user_id=None, scope="orders:read")
    now = datetime.now(UTC)
    ring.load([stored_key(NEW, now - timedelta(seconds=1), ring.sealer)])
    new_token, _ = tokens.mint(client_id="c", user_id=None, scope="orders:read")

    assert tokens.verify(old_token).client_id == "c"
    assert tokens.verify(new_token).client_id == "c"

    ring.load(
        [stored_key(NEW, now - timedelta(seconds=LIFETIME + LEEWAY_SECONDS + 5), ring.sealer)]
    )
    with pytest.raises(InvalidCredentials, match="unknown key"):
        tokens.verify(old_token)
    assert tokens.verify(new_token).client_id == "c"


def test_stored_private_keys_are_encrypted_and_read_back_by_the_same_key() -> None:
    ring = KeyRing(CONFIGURED, LIFETIME)
    row = stored_key(NEW, T0, ring.sealer)

    assert row.private_pem.startswith("fernet:")
    assert "PRIVATE KEY" not in row.private_pem
    assert NEW.key.as_pem(private=True).decode() not in row.private_pem
    another_process = KeyRing(CONFIGURED, LIFETIME)  # same configured key, same derived KEK
    another_process.load([row])
    assert another_process.find(NEW.kid, T0) is not None


def test_a_different_key_encryption_key_cannot_read_stored_keys() -> None:
    row = stored_key(NEW, T0, KeySealer.from_config(Fernet.generate_key().decode()))
    stranger = KeyRing(CONFIGURED, LIFETIME, KeySealer.from_config(Fernet.generate_key().decode()))

    with pytest.raises(ConfigError, match="cannot decrypt"):
        stranger.load([row])


def test_the_key_encryption_key_can_be_rotated_and_plain_rows_still_load() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_by_old = stored_key(NEW, T0, KeySealer.from_config(old))
    plain = dataclasses.replace(
        stored_key(CONFIGURED, T0, KeySealer.from_config(old)),
        private_pem=CONFIGURED.key.as_pem(private=True).decode(),
    )
    ring = KeyRing(generate(), LIFETIME, KeySealer.from_config(f"{new},{old}"))

    ring.load([sealed_by_old, plain])

    assert {NEW.kid, CONFIGURED.kid} <= {key["kid"] for key in ring.jwks(T0)["keys"]}


def test_production_without_a_key_encryption_key_stores_nothing() -> None:
    production = auth_settings(environment="production")
    sealer = key_sealer(production, CONFIGURED)

    with pytest.raises(ConfigError, match="OAUTH_KEY_ENCRYPTION_KEY"):
        stored_key(NEW, T0, sealer)
    with pytest.raises(ConfigError, match="OAUTH_KEY_ENCRYPTION_KEY"):
        KeySealer.from_config("not-a-fernet-key")
    configured = key_sealer(
        auth_settings(environment="production", key_encryption_key=Fernet.generate_key().decode()),
        CONFIGURED,
    )
    assert stored_key(NEW, T0, configured).private_pem.startswith("fernet:")
