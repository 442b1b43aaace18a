"""Signing up, and a user's own API keys."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from uuid import UUID

from app.auth import api_keys, policy
from app.auth.passwords import Passwords
from app.auth.principal import Principal
from app.auth.ratelimit import RateLimiter
from app.auth.scopes import ALL_SCOPES
from app.domain.accounts import (
    MAX_KEYS_PER_USER,
    api_key_created,
    api_key_revoked,
    check_key_rate,
    check_key_request,
    check_registration,
    too_many_keys,
)
from app.domain.auth import ApiKey
from app.domain.errors import Code, DomainError
from app.domain.events import user_registered
from app.domain.models import Profile, Role, User
from app.errors import NotFound, RateLimited
from app.unit_of_work import UnitOfWork, UnitOfWorkFactory
from app.usecases.runner import Outcome, run, utcnow


@dataclass(frozen=True, slots=True)
class RegisterUser:
    email: str
    password: str
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True, slots=True)
class SignUps:
    """What sign-up needs besides the database: the password pool and a per-address limit."""

    passwords: Passwords
    limiter: RateLimiter
    per_address_per_minute: int


async def register_user(
    uow_factory: UnitOfWorkFactory, sign_ups: SignUps, address: str, command: RegisterUser
) -> Outcome[User]:
    """Create a customer account with its profile and record `UserRegistered`.

    The address's bucket is taken first, so a flood of sign-ups from one peer costs neither
    Argon2 work nor a transaction. The password is hashed on the password pool before the unit of
    work begins, so no transaction (on SQLite, the write lock) is held while it runs; a taken
    email is found by the insert itself, which also settles two sign-ups racing for one address.
    """
    limit = sign_ups.per_address_per_minute
    wait = await sign_ups.limiter.acquire(f"sign-ups:address:{address}", limit, limit)
    if wait:
        raise RateLimited(f"Too many sign-ups from this address; retry after {wait} s", wait)
    try:
        registration = check_registration(
            email=command.email,
            password=command.password,
            first_name=command.first_name,
            last_name=command.last_name,
        )
    except DomainError as error:
        return Outcome(problems=error.problems)
    user = await sign_ups.passwords.new_user(
        email=registration.email, password=command.password, role=Role.CUSTOMER
    )
    profile = Profile(
        user_id=user.id,
        first_name=registration.first_name,
        last_name=registration.last_name,
        display_name=registration.display_name,
    )

    async def work(uow: UnitOfWork) -> User:
        if not await uow.users.add(user, profile):
            raise DomainError.of(
                Code.EMAIL_TAKEN, "An account with this email already exists", "email"
            )
        await uow.record(
            user_registered(user.id, user.email, profile.display_name, user.created_at)
        )
        return user

    return await run(uow_factory, work)


@dataclass(frozen=True, slots=True)
class CreateApiKey:
    name: str
    scopes: tuple[str, ...]
    # Operators only: the key's owner (else the signed-in user) and its own rate limit.
    owner_email: str | None = None
    rate_per_minute: int | None = None
    # The owner's unrevoked keys may not exceed this (MAX_API_KEYS_PER_USER).
    max_keys: int = MAX_KEYS_PER_USER


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: ApiKey
    secret: str  # shown once, never stored


async def create_api_key(
    uow_factory: UnitOfWorkFactory, principal: Principal, command: CreateApiKey, environment: str
) -> Outcome[NewApiKey]:
    """A key for the signed-in user (or, for an operator, for the user named by email).

    It holds no scope beyond what the caller holds now and the owner's role allows: a key never
    widens the credential that created it.
    """
    self_service = command.owner_email is None and command.rate_per_minute is None
    signed_in = policy.require_signed_in(principal) if self_service else None
    if not self_service:
        policy.require_operator(principal)
    try:
        name, scopes = check_key_request(command.name, command.scopes, ALL_SCOPES)
        rate = check_key_rate(command.rate_per_minute)
    except DomainError as error:
        return Outcome(problems=error.problems)
    policy.require_scopes_held(principal, scopes)

    async def work(uow: UnitOfWork) -> NewApiKey:
        if signed_in is not None:
            owner = await uow.profiles.get_user(signed_in)
        else:
            assert command.owner_email is not None
            email = command.owner_email.strip().lower()
            owner = await uow.users.get_by_email(email)
            if owner is None:
                raise NotFound(f"No user has the email {email}")
        owner = policy.require_key_owner_may_hold(owner, scopes)
        if await uow.api_keys.count_active(owner.id) >= command.max_keys:
            raise too_many_keys(command.max_keys)
        material = api_keys.generate(environment)
        now = utcnow()
        key = ApiKey(
            id=uuid.uuid4(),
            user_id=owner.id,
            name=name,
            last_four=material.last_four,
            environment=environment,
            scopes=scopes,
            rate_per_minute=rate,
            use_count=0,
            created_at=now,
        )
        await uow.api_keys.add(key, material.key_hash)
        await uow.record(api_key_created(key, now))
        return NewApiKey(key, material.plaintext)

    return await run(uow_factory, work)


async def revoke_api_key(
    uow_factory: UnitOfWorkFactory, principal: Principal, key_id: UUID
) -> Outcome[ApiKey]:
    """Revoke one of the caller's keys (an operator: anyone's). Another user's key looks like a
    missing one.

    Every request with an API key looks the key up in the database, so it is refused from the
    next request on, in every process. Revoking a revoked key again changes nothing."""
    policy.require_authenticated(principal)

    async def work(uow: UnitOfWork) -> ApiKey:
        key = await uow.api_keys.get(key_id)
        if key is None or not policy.may_manage_key(principal, key):
            raise NotFound("No API key has this ID")
        # Revoked before, or since the read: the revocation that won recorded the event.
        return await revoke_key(uow, key) or await uow.api_keys.get(key.id) or key

    return await run(uow_factory, work)


async def revoke_key(uow: UnitOfWork, key: ApiKey) -> ApiKey | None:
    """Revoke the key and record `ApiKeyRevoked`; None if it was revoked already."""
    now = utcnow()
    if key.revoked_at is not None or not await uow.api_keys.revoke(key.id, now):
        return None
    await uow.record(api_key_revoked(key, now))
    return dataclasses.replace(key, revoked_at=now)
