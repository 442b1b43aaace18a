"""The OAuth endpoints with text no database can store: refused as the request's fault (400/401
in RFC 6749 shape, an error page for /oauth/authorize), never a 500 (issue 11, same class)."""

from __future__ import annotations

import base64
import logging

import pytest

from tests.auth_support import AuthApp, basic

NUL = "og_a\x00b"


def _basic_raw(text: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}


async def test_oauth_endpoints_refuse_nul_as_bad_requests(
    auth_app: AuthApp, caplog: pytest.LogCaptureFixture
) -> None:
    grant = {"grant_type": "client_credentials"}
    answers = {
        "token, client_id in the form": await auth_app.http.post(
            "/oauth/token", data={**grant, "client_id": NUL, "client_secret": "x"}
        ),
        "token, client_id in Basic": await auth_app.http.post(
            "/oauth/token", data=grant, headers=basic(NUL, "x")
        ),
        "token, NUL in the secret": await auth_app.http.post(
            "/oauth/token", data=grant, headers=_basic_raw("og_x:se\x00cret")
        ),
        "introspect": await auth_app.http.post(
            "/oauth/introspect", data={"token": "a\x00b"}, headers=basic("og_x", "y")
        ),
        "revoke": await auth_app.http.post(
            "/oauth/revoke", data={"token": "a\x00b", "client_id": "og_x"}
        ),
        "refresh": await auth_app.http.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": "r\x00", "client_id": "og_x"},
        ),
    }
    page = await auth_app.http.get(
        "/oauth/authorize", params={"client_id": "og_\x00", "response_type": "code"}
    )

    for name, response in answers.items():
        assert response.status_code in (400, 401), (name, response.text)
        assert response.json()["error"] in ("invalid_request", "invalid_client"), name
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
