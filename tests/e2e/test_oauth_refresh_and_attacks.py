"""Refresh rotation and reuse detection, and the attacks on the authorization-code flow.

Each attack gets its documented error and changes nothing (row counts, no session, no code).
"""

from __future__ import annotations

from sqlalchemy import update

from app.db.tables import users
from app.domain.models import Role
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases.operators import disable_user
from tests.auth_support import AuthApp, running_app
from tests.oauth_flow import Flow, code_client, hidden_fields, me, pkce, query_of, rows, user


async def _tokens(flow: Flow) -> dict[str, str]:
    customer = await user(flow.app)
    response = await flow.exchange(await flow.code(customer.email))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_refresh_rotates_within_the_family(flow: Flow) -> None:
    first = await _tokens(flow)

    second = await flow.refresh(first["refresh_token"])

    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert body["scope"] == first["scope"]
    assert (await flow.refresh(body["refresh_token"])).status_code == 200


async def test_invalid_grant_a_reused_refresh_token_revokes_the_family(flow: Flow) -> None:
    first = await _tokens(flow)
    rotated = (await flow.refresh(first["refresh_token"])).json()

    replay = await flow.refresh(first["refresh_token"])
    unknown = await flow.refresh("not-a-refresh-token-we-ever-issued")

    assert replay.status_code == unknown.status_code == 400
    assert replay.json() == unknown.json() == {"error": "invalid_grant"}
    assert (await flow.refresh(rotated["refresh_token"])).json() == {"error": "invalid_grant"}
    for access in (first["access_token"], rotated["access_token"]):
        assert (await me(flow.app, access)).status_code == 401


async def test_invalid_grant_a_reused_code_revokes_what_it_issued(flow: Flow) -> None:
    customer = await user(flow.app)
    code = await flow.code(customer.email)
    issued = (await flow.exchange(code)).json()
    assert (await me(flow.app, issued["access_token"])).status_code == 200

    again = await flow.exchange(code)

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert (await me(flow.app, issued["access_token"])).status_code == 401
    assert (await flow.refresh(issued["refresh_token"])).json() == {"error": "invalid_grant"}


async def test_redirect_uri_mismatch_shows_a_page_and_never_redirects(flow: Flow) -> None:
    before = await rows(flow.app)
    for uri in ("https://evil.example/callback", "https://app.example.test/callback/", None):
        page = await flow.start(redirect_uri=uri)
        assert page.status_code == 400
        assert "location" not in page.headers
        assert "redirect_uri" in page.text
    unknown_client = await flow.start(client_id="og_unknown")
    assert unknown_client.status_code == 400
    assert "location" not in unknown_client.headers
    assert await rows(flow.app) == before


async def test_invalid_grant_redirect_uri_differs_at_the_token_endpoint(flow: Flow) -> None:
    customer = await user(flow.app)
    code = await flow.code(customer.email)
    before = await rows(flow.app)

    response = await flow.exchange(code, redirect_uri="http://127.0.0.1:9999/cb")

    assert response.json()["error"] == "invalid_grant"
    assert await rows(flow.app) == before
    assert (await flow.exchange(code)).status_code == 200, "the code was not consumed"


async def test_invalid_request_missing_pkce_or_plain_at_the_authorize_step(flow: Flow) -> None:
    before = await rows(flow.app)
    cases: list[dict[str, str | None]] = [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
    ]
    for overrides in cases:
        answer = await flow.start(**overrides)
        assert answer.status_code == 302, overrides
        query = query_of(answer.headers["location"])
        assert answer.headers["location"].startswith("https://app.example.test/callback?")
        assert query["error"] == "invalid_request", overrides
        assert query["state"] == "st-123"
        assert "password" not in answer.text
    assert await rows(flow.app) == before


async def test_invalid_grant_wrong_verifier_and_invalid_request_without_one(flow: Flow) -> None:
    customer = await user(flow.app)
    code = await flow.code(customer.email)
    before = await rows(flow.app)
    wrong, _ = pkce()

    bad = await flow.exchange(code, verifier=wrong)
    missing = await flow.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://app.example.test/callback",
        }
    )

    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_grant"
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    assert await rows(flow.app) == before


async def test_invalid_grant_when_the_verifier_is_the_stored_challenge_itself(
    flow: Flow,
) -> None:
    """S256 is checked: sending the challenge back as the verifier (as `plain` would) fails."""
    customer = await user(flow.app)
    code = await flow.code(customer.email)
    before = await rows(flow.app)

    replayed = await flow.exchange(code, verifier=flow.challenge)

    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    assert await rows(flow.app) == before
    assert (await flow.exchange(code)).status_code == 200, "the code was not used up"


