"""Access-token verification refuses every forged, stale or misdirected token (no I/O)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable

import pytest
from joserfc import jwt

from app.auth.errors import InvalidCredentials
from app.auth.keys import from_pem, generate
from app.auth.principal import PrincipalKind
from app.auth.tokens import AccessTokens
from app.domain.auth import VERIFICATION_LEEWAY
from tests.auth_support import auth_settings, signing_pem

KEY = from_pem(signing_pem())


def _tokens(**overrides: object) -> AccessTokens:
    return AccessTokens(KEY, auth_settings(**overrides))


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(tokens: AccessTokens) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": tokens.issuer,
        "aud": tokens.audience,
        "sub": "og_client",
        "client_id": "og_client",
        "scope": "orders:read",
        "jti": "j1",
        "iat": now,
        "exp": now + 3600,
    }


def test_a_fresh_token_verifies_into_a_client_principal() -> None:
    tokens = _tokens()
    token, record = tokens.mint(client_id="og_client", user_id=None, scope="orders:read admin")

    principal = tokens.verify(token).principal()

    assert principal.kind is PrincipalKind.CLIENT
    assert principal.client_id == "og_client"
    assert principal.scopes == {"orders:read"}, "a client never holds admin"
    assert record.client_id == "og_client"


def test_a_user_token_with_admin_is_an_admin_principal() -> None:
    tokens = _tokens()
    user_id = uuid.uuid4()
    token, _ = tokens.mint(client_id="og_app", user_id=user_id, scope="admin")

    principal = tokens.verify(token).principal()

    assert principal.kind is PrincipalKind.ADMIN
    assert principal.user_id == user_id


def test_expired_token() -> None:
    tokens = _tokens()
    token, _ = tokens.mint(client_id="c", user_id=None, scope="", now=int(time.time()) - 7200)
    with pytest.raises(InvalidCredentials, match="has expired"):
        tokens.verify(token)


def _frozen_at(moment: float) -> Callable[[], float]:
    return lambda: moment


def test_the_expiry_leeway_is_exactly_thirty_seconds() -> None:
    """Accepted until 30 s past `exp` (clock skew), refused from then on; with the clock under
    the test's control, not the wall's."""
    now = 1_900_000_000.0
    tokens = AccessTokens(KEY, auth_settings(), clock=lambda: now)
    token, _ = tokens.mint(client_id="c", user_id=None, scope="orders:read")
    expires = now + tokens.lifetime
    leeway = VERIFICATION_LEEWAY.total_seconds()
    for moment in (expires - 1, expires, expires + leeway - 1):
        tokens.clock = _frozen_at(moment)
        assert tokens.verify(token).principal().client_id == "c"
    for moment in (expires + leeway, expires + leeway + 1, expires + 3600):
        tokens.clock = _frozen_at(moment)
        with pytest.raises(InvalidCredentials, match="has expired"):
            tokens.verify(token)


def test_bad_signature() -> None:
    tokens = _tokens()
    stranger = AccessTokens(generate(), auth_settings())
    forged, _ = stranger.mint(client_id="c", user_id=None, scope="orders:read")
    with pytest.raises(InvalidCredentials):
        tokens.verify(forged)


def test_alg_none() -> None:
    tokens = _tokens()
    unsigned = f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(_claims(tokens))}."
    with pytest.raises(InvalidCredentials):
        tokens.verify(unsigned)


def test_hs256_signed_with_the_public_key() -> None:
    tokens = _tokens()
    public_pem = KEY.key.as_pem(private=False)
    # Signed by hand: JOSE libraries (rightly) refuse to use a public key as an HMAC secret.
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'at+jwt'})}.{_b64(_claims(tokens))}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(InvalidCredentials):
        tokens.verify(forged)


def test_wrong_audience_and_wrong_issuer() -> None:
    ours = _tokens()
    for other in (_tokens(audience="someone-else"), _tokens(issuer="https://evil.test")):
        token, _ = other.mint(client_id="c", user_id=None, scope="orders:read")
        with pytest.raises(InvalidCredentials):
            ours.verify(token)


def test_a_token_that_is_not_an_access_token() -> None:
    tokens = _tokens()
    id_token = jwt.encode({"alg": "RS256", "typ": "JWT"}, _claims(tokens), KEY.key)
    with pytest.raises(InvalidCredentials, match="at\\+jwt"):
        tokens.verify(id_token)


def test_garbage() -> None:
    tokens = _tokens()
    for value in ("", "a.b.c", "x" * 9000, "eyJ.eyJ.sig"):
        with pytest.raises(InvalidCredentials):
            tokens.verify(value)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "RS256\u0100", "typ": "at+jwt"},
        {"alg": "x\r\nSet-Cookie: a=b", "typ": "at+jwt"},
        {"alg": "RS256", "typ": "at+jwt", "crit": ["\u0100\r\n"]},
        {"alg": "RS256", "typ": "at+jwt", "zip": "DEF\r\nX: y"},
    ],
)
def test_refusals_never_echo_the_tokens_own_header_text(header: dict[str, object]) -> None:
    tokens = _tokens()
    kid = tokens.keys.current().kid
    forged = f"{_b64({**header, 'kid': kid})}.{_b64(_claims(tokens))}.AAAA"

    with pytest.raises(InvalidCredentials) as refused:
        tokens.verify(forged)

    message = refused.value.message
    assert message.isascii()
    assert message.isprintable()
    for text in ("\u0100", "Set-Cookie", "DEF", "crit"):
        assert text not in message
