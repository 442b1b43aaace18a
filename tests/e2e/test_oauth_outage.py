"""The OAuth endpoints while the database is unreachable: 503 in each endpoint's own shape."""

from __future__ import annotations

from pathlib import Path

from app.db.urls import DatabaseUrl
from tests.auth_support import basic, running_app


async def test_oauth_endpoints_answer_503_temporarily_unavailable(tmp_path: Path) -> None:
    unreachable = DatabaseUrl.parse(f"sqlite:///{tmp_path / 'missing' / 'gone.sqlite3'}")
    async with running_app(unreachable) as app:
        credentials = basic("og_someone", "cs_secret")
        json_answers = [
            await app.http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, headers=credentials
            ),
            await app.http.post("/oauth/introspect", data={"token": "t"}, headers=credentials),
            await app.http.post("/oauth/revoke", data={"token": "t"}, headers=credentials),
        ]
        page = await app.http.get(
            "/oauth/authorize", params={"client_id": "og_someone", "response_type": "code"}
        )
        metadata = await app.http.get("/.well-known/oauth-authorization-server")

    for response in json_answers:
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.headers["retry-after"] == "1"
        assert response.headers["cache-control"] == "no-store"
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"] == "1"
    assert "temporarily unavailable" in page.text
    assert metadata.status_code == 200, "what needs no database keeps working"
