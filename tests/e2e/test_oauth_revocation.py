"""POST /oauth/revoke (RFC 7009), and revocation reaching every process."""

from __future__ import annotations

from tests.auth_support import AuthApp, basic, running_app

ME = "{ orders(first: 1) { totalCount } }"


async def test_a_revoked_token_is_refused_here_and_inactive(auth_app: AuthApp) -> None:
    client = await auth_app.client()
    token = await auth_app.token(client)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.secret is not None
    assert (await auth_app.graphql(ME, bearer)).status_code == 200

    response = await auth_app.http.post(
        "/oauth/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        headers=basic(client.client.client_id, client.secret),
    )

    assert response.status_code == 200
    refused = await auth_app.graphql(ME, bearer)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    introspected = await auth_app.http.post(
        "/oauth/introspect",
        data={"token": token},
        headers=basic(client.client.client_id, client.secret),
    )
    assert introspected.json() == {"active": False}


async def test_revocation_reaches_another_process_at_its_next_refresh(auth_app: AuthApp) -> None:
    client = await auth_app.client()
    token = await auth_app.token(client)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.secret is not None
    async with running_app(auth_app.db.url) as other_process:
        assert (await other_process.graphql(ME, bearer)).status_code == 200

        await auth_app.http.post(
            "/oauth/revoke",
            data={"token": token},
            headers=basic(client.client.client_id, client.secret),
        )
        # What the background task does every REVOCATION_REFRESH_SECONDS (at most 5):
        await other_process.services.revoked.refresh(other_process.db)

        assert (await other_process.graphql(ME, bearer)).status_code == 401


async def test_unknown_token_is_200_and_another_clients_token_is_invalid_grant(
    auth_app: AuthApp,
) -> None:
    owner = await auth_app.client()
    other = await auth_app.client()
    token = await auth_app.token(owner)
    assert other.secret is not None
    headers = basic(other.client.client_id, other.secret)

    unknown = await auth_app.http.post("/oauth/revoke", data={"token": "nope"}, headers=headers)
    foreign = await auth_app.http.post("/oauth/revoke", data={"token": token}, headers=headers)

    assert unknown.status_code == 200
    assert foreign.status_code == 400
    assert foreign.json()["error"] == "invalid_grant"
    still = await auth_app.graphql(ME, {"Authorization": f"Bearer {token}"})
    assert still.status_code == 200


async def test_revocation_needs_client_authentication(auth_app: AuthApp) -> None:
    response = await auth_app.http.post("/oauth/revoke", data={"token": "x"})
    assert response.json()["error"] == "invalid_client"
