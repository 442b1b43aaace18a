"""POST /oauth/token with the client_credentials grant (RFC 6749 §4.4), both auth methods."""

from __future__ import annotations

import base64

import pytest
from joserfc import jwt
from sqlalchemy import func, select

from app.db.tables import access_tokens
from app.repositories.unit_of_work import SqlUnitOfWork
from tests.auth_support import AUDIENCE, ISSUER, AuthApp, basic


async def _token_rows(app: AuthApp) -> int:
    async with app.db.read() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(access_tokens))).scalar_one()
        )


async def test_client_secret_basic_issues_an_rfc9068_access_token(auth_app: AuthApp) -> None:
    client = await auth_app.client(scopes="orders:read,users:read")

    response = await auth_app.token_response(client)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert "refresh_token" not in body
    assert body["scope"] == "orders:read users:read"
    token = jwt.decode(body["access_token"], auth_app.services.signing_key.key)
    assert token.header["typ"] == "at+jwt"
    assert token.header["kid"] == auth_app.services.signing_key.kid
    claims = token.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == claims["client_id"] == client.client.client_id
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"]


async def test_client_secret_post_and_a_narrower_scope(auth_app: AuthApp) -> None:
    client = await auth_app.client(scopes="orders:read,users:read")

    response = await auth_app.token_response(client, "orders:read", post=True)

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "orders:read"


async def test_invalid_client_wrong_secret_is_401_and_issues_nothing(auth_app: AuthApp) -> None:
    client = await auth_app.client()
    before = await _token_rows(auth_app)

    response = await auth_app.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client.client.client_id, "not-the-secret"),
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert await _token_rows(auth_app) == before


async def test_invalid_client_unknown_client_with_post(auth_app: AuthApp) -> None:
    response = await auth_app.http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "og_nope", "client_secret": "x"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_invalid_client_revoked_client(auth_app: AuthApp) -> None:
    from app.usecases.operators import revoke_client

    client = await auth_app.client()
    await revoke_client(SqlUnitOfWork.factory(auth_app.db), client.client.client_id)

    response = await auth_app.token_response(client)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_invalid_scope_escalation_beyond_registration(auth_app: AuthApp) -> None:
    client = await auth_app.client(scopes="orders:read")
    before = await _token_rows(auth_app)

    for scope in ("users:read", "orders:read admin", "orders:read nonsense"):
        response = await auth_app.token_response(client, scope)
        assert response.status_code == 400, scope
        assert response.json()["error"] == "invalid_scope"
    assert await _token_rows(auth_app) == before


async def test_unsupported_grant_type(auth_app: AuthApp) -> None:
    client = await auth_app.client()
    assert client.secret is not None
    response = await auth_app.http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "a", "password": "b"},
        headers=basic(client.client.client_id, client.secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_invalid_request_repeated_parameter_and_wrong_body(auth_app: AuthApp) -> None:
    repeated = await auth_app.http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    as_json = await auth_app.http.post("/oauth/token", json={"grant_type": "client_credentials"})

    for response in (repeated, as_json):
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == "invalid_request"


async def test_repeated_failed_client_authentication_is_throttled(auth_app: AuthApp) -> None:
    client = await auth_app.client()
    assert client.secret is not None
    wrong = basic(client.client.client_id, "wrong")
    form = {"grant_type": "client_credentials"}
    limit = auth_app.services.settings.client_auth_failures_per_minute
    for _ in range(limit):
        response = await auth_app.http.post("/oauth/token", data=form, headers=wrong)
        assert response.status_code == 401

    throttled = await auth_app.http.post("/oauth/token", data=form, headers=wrong)

    assert throttled.status_code == 429
    assert throttled.json()["error"] == "invalid_client"
    assert int(throttled.headers["retry-after"]) >= 1


async def test_failed_client_authentication_never_locks_the_client_out(
    auth_app: AuthApp,
) -> None:
    client = await auth_app.client()
    assert client.secret is not None
    form = {"grant_type": "client_credentials"}
    wrong = basic(client.client.client_id, "wrong")
    limit = auth_app.services.settings.client_auth_failures_per_minute
    async with auth_app.peer("198.51.100.66") as attacker:
        for _ in range(limit + 3):
            await attacker.post("/oauth/token", data=form, headers=wrong)
        attacker_right = await attacker.post(
            "/oauth/token", data=form, headers=basic(client.client.client_id, client.secret)
        )
    async with auth_app.peer("192.0.2.10") as elsewhere:
        elsewhere_wrong = await elsewhere.post("/oauth/token", data=form, headers=wrong)

    assert attacker_right.status_code == 200, "a correct secret is never refused"
    assert (await auth_app.token_response(client)).status_code == 200
    assert elsewhere_wrong.status_code == 401, "the failures of one address are its own"


async def test_unknown_and_over_long_client_ids_take_no_bucket(auth_app: AuthApp) -> None:
    limit = auth_app.services.settings.client_auth_failures_per_minute
    form = {"grant_type": "client_credentials"}
    statuses = set()
    for client_id in ("no-such-client", "x" * 16_000):
        for _ in range(limit + 2):
            response = await auth_app.http.post(
                "/oauth/token", data=form, headers=basic(client_id, "s")
            )
            statuses.add(response.status_code)

    assert statuses == {401}


@pytest.mark.parametrize(
    "authorization",
    [
        b"Basic " + base64.b64encode(b"\xff\xfe:\xff"),  # not UTF-8
        b"Basic \xe9",  # not ASCII, so not base64
        b"Basic !!!",
        b"Basic ",
    ],
)
async def test_malformed_basic_credentials_are_invalid_client(
    auth_app: AuthApp, authorization: bytes
) -> None:
    headers = {b"authorization": authorization}
    for path, form in (
        ("/oauth/token", {"grant_type": "client_credentials"}),
        ("/oauth/introspect", {"token": "a"}),
        ("/oauth/revoke", {"token": "a"}),
    ):
        response = await auth_app.http.post(path, data=form, headers=headers)

        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")
