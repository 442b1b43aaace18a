"""POST /oauth/introspect (RFC 7662)."""

from __future__ import annotations

from tests.auth_support import AuthApp, basic


async def _introspect(app: AuthApp, client_id: str, secret: str, token: str) -> dict[str, object]:
    response = await app.http.post(
        "/oauth/introspect", data={"token": token}, headers=basic(client_id, secret)
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_an_active_token_is_described(auth_app: AuthApp) -> None:
    client = await auth_app.client(scopes="orders:read")
    token = await auth_app.token(client)
    assert client.secret is not None

    body = await _introspect(auth_app, client.client.client_id, client.secret, token)

    assert body["active"] is True
    assert body["scope"] == "orders:read"
    assert body["client_id"] == client.client.client_id
    assert body["token_type"] == "Bearer"


async def test_another_clients_token_is_inactive(auth_app: AuthApp) -> None:
    owner = await auth_app.client()
    other = await auth_app.client()
    token = await auth_app.token(owner)
    assert other.secret is not None

    body = await _introspect(auth_app, other.client.client_id, other.secret, token)

    assert body == {"active": False}


async def test_garbage_and_tampered_tokens_are_inactive(auth_app: AuthApp) -> None:
    client = await auth_app.client()
    token = await auth_app.token(client)
    assert client.secret is not None
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    for value in ("not-a-token", tampered):
        body = await _introspect(auth_app, client.client.client_id, client.secret, value)
        assert body == {"active": False}


async def test_invalid_client_and_invalid_request(auth_app: AuthApp) -> None:
    client = await auth_app.client()
    assert client.secret is not None
    unauthenticated = await auth_app.http.post("/oauth/introspect", data={"token": "x"})
    missing_token = await auth_app.http.post(
        "/oauth/introspect", data={}, headers=basic(client.client.client_id, client.secret)
    )

    assert unauthenticated.status_code in (400, 401)
    assert unauthenticated.json()["error"] == "invalid_client"
    assert missing_token.status_code == 400
    assert missing_token.json()["error"] == "invalid_request"
