"""Sign-up and API keys (a user's own and an operator's), on the in-memory unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from app.auth.passwords import Passwords
from app.auth.principal import ANONYMOUS, OPERATOR
from app.auth.ratelimit import MemoryRateLimiter
from app.config import AuthSettings
from app.domain.models import Role
from app.errors import Forbidden, NotFound, RateLimited, Unauthenticated
from app.usecases.accounts import (
    CreateApiKey,
    RegisterUser,
    SignUps,
    create_api_key,
    register_user,
    revoke_api_key,
)
from tests.unit.fakes import FakeDatabase
from tests.unit.usecase_support import ADMIN, add_user, customer, disabled


@pytest.fixture(scope="module")
def passwords() -> Iterator[Passwords]:
    pool = Passwords(AuthSettings(argon2_time_cost=1, argon2_memory_kib=64, argon2_parallelism=1))
    yield pool
    pool.close()


def _sign_ups(passwords: Passwords, per_minute: int = 10) -> SignUps:
    return SignUps(passwords, MemoryRateLimiter(), per_minute)


async def test_signing_up_creates_a_customer_with_a_profile(passwords: Passwords) -> None:
    db = FakeDatabase()
    command = RegisterUser("  Ada@Example.com ", "Sturdy-pass-1", first_name="Ada")
    outcome = await register_user(db, _sign_ups(passwords), "10.0.0.1", command)
    assert outcome.value is not None
    user = db.store.users[outcome.value.id]
    assert (user.email, user.role) == ("ada@example.com", Role.CUSTOMER)
    assert db.store.profiles[user.id].first_name == "Ada"
    assert [e.type for e in db.committed[0]] == ["UserRegistered"]
    assert db.committed[0][0].payload["email"] == "ada@example.com"


async def test_a_taken_email_or_a_weak_password_is_a_problem(passwords: Passwords) -> None:
    db = FakeDatabase()
    add_user(db.store, "ada@example.com")
    taken = await register_user(
        db, _sign_ups(passwords), "a", RegisterUser("ada@example.com", "Sturdy-pass-1")
    )
    assert [(p.code, p.field) for p in taken.problems] == [("EMAIL_TAKEN", ("email",))]
    weak = await register_user(db, _sign_ups(passwords), "a", RegisterUser("b@example.com", "x"))
    assert [p.code for p in weak.problems] == ["WEAK_PASSWORD"]
    assert len(db.store.users) == 1
    assert db.store.events == []


async def test_sign_ups_are_limited_per_address(passwords: Passwords) -> None:
    db = FakeDatabase()
    sign_ups = _sign_ups(passwords, per_minute=1)
    first = await register_user(db, sign_ups, "10.0.0.9", RegisterUser("a@example.com", "Pw-1x"))
    assert first.problems  # a weak password still takes the address's turn
    with pytest.raises(RateLimited):
        await register_user(db, sign_ups, "10.0.0.9", RegisterUser("b@example.com", "Pw-1x"))
    other = await register_user(
        db, sign_ups, "10.0.0.10", RegisterUser("c@example.com", "Sturdy-pass-1")
    )
    assert other.value is not None


async def test_a_user_creates_a_key_within_their_credential_and_role() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "a@example.com")
    made = await create_api_key(
        db, customer(user), CreateApiKey(" laptop ", ("orders:read",)), "test"
    )
    assert made.value is not None
    assert made.value.secret.startswith("sk_test_")
    key, key_hash = db.store.api_keys[made.value.key.id]
    assert (key.name, key.scopes, key.user_id) == ("laptop", frozenset({"orders:read"}), user.id)
    assert made.value.secret not in key_hash
    assert [e.type for e in db.committed[0]] == ["ApiKeyCreated"]
    assert made.value.secret not in str(db.committed[0][0].payload)
    narrow = customer(user, frozenset({"orders:read"}))
    with pytest.raises(Forbidden):  # wider than the credential creating it
        await create_api_key(db, narrow, CreateApiKey("k", ("orders:write",)), "test")
    with pytest.raises(Forbidden):  # beyond what a customer may hold, even for an admin token
        await create_api_key(
            db, customer(user, frozenset({"admin"})), CreateApiKey("k", ("admin",)), "test"
        )
    assert len(db.store.api_keys) == 1


async def test_a_bad_key_request_is_a_problem_and_anonymous_is_refused() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "a@example.com")
    bad = await create_api_key(db, customer(user), CreateApiKey("", ("nope",)), "test")
    assert [p.field for p in bad.problems] == [("name",), ("scopes", "0")]
    with pytest.raises(Unauthenticated):
        await create_api_key(db, ANONYMOUS, CreateApiKey("k", ("products:read",)), "test")
    disabled(db.store, user)
    with pytest.raises(Forbidden):
        await create_api_key(db, customer(user), CreateApiKey("k", ("orders:read",)), "test")
    assert db.store.api_keys == {}


async def test_only_an_operator_picks_a_keys_owner_or_rate() -> None:
    db = FakeDatabase()
    owner = add_user(db.store, "owner@example.com")
    for_owner = CreateApiKey("k", ("orders:read",), owner_email="owner@example.com")
    with pytest.raises(Forbidden):
        await create_api_key(db, ADMIN, for_owner, "test")  # an admin user is not an operator
    made = await create_api_key(db, OPERATOR, for_owner, "test")
    assert made.value is not None
    assert made.value.key.user_id == owner.id
    rated = await create_api_key(
        db, OPERATOR, CreateApiKey("k", ("orders:read",), "owner@example.com", 0), "test"
    )
    assert [p.code for p in rated.problems] == ["BAD_USER_INPUT"]
    with pytest.raises(NotFound):
        await create_api_key(
            db, OPERATOR, CreateApiKey("k", ("orders:read",), "nobody@example.com"), "test"
        )


async def test_revoking_a_key_records_it_once_and_hides_other_users_keys() -> None:
    db = FakeDatabase()
    owner, other = add_user(db.store, "o@example.com"), add_user(db.store, "x@example.com")
    made = await create_api_key(db, customer(owner), CreateApiKey("k", ("orders:read",)), "t")
    assert made.value is not None
    key_id = made.value.key.id
    with pytest.raises(NotFound):
        await revoke_api_key(db, customer(other), key_id)
    with pytest.raises(NotFound):
        await revoke_api_key(db, customer(owner), uuid.uuid4())
    revoked = await revoke_api_key(db, customer(owner), key_id)
    assert revoked.value is not None
    assert revoked.value.revoked_at is not None
    again = await revoke_api_key(db, customer(owner), key_id)
    assert again.value is not None
    assert again.value.revoked_at == revoked.value.revoked_at
    assert [e.type for e in db.store.events] == ["ApiKeyCreated", "ApiKeyRevoked"]
