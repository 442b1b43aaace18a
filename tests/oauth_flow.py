"""Drive the authorization-code flow like a browser: follow the login and consent forms."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import func, select

from app.db.tables import access_tokens, authorization_codes, refresh_tokens
from app.domain.models import User
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases.operators import NewClient, create_client, create_user
from tests.auth_support import AuthApp, basic

PASSWORD = "Correct-Horse-9"
REDIRECT_URI = "https://app.example.test/callback"


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.buttons: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values.get("value", "")
        if tag == "button" and "name" in values:
            self.buttons.append((values["name"], values.get("value", "")))


def hidden_fields(page: str) -> dict[str, str]:
    parser = _Forms()
    parser.feed(page)
    return parser.fields


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def user(app: AuthApp, *, admin: bool = False) -> User:
    return await create_user(
        SqlUnitOfWork.factory(app.db),
        app.services.passwords,
        email=f"u-{uuid.uuid4().hex[:10]}@example.test",
        password=PASSWORD,
        admin=admin,
    )


async def code_client(
    app: AuthApp,
    *,
    public: bool = False,
    scopes: str = "products:read,orders:read,users:read,admin",
) -> NewClient:
    return await create_client(
        SqlUnitOfWork.factory(app.db),
        name="Shop app",
        grant_types="authorization_code,refresh_token",
        scopes=scopes,
        redirect_uris=[REDIRECT_URI, "http://127.0.0.1:9999/cb"],
        public=public,
    )


@dataclass
class Flow:
    app: AuthApp
    browser: httpx.AsyncClient
    client: NewClient
    verifier: str
    challenge: str

    def params(self, **overrides: str | None) -> dict[str, str]:
        values: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client.client.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "orders:read",
            "state": "st-123",
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        values.update(overrides)
        return {k: v for k, v in values.items() if v is not None}

    async def start(self, **overrides: str | None) -> httpx.Response:
        return await self.browser.get("/oauth/authorize", params=self.params(**overrides))

    async def sign_in(self, email: str, password: str = PASSWORD, **params: str) -> httpx.Response:
        page = await self.start(**params)
        assert page.status_code == 200, page.text
        form = {**hidden_fields(page.text), "email": email, "password": password}
        return await self.browser.post("/oauth/authorize", data=form)

    async def consent_page(self, email: str, **params: str) -> httpx.Response:
        signed_in = await self.sign_in(email, **params)
        assert signed_in.status_code == 303, signed_in.text
        page = await self.browser.get(signed_in.headers["location"])
        assert page.status_code == 200, page.text
        assert "Authorize access" in page.text, page.text
        return page

    async def code(self, email: str, **params: str) -> str:
        page = await self.consent_page(email, **params)
        answer = await self.browser.post(
            "/oauth/authorize", data={**hidden_fields(page.text), "decision": "approve"}
        )
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        assert location.startswith(REDIRECT_URI + "?")
        return query_of(location)["code"]

    async def exchange(
        self, code: str, *, verifier: str | None = None, redirect_uri: str = REDIRECT_URI
    ) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier or self.verifier,
        }
        return await self.token(form)

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def token(self, form: dict[str, str]) -> httpx.Response:
        headers: dict[str, str] = {}
        if self.client.secret is None:
            form = {**form, "client_id": self.client.client.client_id}
        else:
            headers = basic(self.client.client.client_id, self.client.secret)
        return await self.app.http.post("/oauth/token", data=form, headers=headers)


async def rows(app: AuthApp) -> dict[str, int]:
    """Row counts of what the flow writes, to show a refused request changed nothing."""
    async with app.db.read() as conn:
        return {
            table.name: int(
                (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            )
            for table in (authorization_codes, access_tokens, refresh_tokens)
        }


async def me(app: AuthApp, access_token: str) -> httpx.Response:
    return await app.graphql("{ me { id email } }", {"Authorization": f"Bearer {access_token}"})
