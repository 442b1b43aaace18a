"""Every HTTP response says `nosniff`, and `Strict-Transport-Security` when served over https."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.main import create_app

ROUTES = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/graphql"),  # a refusal (no body) from the endpoint
    ("GET", "/nowhere"),  # Starlette's 404
    ("GET", "/.well-known/jwks.json"),
    ("POST", "/oauth/token"),
]


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_every_response_carries_the_security_headers(tmp_path: Path, scheme: str) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=f"{scheme}://testserver") as http,
    ):
        responses = [await http.request(method, path) for method, path in ROUTES]
        oversized = await http.post("/graphql", content=b"x" * 2_000_000)

    for response in [*responses, oversized]:
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        if scheme == "https":
            assert response.headers["strict-transport-security"] == "max-age=31536000"
        else:
            assert "strict-transport-security" not in response.headers
    assert oversized.status_code == 413
