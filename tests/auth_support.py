"""The app with authentication, for tests: a test signing key, cheap Argon2, an HTTP client."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from starlette.applications import Starlette

from app.auth.keys import generate
from app.auth.services import AuthServices
from app.config import AuthSettings, Settings
from app.db.engine import Database
from app.db.urls import DatabaseUrl
from app.email import EmailSender
from app.main import create_app
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases.operators import NewClient, create_client
from tests.services import RUN_ID

ISSUER = "https://api.ordergraph.test"
AUDIENCE = "ordergraph-test"


@cache
def signing_pem() -> str:
    return generate().key.as_pem(private=True).decode()


def auth_settings(**overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "signing_key_pem": signing_pem(),
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
        "argon2_parallelism": 1,
        "redis_prefix": f"og-test-{RUN_ID}:",
    }
    values.update(overrides)
    return AuthSettings(**values)


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@dataclass
class AuthApp:
    http: httpx.AsyncClient
    services: AuthServices
    db: Database
    transport: httpx.AsyncBaseTransport
    app: Starlette

    def peer(self, address: str) -> httpx.AsyncClient:
        """A client whose requests come from `address` (close it after use)."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url=ISSUER)

    def browser(self) -> httpx.AsyncClient:
        """A client with its own cookie jar, like a separate browser (close it after use)."""
        return httpx.AsyncClient(transport=self.transport, base_url=ISSUER)

    async def client(
        self, scopes: str = "products:read,orders:read,users:read", name: str = "test"
    ) -> NewClient:
        return await create_client(
            SqlUnitOfWork.factory(self.db),
            name=name,
            grant_types="client_credentials",
            scopes=scopes,
        )

    async def token_response(
        self, client: NewClient, scope: str | None = None, *, post: bool = False
    ) -> httpx.Response:
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        headers: dict[str, str] = {}
        assert client.secret is not None
        if post:
            form.update(client_id=client.client.client_id, client_secret=client.secret)
        else:
            headers = basic(client.client.client_id, client.secret)
        return await self.http.post("/oauth/token", data=form, headers=headers)

    async def token(self, client: NewClient, scope: str | None = None) -> str:
        response = await self.token_response(client, scope)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def graphql(
        self, query: str, headers: dict[str, str] | None = None, **variables: Any
    ) -> httpx.Response:
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
        )


@asynccontextmanager
async def running_app(
    url: DatabaseUrl, *, email_sender: EmailSender | None = None, **overrides: Any
) -> AsyncIterator[AuthApp]:
    """The whole app over ASGI with its lifespan (auth services, revocation refresher)."""
    settings = Settings(database_url=str(url), auth=auth_settings(**overrides))
    app = create_app(settings, email_sender=email_sender)
    async with app.router.lifespan_context(app):
        state = app.state.og
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield AuthApp(http=http, services=state.auth, db=state.db, transport=transport, app=app)
