"""The authorization-code flow over HTTP, through the login and consent pages, with PKCE S256."""

from __future__ import annotations

from joserfc import jwt

from tests.auth_support import AUDIENCE, ISSUER, AuthApp
from tests.oauth_flow import (
    Flow,
    code_client,
    hidden_fields,
    me,
    pkce,
    query_of,
    rows,
    user,
)


async def test_confidential_client_signs_a_user_in_and_gets_tokens(flow: Flow) -> None:
    customer = await user(flow.app)

    page = await flow.start()
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"
    assert 'name="password"' in page.text
    assert "<script" not in page.text
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/oauth/authorize" in cookie

    code = await flow.code(customer.email)
    response = await flow.exchange(code)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "orders:read"
    assert body["refresh_token"]
    claims = jwt.decode(body["access_token"], flow.app.services.signing_key.key).claims
    assert claims["sub"] == str(customer.id)
    assert claims["client_id"] == flow.client.client.client_id
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    answer = await me(flow.app, body["access_token"])
    assert answer.json()["data"]["me"]["email"] == customer.email


async def test_the_redirect_carries_state_and_iss(flow: Flow) -> None:
    customer = await user(flow.app)
    page = await flow.consent_page(customer.email)

    answer = await flow.browser.post(
        "/oauth/authorize", data={**hidden_fields(page.text), "decision": "approve"}
    )

    assert answer.status_code == 303
    query = query_of(answer.headers["location"])
    assert query["state"] == "st-123"
    assert query["iss"] == ISSUER
    assert query["code"]


async def test_public_client_with_pkce_and_no_secret(auth_app: AuthApp) -> None:
    customer = await user(auth_app)
    verifier, challenge = pkce()
    client = await code_client(auth_app, public=True)
    assert client.secret is None
    async with auth_app.browser() as browser:
        flow = Flow(auth_app, browser, client, verifier, challenge)
        code = await flow.code(customer.email)
        response = await flow.exchange(code)

    assert response.status_code == 200, response.text
    assert (await me(auth_app, response.json()["access_token"])).json()["data"]["me"][
        "email"
    ] == customer.email


async def test_an_admin_gets_admin_scope_and_a_customer_never_does(flow: Flow) -> None:
    admin = await user(flow.app, admin=True)
    customer = await user(flow.app)

    code = await flow.code(admin.email, scope="orders:read admin")
    admin_scope = (await flow.exchange(code)).json()["scope"]
    async with flow.app.browser() as other:
        second = Flow(flow.app, other, flow.client, flow.verifier, flow.challenge)
        page = await second.consent_page(customer.email, scope="orders:read admin")
        assert "Not granted" in page.text
        answer = await other.post(
            "/oauth/authorize", data={**hidden_fields(page.text), "decision": "approve"}
        )
    customer_code = query_of(answer.headers["location"])["code"]
    customer_scope = (await flow.exchange(customer_code)).json()["scope"]

    assert admin_scope == "orders:read admin"
    assert customer_scope == "orders:read"


async def test_access_denied_when_the_user_refuses(flow: Flow) -> None:
    customer = await user(flow.app)
    page = await flow.consent_page(customer.email)
    before = await rows(flow.app)

    answer = await flow.browser.post(
        "/oauth/authorize", data={**hidden_fields(page.text), "decision": "deny"}
    )

    assert answer.status_code == 303
    query = query_of(answer.headers["location"])
    assert query["error"] == "access_denied"
    assert query["state"] == "st-123"
    assert await rows(flow.app) == before


async def test_the_consent_page_names_each_scope_once(flow: Flow) -> None:
    admin = await user(flow.app, admin=True)
    page = await flow.consent_page(admin.email, scope="orders:read admin")
    assert "<li>Administer everything (<code>admin</code>)</li>" in page.text
    assert "(admin) (" not in page.text
