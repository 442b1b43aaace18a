"""Operators' use cases: OAuth clients, users, API keys and signing keys, for the command line
(`python -m app …`) and `make run`.

Each runs in one unit of work like any other change and records the domain events its change
has (a user registered or disabled, a key created or revoked). Bad input or a conflict raises
`OperatorError` with one clear sentence, which the command line prints.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from app.auth import keys
from app.auth.keys import SigningKey
from app.auth.passwords import Passwords
from app.auth.principal import OPERATOR
from app.auth.scopes import ALL_SCOPES, CLIENT_SCOPES, UnknownScope, parse_scopes
from app.domain.accounts import MAX_KEYS_PER_USER, user_disabled
from app.domain.auth import ApiKey, ClientType, OAuthClient, secret_hash
from app.domain.documents import TrustedDocument
from app.domain.events import user_registered
from app.domain.models import InvalidUser, Profile, Role, User, display_name_for, normalize_email
from app.errors import ApiError
from app.unit_of_work import UnitOfWork, UnitOfWorkFactory
from app.usecases import accounts
from app.usecases.runner import Outcome, run, utcnow

T = TypeVar("T")

SUPPORTED_GRANT_TYPES = frozenset({"client_credentials", "authorization_code", "refresh_token"})


class OperatorError(ValueError):
    """Bad input or a conflict, said in one line."""


def _value(outcome: Outcome[T]) -> T:
    if outcome.problems:
        raise OperatorError("; ".join(p.message for p in outcome.problems))
    assert outcome.value is not None
    return outcome.value


async def _run(uow_factory: UnitOfWorkFactory, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    try:
        return _value(await run(uow_factory, work))
    except ApiError as error:
        raise OperatorError(error.message) from None


# --- OAuth clients ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewClient:
    client: OAuthClient
    secret: str | None


def new_client_secret() -> str:
    """32 random bytes behind a prefix: recognisable in a leak scan, and never mistaken for a
    command-line option (a bare URL-safe secret may start with "-")."""
    return f"cs_{secrets.token_urlsafe(32)}"


def _scopes(raw: str, allowed: frozenset[str], whose: str) -> frozenset[str]:
    try:
        scopes = parse_scopes(raw)
    except UnknownScope as error:
        raise OperatorError(str(error)) from None
    if not scopes:
        raise OperatorError("give at least one scope")
    beyond = sorted(scopes - allowed)
    if beyond:
        raise OperatorError(f"{whose} may not hold: {', '.join(beyond)}")
    return scopes


def _check_redirect_uri(uri: str) -> None:
    """Absolute, no fragment (RFC 6749 §3.1.2); https, or http only on loopback (RFC 8252)."""
    parts = urlsplit(uri)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.fragment or "#" in uri or not parts.netloc or len(uri) > 2000:
        raise OperatorError(f"{uri[:100]!r} is not an absolute redirect URI without a fragment")
    if not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise OperatorError(f"{uri[:100]!r}: redirect URIs must be https (http only on loopback)")


def new_client(
    *,
    name: str,
    grant_types: str,
    scopes: str,
    redirect_uris: list[str] | None = None,
    public: bool = False,
    now: datetime,
) -> NewClient:
    """A client registration under the rules, with its secret (None for a public client)."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise OperatorError("the client name must have 1 to 200 characters")
    grants = frozenset(g for g in grant_types.replace(",", " ").split())
    if not grants:
        raise OperatorError("give at least one grant type")
    unknown = sorted(grants - SUPPORTED_GRANT_TYPES)
    if unknown:
        raise OperatorError(f"unsupported grant type(s): {', '.join(unknown)}")
    if public and "client_credentials" in grants:
        raise OperatorError("a public client cannot use client_credentials (it has no secret)")
    if "refresh_token" in grants and "authorization_code" not in grants:
        raise OperatorError("refresh_token needs the authorization_code grant type")
    uris = tuple(redirect_uris or ())
    for uri in uris:
        _check_redirect_uri(uri)
    if "authorization_code" in grants and not uris:
        raise OperatorError("the authorization_code grant needs at least one --redirect-uri")
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
        created_at=now,
    )
    return NewClient(client, secret)


