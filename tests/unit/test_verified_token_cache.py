"""A token verified once is remembered until it expires, and no longer than its key is trusted."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt

from app.auth.errors import InvalidCredentials
from app.auth.keys import KeyRing, from_pem, generate, stored_key
from app.auth.tokens import AccessTokens
from app.domain.auth import VERIFICATION_LEEWAY
from tests.auth_support import auth_settings, signing_pem

KEY = from_pem(signing_pem())


def _count_signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    checked: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return checked


def test_a_token_is_verified_once_then_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = AccessTokens(KEY, auth_settings())
    token, _ = tokens.mint(client_id="og_client", user_id=None, scope="orders:read")
    checked = _count_signature_checks(monkeypatch)

    first = tokens.verify(token)
    again = tokens.verify(token)

    assert checked == [token]
    assert again.principal() == first.principal()


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = AccessTokens(KEY, auth_settings(access_token_seconds=60))
    token, _ = tokens.mint(client_id="og_client", user_id=None, scope="orders:read")
    tokens.verify(token)
    later = time.time() + 60 + VERIFICATION_LEEWAY.total_seconds() + 5
    monkeypatch.setattr(time, "time", lambda: later)

    with pytest.raises(InvalidCredentials, match="expired"):
        tokens.verify(token)


def test_a_remembered_token_is_refused_once_its_key_leaves_the_ring() -> None:
    ring = KeyRing(KEY, 3600)
    tokens = AccessTokens(ring, auth_settings())
    token, _ = tokens.mint(client_id="og_client", user_id=None, scope="orders:read")
    tokens.verify(token)

    tokens.keys = KeyRing(generate(), 3600)  # the ring now holds another key only

    with pytest.raises(InvalidCredentials, match="unknown key"):
        tokens.verify(token)


def test_forged_tokens_are_never_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = AccessTokens(KEY, auth_settings())
    token, _ = tokens.mint(client_id="og_client", user_id=None, scope="orders:read")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            tokens.verify(forged)
    assert forged not in tokens._verified


def test_a_reload_that_changes_no_key_keeps_tokens_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The refresh loop reloads the ring every few seconds; that alone must not make every
    client's token pay for a signature check again."""
    ring = KeyRing(KEY, 3600)
    tokens = AccessTokens(ring, auth_settings())
    token, _ = tokens.mint(client_id="og_client", user_id=None, scope="orders:read")
    checked = _count_signature_checks(monkeypatch)
    tokens.verify(token)

    ring.load([])
    tokens.verify(token)
    assert checked == [token]

    ring.load([stored_key(generate(), datetime.now(UTC) + timedelta(hours=1), ring.sealer)])
    tokens.verify(token)
    assert checked == [token, token], "a changed ring checks the token's key again"
