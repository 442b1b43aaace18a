"""The bench's OAuth client and its access tokens.

The API lets anonymous callers read products only, so the bench measures what a real client
costs: a confidential client (created once in the bench database, its secret rotated each run
because only hashes are stored) that gets a client-credentials token from the server under test.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import httpx

from app.auth.passwords import Passwords
from app.auth.scopes import ALL_SCOPES, parse_scopes, scope_string
from app.config import Settings
from app.db.engine import Database
from app.db.urls import DatabaseUrl
from app.domain.auth import ClientType
from app.repositories.unit_of_work import SqlUnitOfWork
from app.usecases import operators as admin

CLIENT_NAME = "ordergraph-bench"
SCOPES = frozenset({"products:read", "orders:read", "users:read"})
GRANT_TYPE = "client_credentials"


class CredentialsError(RuntimeError):
    """The bench could not get a client or a token; the message says why."""


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str = field(repr=False)  # never printed


async def admin_api_key(db: Database, settings: Settings, email: str, name: str) -> str:
    """A new admin user and an API key holding every scope: what the event benches subscribe
    and write with (they start from an empty database, so the user is always new)."""
    await admin.create_user(
        SqlUnitOfWork.factory(db),
        Passwords(settings.auth),
        email=email,
        password=f"Bench-{uuid.uuid4().hex}",
        admin=True,
    )
    _, plaintext = await admin.create_api_key(
        SqlUnitOfWork.factory(db), email=email, name=name, scopes=",".join(sorted(ALL_SCOPES))
    )
    return plaintext


async def _ensure_client(db: Database) -> ClientCredentials:
    existing = await admin.find_client_by_name(SqlUnitOfWork.factory(db), CLIENT_NAME)
    if (
        existing is not None
        and existing.client_type is ClientType.CONFIDENTIAL
        and existing.scopes == SCOPES
        and GRANT_TYPE in existing.grant_types
    ):
        secret = await admin.rotate_client_secret(SqlUnitOfWork.factory(db), existing.client_id)
        return ClientCredentials(existing.client_id, secret)
    if existing is not None:  # made by an older bench with other scopes: replace it
        await admin.revoke_client(SqlUnitOfWork.factory(db), existing.client_id)
    made = await admin.create_client(
        SqlUnitOfWork.factory(db),
        name=CLIENT_NAME,
        grant_types=GRANT_TYPE,
        scopes=",".join(sorted(SCOPES)),
    )
    assert made.secret is not None  # a confidential client always gets one
    return ClientCredentials(made.client.client_id, made.secret)


def bench_client(database_url: str) -> ClientCredentials:
    """The bench's client in `database_url`, created if missing, with a fresh secret."""
    url = DatabaseUrl.parse(database_url)

    async def run() -> ClientCredentials:
        db = Database(url, Settings(database_url=database_url))
        try:
            return await _ensure_client(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except admin.OperatorError as error:
        raise CredentialsError(f"could not set up the bench's OAuth client: {error}") from None


def fetch_token(client: httpx.Client, base_url: str, credentials: ClientCredentials) -> str:
    """A client-credentials access token from the server's own token endpoint
    (client_secret_basic), holding every scope the bench needs."""
    response = client.post(
        f"{base_url}/oauth/token",
        data={"grant_type": GRANT_TYPE, "scope": scope_string(SCOPES)},
        auth=(credentials.client_id, credentials.client_secret),
    )
    if response.status_code != 200:
        raise CredentialsError(
            f"POST /oauth/token answered {response.status_code}: {response.text[:300]}"
        )
    body = response.json()
    token = body.get("access_token")
    if not isinstance(token, str) or str(body.get("token_type", "")).lower() != "bearer":
        raise CredentialsError(f"POST /oauth/token gave no bearer token: {sorted(body)}")
    # RFC 6749 §5.1: `scope` may be left out when it is the one asked for.
    granted = parse_scopes(str(body.get("scope", scope_string(SCOPES))))
    if granted != SCOPES:
        raise CredentialsError(
            f"the token holds {scope_string(granted) or 'no scope'}, not {scope_string(SCOPES)}"
        )
    return token