async def create_client(
    uow_factory: UnitOfWorkFactory,
    *,
    name: str,
    grant_types: str,
    scopes: str,
    redirect_uris: list[str] | None = None,
    public: bool = False,
) -> NewClient:
    made = new_client(
        name=name,
        grant_types=grant_types,
        scopes=scopes,
        redirect_uris=redirect_uris,
        public=public,
        now=utcnow(),
    )

    async def work(uow: UnitOfWork) -> NewClient:
        await uow.clients.add(made.client)
        return made

    return await _run(uow_factory, work)


async def list_clients(uow_factory: UnitOfWorkFactory) -> list[OAuthClient]:
    async def work(uow: UnitOfWork) -> list[OAuthClient]:
        return await uow.clients.all()

    return await _run(uow_factory, work)


async def find_client_by_name(uow_factory: UnitOfWorkFactory, name: str) -> OAuthClient | None:
    async def work(uow: UnitOfWork) -> OAuthClient | None:
        return await uow.clients.get_by_name(name)

    return (await run(uow_factory, work)).value


async def revoke_client(uow_factory: UnitOfWorkFactory, client_id: str) -> None:
    """Revoke the client with every access and refresh token it holds."""

    async def work(uow: UnitOfWork) -> bool:
        now = utcnow()
        if not await uow.clients.revoke(client_id, now):
            raise OperatorError(f"no active client {client_id!r}")
        await uow.clients.revoke_tokens(now, client_id=client_id)
        await uow.grants.revoke_refresh_tokens(now, client_id=client_id)
        return True

    await _run(uow_factory, work)


async def rotate_client_secret(uow_factory: UnitOfWorkFactory, client_id: str) -> str:
    secret = new_client_secret()

    async def work(uow: UnitOfWork) -> str:
        if not await uow.clients.set_secret_hash(client_id, secret_hash(secret), utcnow()):
            raise OperatorError(f"no active confidential client {client_id!r}")
        return secret

    return await _run(uow_factory, work)


# --- users ----------------------------------------------------------------------------------


async def create_user(
    uow_factory: UnitOfWorkFactory,
    passwords: Passwords,
    *,
    email: str,
    password: str,
    admin: bool = False,
) -> User:
    """An account with a profile named after its email; records `UserRegistered` like a sign-up
    (so the welcome email goes out)."""
    try:
        address = normalize_email(email)
        user = await passwords.new_user(
            email=address, password=password, role=Role.ADMIN if admin else Role.CUSTOMER
        )
    except InvalidUser as error:
        raise OperatorError(str(error)) from None
    display_name = display_name_for(None, None, user.email)
    profile = Profile(user_id=user.id, first_name=None, last_name=None, display_name=display_name)

    async def work(uow: UnitOfWork) -> User:
        if not await uow.users.add(user, profile):
            raise OperatorError(f"a user with the email {address} already exists")
        await uow.record(user_registered(user.id, user.email, display_name, user.created_at))
        return user

    return await _run(uow_factory, work)


@dataclass(frozen=True)
class Disabled:
    tokens: int  # access and refresh tokens revoked
    keys: int  # API keys revoked


async def disable_user(uow_factory: UnitOfWorkFactory, email: str) -> Disabled:
    """Disable the user and revoke their access tokens, refresh tokens and API keys, recording
    `UserDisabled` and an `ApiKeyRevoked` for every key.

    Access tokens are refused by every process at its next revocation refresh; sign-in, code
    exchange and refresh check the flag directly.
    """

    async def work(uow: UnitOfWork) -> Disabled:
        user = await _user_by_email(uow, email)
        now = utcnow()
        if not await uow.users.disable(user.id, now):
            raise OperatorError(f"the user {user.email} is already disabled")
        version = await uow.events.last_version(user.id)
        await uow.record(user_disabled(user.id, version + 1, now))
        tokens = await uow.clients.revoke_tokens(now, user_id=user.id)
        tokens += await uow.grants.revoke_refresh_tokens(now, user_id=user.id)
        revoked = [
            await accounts.revoke_key(uow, k) for k in await uow.api_keys.list_for_user(user.id)
        ]
        return Disabled(tokens, sum(1 for key in revoked if key is not None))

    return await _run(uow_factory, work)


