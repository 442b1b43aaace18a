"""POST /oauth/revoke (RFC 7009), and revocation reaching every process."""

from __future__ import annotations

from tests.auth_support import AuthApp, basic, running_app
from tests.oauth_flow import Flow, code_client, me, pkce, user

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


async def _signed_in(app: AuthApp, flow: Flow) -> dict[str, str]:
    customer = await user(app)
    exchanged = await flow.exchange(await flow.code(customer.email))
    assert exchanged.status_code == 200, exchanged.text
    tokens: dict[str, str] = exchanged.json()
    return tokens


async def test_a_revoked_refresh_token_ends_its_whole_family(flow: Flow) -> None:
    tokens = await _signed_in(flow.app, flow)
    assert flow.client.secret is not None
    headers = basic(flow.client.client.client_id, flow.client.secret)

    revoked = await flow.app.http.post(
        "/oauth/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        headers=headers,
    )

    assert revoked.status_code == 200, revoked.text
    refused = await flow.refresh(tokens["refresh_token"])
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert (await me(flow.app, tokens["access_token"])).status_code == 401


async def test_a_refresh_token_is_found_without_a_hint_and_not_by_another_client(
    flow: Flow,
) -> None:
    tokens = await _signed_in(flow.app, flow)
    other = await flow.app.client()
    assert other.secret is not None
    assert flow.client.secret is not None

    foreign = await flow.app.http.post(
        "/oauth/revoke",
        data={"token": tokens["refresh_token"]},
        headers=basic(other.client.client_id, other.secret),
    )
    assert foreign.status_code == 400
    assert (await me(flow.app, tokens["access_token"])).status_code == 200

    own = await flow.app.http.post(
        "/oauth/revoke",
        data={"token": tokens["refresh_token"]},
        headers=basic(flow.client.client.client_id, flow.client.secret),
    )
    assert own.status_code == 200
    assert (await flow.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"


async def test_a_public_client_revokes_its_own_tokens_by_client_id(auth_app: AuthApp) -> None:
    verifier, challenge = pkce()
    async with auth_app.browser() as browser:
        public = Flow(
            auth_app, browser, await code_client(auth_app, public=True), verifier, challenge
        )
        tokens = await _signed_in(auth_app, public)
        client_id = public.client.client.client_id

        access = await auth_app.http.post(
            "/oauth/revoke", data={"token": tokens["access_token"], "client_id": client_id}
        )
        refresh = await auth_app.http.post(
            "/oauth/revoke",
            data={
                "token": tokens["refresh_token"],
                "token_type_hint": "refresh_token",
                "client_id": client_id,
            },
        )

        assert access.status_code == 200, access.text
        assert refresh.status_code == 200, refresh.text
        assert (await me(auth_app, tokens["access_token"])).status_code == 401
        assert (await public.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"


async def test_a_confidential_client_must_still_authenticate_to_revoke(flow: Flow) -> None:
    tokens = await _signed_in(flow.app, flow)

    response = await flow.app.http.post(
        "/oauth/revoke",
        data={"token": tokens["refresh_token"], "client_id": flow.client.client.client_id},
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert (await me(flow.app, tokens["access_token"])).status_code == 200
