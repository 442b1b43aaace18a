"""Credentials on /graphql: JWTs and API keys in, 401 / 429 out, the session cookie ignored."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from app.repositories.unit_of_work import SqlUnitOfWork
from app.seed import DEMO_CUSTOMER_EMAIL
from app.usecases import operators as admin
from tests.auth_support import AuthApp, running_app

ME = "{ me { email } }"
MY_ORDERS = "{ orders(first: 50) { totalCount edges { node { user { email } } } } }"


async def _user(app: AuthApp, email: str) -> None:
    await admin.create_user(
        SqlUnitOfWork.factory(app.db), app.services.passwords, email=email, password="Sturdy-pass-1"
    )


async def test_anonymous_reads_products_and_me_is_null(auth_app: AuthApp) -> None:
    response = await auth_app.graphql("{ me { id } products(first: 1) { totalCount } }")
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    assert body["data"]["me"] is None
    assert body["data"]["products"]["totalCount"] == 5


async def test_invalid_bearer_token_is_401_with_a_challenge(auth_app: AuthApp) -> None:
    for headers in (
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Bearer sk_live_" + "A" * 43},
        {"X-API-Key": "sk_test_short"},
    ):
        response = await auth_app.graphql(ME, headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_oauth_session_cookie_is_not_a_credential(auth_app: AuthApp) -> None:
    response = await auth_app.graphql(ME, {"Cookie": "session=anything; og_session=x"})
    assert response.status_code == 200
    assert response.json()["data"]["me"] is None


async def test_an_api_key_in_either_header_is_its_owner(auth_app: AuthApp) -> None:
    email = "key-owner@example.com"
    await _user(auth_app, email)
    _, key = await admin.create_api_key(
        SqlUnitOfWork.factory(auth_app.db), email=email, name="laptop", scopes="orders:read"
    )

    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        response = await auth_app.graphql(ME, headers)
        assert response.status_code == 200
        assert response.json()["data"] == {"me": {"email": email}}
        assert "errors" not in response.json()


async def test_a_customer_key_lists_only_its_owners_orders(auth_app: AuthApp) -> None:
    _, key = await admin.create_api_key(
        SqlUnitOfWork.factory(auth_app.db),
        email=DEMO_CUSTOMER_EMAIL,
        name="mine",
        scopes="orders:read",
    )
    response = await auth_app.graphql(MY_ORDERS, {"X-API-Key": key})
    body = response.json()
    assert "errors" not in body
    emails = {e["node"]["user"]["email"] for e in body["data"]["orders"]["edges"]}
    assert emails <= {DEMO_CUSTOMER_EMAIL}


async def test_a_revoked_api_key_is_401(auth_app: AuthApp) -> None:
    email = "revoked-key@example.com"
    await _user(auth_app, email)
    record, key = await admin.create_api_key(
        SqlUnitOfWork.factory(auth_app.db), email=email, name="old", scopes="orders:read"
    )
    assert (await auth_app.graphql(ME, {"X-API-Key": key})).status_code == 200

    await admin.revoke_api_key(SqlUnitOfWork.factory(auth_app.db), str(record.id))

    response = await auth_app.graphql(ME, {"X-API-Key": key})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_disabled_users_key_is_401(auth_app: AuthApp) -> None:
    email = "soon-disabled@example.com"
    await _user(auth_app, email)
    _, key = await admin.create_api_key(
        SqlUnitOfWork.factory(auth_app.db), email=email, name="k", scopes="orders:read"
    )

    keys = (await admin.disable_user(SqlUnitOfWork.factory(auth_app.db), email)).keys

    assert keys == 1
    response = await auth_app.graphql(ME, {"X-API-Key": key})
    assert response.status_code == 401


async def test_a_rate_limited_api_key_is_429_with_retry_after(auth_app: AuthApp) -> None:
    email = "busy@example.com"
    await _user(auth_app, email)
    _, key = await admin.create_api_key(
        SqlUnitOfWork.factory(auth_app.db),
        email=email,
        name="tiny",
        scopes="orders:read",
        rate_per_minute=2,
    )
    statuses = [(await auth_app.graphql(ME, {"X-API-Key": key})).status_code for _ in range(2)]
    assert statuses == [200, 200]

    limited = await auth_app.graphql(ME, {"X-API-Key": key})

    assert limited.status_code == 429
    retry_after = int(limited.headers["retry-after"])
    assert retry_after >= 1
    error = limited.json()["errors"][0]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": retry_after}


async def test_both_credentials_at_once_are_refused(auth_app: AuthApp) -> None:
    response = await auth_app.graphql(
        ME, {"Authorization": "Bearer x.y.z", "X-API-Key": "sk_live_" + "A" * 43}
    )
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_repeated_credential_header_is_refused_not_the_last_one_believed(
    auth_app: AuthApp,
) -> None:
    """The review sent a customer's key and then an admin's: the request ran as the admin."""
    customer_email, admin_email = "twice-customer@example.com", "twice-admin@example.com"
    await _user(auth_app, customer_email)
    await admin.create_user(
        SqlUnitOfWork.factory(auth_app.db),
        auth_app.services.passwords,
        email=admin_email,
        password="Sturdy-pass-1",
        admin=True,
    )
    _, customer = await admin.create_api_key(
        SqlUnitOfWork.factory(auth_app.db), email=customer_email, name="c", scopes="orders:read"
    )
    _, boss = await admin.create_api_key(
        SqlUnitOfWork.factory(auth_app.db), email=admin_email, name="a", scopes="admin"
    )

    for name, values in (
        ("Authorization", (f"Bearer {customer}", f"Bearer {boss}")),
        ("X-API-Key", (customer, boss)),
    ):
        response = await auth_app.http.post(
            "/graphql",
            json={"query": ME},
            headers=[(name, values[0]), (name, values[1])],
        )
        assert response.status_code == 400, name
        assert 'error="invalid_request"' in response.headers["www-authenticate"]
        assert "data" not in response.json()


async def test_anonymous_callers_are_rate_limited_per_address(auth_app: AuthApp) -> None:
    products = "{ products(first: 1) { totalCount } }"
    burst = 3
    async with (
        running_app(
            auth_app.db.url, anonymous_rate_per_minute=burst, anonymous_rate_burst=burst
        ) as app,
        app.peer("203.0.113.7") as greedy,
        app.peer("203.0.113.8") as other,
    ):
        statuses = [
            (await greedy.post("/graphql", json={"query": products})).status_code
            for _ in range(burst)
        ]
        refused = await greedy.post("/graphql", json={"query": products})
        neighbour = await other.post("/graphql", json={"query": products})

    assert statuses == [200] * burst
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert neighbour.status_code == 200, "each address has its own bucket"


async def test_api_key_usage_is_recorded_off_the_request_path(auth_app: AuthApp) -> None:
    email = "counted@example.com"
    await _user(auth_app, email)
    _, key = await admin.create_api_key(
        SqlUnitOfWork.factory(auth_app.db), email=email, name="c", scopes="orders:read"
    )
    for _ in range(3):
        assert (await auth_app.graphql(ME, {"X-API-Key": key})).status_code == 200
    listed = await admin.list_api_keys(SqlUnitOfWork.factory(auth_app.db), email)
    assert listed[0].use_count == 0, "nothing written while serving"

    await auth_app.services.usage.flush(auth_app.db)  # what the background loop does

    listed = await admin.list_api_keys(SqlUnitOfWork.factory(auth_app.db), email)
    assert listed[0].use_count == 3
    assert listed[0].last_used_at is not None


async def test_a_token_header_with_control_or_non_latin_text_is_a_clean_401(
    auth_app: AuthApp,
) -> None:
    def b64(data: Mapping[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    kid = auth_app.services.tokens.keys.current().kid
    for header in (
        {"alg": "RS256\u0100", "kid": kid},
        {"alg": "x\r\nSet-Cookie: a=b", "kid": kid},
        {"alg": "RS256", "kid": "\u0100\r\n"},
    ):
        forged = f"{b64(header)}.{b64({'sub': 'x'})}.AAAA"
        response = await auth_app.graphql("{ me { id } }", {"Authorization": f"Bearer {forged}"})

        assert response.status_code == 401, response.text
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="invalid_token"')
        assert challenge.isascii()
        assert "Set-Cookie" not in challenge
        assert "set-cookie" not in response.headers
        assert "\u0100" not in response.text