async def _user_by_email(uow: UnitOfWork, email: str) -> User:
    user = await uow.users.get_by_email(email.strip().lower())
    if user is None:
        raise OperatorError(f"no user has the email {email.strip().lower()}")
    return user


# --- API keys -------------------------------------------------------------------------------


async def create_api_key(
    uow_factory: UnitOfWorkFactory,
    *,
    email: str,
    name: str,
    scopes: str,
    rate_per_minute: int | None = None,
    environment: str = "live",
    max_keys: int = MAX_KEYS_PER_USER,
) -> tuple[ApiKey, str]:
    """The key record and its plaintext, which is shown once and never stored: the same use case
    as a user's own `createApiKey`, acting as the operator for the user named by email."""
    command = accounts.CreateApiKey(
        max_keys=max_keys,
        name=name,
        scopes=tuple(scopes.replace(",", " ").split()),
        owner_email=email,
        rate_per_minute=rate_per_minute,
    )
    try:
        made = _value(await accounts.create_api_key(uow_factory, OPERATOR, command, environment))
    except ApiError as error:
        raise OperatorError(error.message) from None
    return made.key, made.secret


async def list_api_keys(uow_factory: UnitOfWorkFactory, email: str) -> list[ApiKey]:
    async def work(uow: UnitOfWork) -> list[ApiKey]:
        return await uow.api_keys.list_for_user((await _user_by_email(uow, email)).id)

    return await _run(uow_factory, work)


async def revoke_api_key(uow_factory: UnitOfWorkFactory, key_id: str) -> ApiKey:
    """Revoke any user's key, recording `ApiKeyRevoked`; an unknown or revoked key is an error
    here, so a mistyped ID is noticed."""
    try:
        pk = UUID(key_id)
    except ValueError:
        raise OperatorError(f"{key_id!r} is not an API key ID") from None

    async def work(uow: UnitOfWork) -> ApiKey:
        key = await uow.api_keys.get(pk)
        revoked = None if key is None else await accounts.revoke_key(uow, key)
        if revoked is None:
            raise OperatorError(f"no active API key {key_id}")
        return revoked

    return await _run(uow_factory, work)


# --- signing keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    kid: str
    activates_at: datetime
    dropped: list[str]


async def rotate_signing_key(
    uow_factory: UnitOfWorkFactory,
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
        raise OperatorError("the activation delay cannot be negative")
    new = keys.generate()

    async def work(uow: UnitOfWork) -> Rotation:
        now = utcnow()
        activates_at = now + timedelta(seconds=activate_in)
        ring = keys.KeyRing(configured, token_lifetime_seconds, sealer)
        ring.load(await uow.signing_keys.all())
        dropped = [kid for kid in ring.expired_kids(now) if kid != configured.kid]
        await uow.signing_keys.delete(dropped)
        await uow.signing_keys.add(keys.stored_key(new, activates_at, sealer))
        return Rotation(new.kid, activates_at, dropped)

    return await _run(uow_factory, work)


# --- trusted documents --------------------------------------------------------------------------


async def register_documents(
    uow_factory: UnitOfWorkFactory, documents: Sequence[TrustedDocument]
) -> int:
    """Register, all at once, the documents of a manifest not registered yet (the caller has
    checked them against the schema); how many were new."""

    async def work(uow: UnitOfWork) -> int:
        return await uow.trusted_documents.add(documents, utcnow())

    return await _run(uow_factory, work)
