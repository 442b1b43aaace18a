"""Key rotation: which key signs, which keys the JWKS publishes, when the old one is dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.auth.errors import InvalidCredentials
from app.auth.keys import LEEWAY_SECONDS, KeyRing, generate, stored_key
from app.auth.tokens import AccessTokens
from tests.auth_support import auth_settings

CONFIGURED = generate()
NEW = generate()
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIFETIME = 3600


def _ring() -> KeyRing:
    ring = KeyRing(CONFIGURED, LIFETIME)
    ring.load([stored_key(NEW, T0)])
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
    ring.load([stored_key(NEW, now - timedelta(seconds=1))])
    new_token, _ = tokens.mint(client_id="c", user_id=None, scope="orders:read")

    assert tokens.verify(old_token).client_id == "c"
    assert tokens.verify(new_token).client_id == "c"

    ring.load([stored_key(NEW, now - timedelta(seconds=LIFETIME + LEEWAY_SECONDS + 5))])
    with pytest.raises(InvalidCredentials, match="unknown key"):
        tokens.verify(old_token)
    assert tokens.verify(new_token).client_id == "c"
