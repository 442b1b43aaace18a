"""Operators' use cases: clients, users, API keys. The CLI and `make run` call these.

Each raises AdminError with one clear sentence for bad input or a conflict.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

from sqlalchemy.exc import IntegrityError

from app.auth import api_keys, keys
from app.auth.keys import SigningKey
from app.auth.passwords import Passwords
from app.auth.scopes import ALL_SCOPES, CLIENT_SCOPES, ROLE_SCOPES, UnknownScope, parse_scopes
from app.db.engine import Database
from app.domain.accounts import MAX_KEYS_PER_USER
from app.domain.auth import ApiKey, ClientType, OAuthClient, secret_hash
from app.domain.models import InvalidUser, Role, User, normalize_email
from app.repositories import api_keys as key_repo
from app.repositories import clients as client_repo
from app.repositories import grants as grant_repo
from app.repositories import signing_keys as signing_key_repo
from app.repositories import users as user_repo

SUPPORTED_GRANT_TYPES = frozenset({"client_credentials", "authorization_code", "refresh_token"})


class AdminError(ValueError):
    """Bad input or a conflict, said in one line."""


@dataclass(frozen=True)
class NewClient:
    client: OAuthClient
    secret: str | None


def _scopes(raw: str, allowed: frozenset[str], whose: str) -> frozenset[str]:
    try:
        scopes = parse_scopes(raw)
    except UnknownScope as error:
        raise AdminError(str(error)) from None
    if not scopes:
        raise AdminError("give at least one scope")
    beyond = sorted(scopes - allowed)
    if beyond:
        raise AdminError(f"{whose} may not hold: {', '.join(beyond)}")
    return scopes


def new_client_secret() -> str:
    """32 random bytes behind a prefix: recognisable in a leak scan, and never mistaken for a
    command-line option (a bare URL-safe secret may start with "-")."""
    return f"cs_{secrets.token_urlsafe(32)}"


async def create_client(
    db: Database,
    *,
    name: str,
    grant_types: str,
    scopes: str,
    redirect_uris: list[str] | None = None,
    public: bool = False,
) -> NewClient:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise AdminError("the client name must have 1 to 200 characters")
    grants = frozenset(g for g in grant_types.replace(",", " ").split())
    if not grants:
        raise AdminError("give at least one grant type")
    unknown = sorted(grants - SUPPORTED_GRANT_TYPES)
    if unknown:
        raise AdminError(f"unsupported grant type(s): {', '.join(unknown)}")
    if public and "client_credentials" in grants:
        raise AdminError("a public client cannot use client_credentials (it has no secret)")
    if "refresh_token" in grants and "authorization_code" not in grants:
        raise AdminError("refresh_token needs the authorization_code grant type")
    uris = tuple(redirect_uris or ())
    for uri in uris:
        _check_redirect_uri(uri)
    if "authorization_code" in grants and not uris:
        raise AdminError("the authorization_code grant needs at least one --redirect-uri")
    # Users may delegate `admin` to an app they sign in to; client-credentials tokens never carry
    # it whatever the registration says (app.auth.oauth_server strips it).
    allowed = frozenset(ALL_SCOPES) if "authorization_code" in grants else CLIENT_SCOPES
    secret = None if public else new_client_secret()
    client = OAuthClient(
        id=uuid.uuid4(),
        client_id=f"og_{secrets.token_urlsafe(12)}",
        client_secret_hash=None if secret is None else secret_hash(secret),
        name=name,
        client_type=ClientType.PUBLIC if public else ClientType.CONFIDENTIAL,
        grant_types=grants,
        scopes=_scopes(scopes, allowed, "clients without authorization_code"),
        redirect_uris=uris,
        created_at=datetime.now(UTC),
    )
    async with db.transaction() as conn:
        await client_repo.insert_client(conn, client)
    return NewClient(client, secret)


def _check_redirect_uri(uri: str) -> None:
    """Absolute, no fragment (RFC 6749 §3.1.2); https, or http only on loopback (RFC 8252)."""
    parts = urlsplit(uri)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.fragment or "#" in uri or not parts.netloc or len(uri) > 2000:
        raise AdminError(f"{uri[:100]!r} is not an absolute redirect URI without a fragment")
    if not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise AdminError(f"{uri[:100]!r}: redirect URIs must be https (http only on loopback)")


async def list_clients(db: Database) -> list[OAuthClient]:
    async with db.read() as conn:
        return await client_repo.list_clients(conn)


async def find_client_by_name(db: Database, name: str) -> OAuthClient | None:
    async with db.read() as conn:
        return await client_repo.get_by_name(conn, name)


async def revoke_client(db: Database, client_id: str) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        if not await client_repo.revoke_client(conn, client_id, now):
            raise AdminError(f"no active client {client_id!r}")
        await grant_repo.revoke_refresh_tokens_where(conn, now, client_id=client_id)


async def rotate_client_secret(db: Database, client_id: str) -> str:
    secret = new_client_secret()
    async with db.transaction() as conn:
        changed = await client_repo.set_secret_hash(
            conn, client_id, secret_hash(secret), datetime.now(UTC)
        )
    if not changed:
        raise AdminError(f"no active confidential client {client_id!r}")
    return secret


async def create_user(
    db: Database, passwords: Passwords, *, email: str, password: str, admin: bool = False
) -> User:
    try:
        address = normalize_email(email)
    except InvalidUser as error:
        raise AdminError(str(error)) from None
    async with db.read() as conn:
        if await user_repo.get_by_email(conn, address) is not None:
            raise AdminError(f"a user with the email {address} already exists")
    try:
        user = await passwords.new_user(
            email=address, password=password, role=Role.ADMIN if admin else Role.CUSTOMER
        )
    except InvalidUser as error:
        raise AdminError(str(error)) from None
    try:
        async with db.transaction() as conn:
            await user_repo.insert_user(conn, user)
    except IntegrityError:
        raise AdminError(f"a user with the email {address} already exists") from None
    return user


async def _user_by_email(db: Database, email: str) -> User:
    async with db.read() as conn:
        user = await user_repo.get_by_email(conn, email)
    if user is None:
        raise AdminError(f"no user has the email {email.strip().lower()}")
    return user


async def create_api_key(
    db: Database,
    *,
    email: str,
    name: str,
    scopes: str,
    rate_per_minute: int | None = None,
    environment: str = "live",
    max_keys: int = MAX_KEYS_PER_USER,
) -> tuple[ApiKey, str]:
    """The key record and its plaintext, which is shown once and never stored."""
    user = await _user_by_email(db, email)
    if user.is_disabled:
        raise AdminError(f"the user {user.email} is disabled")
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise AdminError("the key name must have 1 to 200 characters")
    if rate_per_minute is not None and rate_per_minute < 1:
        raise AdminError("the rate must be at least 1 request a minute")
    granted = _scopes(scopes, ROLE_SCOPES[user.role], f"a {user.role.value}'s key")
    material = api_keys.generate(environment)
    key = ApiKey(
        id=uuid.uuid4(),
        user_id=user.id,
        name=name,
        last_four=material.last_four,
        environment=environment,
        scopes=granted,
        rate_per_minute=rate_per_minute,
        use_count=0,
        created_at=datetime.now(UTC),
    )
    async with db.transaction() as conn:
        if await key_repo.count_active_for_user(conn, user.id) >= max_keys:
            raise AdminError(f"{user.email} holds at most {max_keys} active API keys")
        await key_repo.insert_key(conn, key, material.key_hash)
    return key, material.plaintext


async def list_api_keys(db: Database, email: str) -> list[ApiKey]:
    user = await _user_by_email(db, email)
    async with db.read() as conn:
        return await key_repo.list_for_user(conn, user.id)


async def revoke_api_key(db: Database, key_id: str) -> None:
    try:
        pk = UUID(key_id)
    except ValueError:
        raise AdminError(f"{key_id!r} is not an API key ID") from None
    async with db.transaction() as conn:
        if not await key_repo.revoke(conn, pk, datetime.now(UTC)):
            raise AdminError(f"no active API key {key_id}")


async def disable_user(db: Database, email: str) -> tuple[int, int]:
    """Disable the user and revoke their access tokens, refresh tokens and API keys.

    Returns (access and refresh tokens, keys) revoked. Access tokens are refused by every process
    at its next revocation refresh; sign-in, code exchange and refresh check the flag directly.
    """
    user = await _user_by_email(db, email)
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        if not await user_repo.disable(conn, user.id, now):
            raise AdminError(f"the user {user.email} is already disabled")
        tokens = await client_repo.revoke_tokens_where(conn, now, user_id=user.id)
        tokens += await grant_repo.revoke_refresh_tokens_where(conn, now, user_id=user.id)
        keys = await key_repo.revoke_for_user(conn, user.id, now)
    return tokens, keys


@dataclass(frozen=True)
class Rotation:
    kid: str
    activates_at: datetime
    dropped: list[str]


async def rotate_signing_key(
    db: Database,
    configured: SigningKey,
    *,
    sealer: keys.KeySealer,
    token_lifetime_seconds: int,
    activate_in: float,
) -> Rotation:
    """Store a new signing key that signs from `activate_in` seconds on.

    Until then every process publishes it (they reload keys with the revocation set), so no token
    signed with it reaches a process that cannot verify it. Keys whose tokens have all expired are
    deleted at the same time.
    """
    if activate_in < 0:
        raise AdminError("the activation delay cannot be negative")
    now = datetime.now(UTC)
    new = keys.generate()
    activates_at = now + timedelta(seconds=activate_in)
    async with db.transaction() as conn:
        ring = keys.KeyRing(configured, token_lifetime_seconds, sealer)
        ring.load(await signing_key_repo.list_keys(conn))
        dropped = [kid for kid in ring.expired_kids(now) if kid != configured.kid]
        await signing_key_repo.delete_keys(conn, dropped)
        await signing_key_repo.insert_key(conn, keys.stored_key(new, activates_at, sealer))
    return Rotation(new.kid, activates_at, dropped)