async def test_a_refresh_after_a_role_change_carries_only_the_new_roles_scopes(
    flow: Flow,
) -> None:
    admin = await user(flow.app, admin=True)
    first = await flow.exchange(await flow.code(admin.email, scope="orders:read admin"))
    assert first.json()["scope"] == "orders:read admin"
    async with flow.app.db.write() as conn:
        await conn.execute(
            update(users).where(users.c.id == admin.id).values(role=Role.CUSTOMER.value)
        )

    refreshed = await flow.refresh(first.json()["refresh_token"])

    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["scope"] == "orders:read"
    principal = flow.app.services.tokens.verify(refreshed.json()["access_token"]).principal()
    assert principal.scopes == frozenset({"orders:read"})


async def test_csrf_token_missing_or_wrong_is_refused(flow: Flow) -> None:
    customer = await user(flow.app)
    page = await flow.start()
    fields = {**hidden_fields(page.text), "email": customer.email, "password": "Correct-Horse-9"}
    before = await rows(flow.app)

    missing = await flow.browser.post(
        "/oauth/authorize", data={k: v for k, v in fields.items() if k != "csrf_token"}
    )
    wrong = await flow.browser.post("/oauth/authorize", data={**fields, "csrf_token": "forged"})

    for response in (missing, wrong):
        assert response.status_code == 403
        assert "CSRF" in response.text
        assert "location" not in response.headers
    assert "Sign in" in (await flow.start()).text, "still signed out"

    consent = await flow.consent_page(customer.email)
    forged = await flow.browser.post(
        "/oauth/authorize",
        data={**hidden_fields(consent.text), "decision": "approve", "csrf_token": "forged"},
    )
    assert forged.status_code == 403
    assert await rows(flow.app) == before


async def test_invalid_scope_escalation_at_consent(flow: Flow) -> None:
    customer = await user(flow.app)
    page = await flow.consent_page(customer.email)
    before = await rows(flow.app)

    for scope in ("orders:read admin", "orders:read users:read"):
        tampered = {**hidden_fields(page.text), "scope": scope, "decision": "approve"}
        answer = await flow.browser.post("/oauth/authorize", data=tampered)
        assert answer.status_code == 303
        query = query_of(answer.headers["location"])
        assert query["error"] == "invalid_scope"
        assert "code" not in query
    beyond_client = await flow.start(scope="orders:read orders:fulfill")
    assert query_of(beyond_client.headers["location"])["error"] == "invalid_scope"
    assert await rows(flow.app) == before


async def test_a_disabled_user_cannot_sign_in(flow: Flow) -> None:
    customer = await user(flow.app)
    await disable_user(SqlUnitOfWork.factory(flow.app.db), customer.email)

    response = await flow.sign_in(customer.email)

    # The correct password of a disabled account gets the wrong-password answer: a guesser
    # learns neither that the password was right nor that the account exists but is disabled.
    assert response.status_code == 400
    assert "The email or password is wrong." in response.text
    assert "disabled" not in response.text
    assert "Sign in" in (await flow.start()).text, "no session was created"


async def test_disabling_a_user_ends_their_tokens(flow: Flow) -> None:
    customer = await user(flow.app)
    issued = (await flow.exchange(await flow.code(customer.email))).json()
    assert (await me(flow.app, issued["access_token"])).status_code == 200

    await disable_user(SqlUnitOfWork.factory(flow.app.db), customer.email)
    # What every process's background loop does within REVOCATION_REFRESH_SECONDS.
    await flow.app.services.revoked.refresh(flow.app.db)

    refused = await me(flow.app, issued["access_token"])
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert (await flow.refresh(issued["refresh_token"])).json() == {"error": "invalid_grant"}


async def test_brute_force_login_is_throttled(auth_app: AuthApp) -> None:
    async with running_app(auth_app.db.url) as app:  # its own limiter
        customer = await user(app)
        verifier, challenge = pkce()
        client = await code_client(app)
        async with app.browser() as browser:
            flow = Flow(app, browser, client, verifier, challenge)
            limit = app.services.settings.login_failures_per_account
            for _ in range(limit):
                assert (await flow.sign_in(customer.email, "Wrong-Password-1")).status_code == 400

            throttled = await flow.sign_in(customer.email)  # the right password, too late

            assert throttled.status_code == 429
            assert int(throttled.headers["retry-after"]) >= 1
            assert "Sign in" in (await flow.start()).text, "not signed in"


async def test_session_cookie_is_secure_outside_development(auth_app: AuthApp) -> None:
    verifier, challenge = pkce()
    async with running_app(auth_app.db.url, environment="production") as app:
        flow = Flow(app, app.http, await code_client(app), verifier, challenge)
        response = await flow.start()
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert "; secure" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


async def test_graphql_ignores_the_session_cookie(flow: Flow) -> None:
    customer = await user(flow.app)
    await flow.consent_page(customer.email)
    cookie = flow.browser.cookies.get("og_session")
    assert cookie

    response = await flow.app.http.post(
        "/graphql",
        json={"query": "{ me { id } }"},
        headers={"cookie": f"og_session={cookie}"},
    )

    assert response.json()["data"]["me"] is None
