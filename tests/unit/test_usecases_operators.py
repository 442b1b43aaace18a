"""The operators' use cases (the command line's), on the in-memory unit of work."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from app.auth import keys
from app.auth.passwords import Passwords
from app.config import AuthSettings
from app.domain.auth import AccessTokenRecord, RefreshToken, same_secret
from app.domain.documents import TrustedDocument
from app.domain.models import Role
from app.usecases import operators
from app.usecases.operators import OperatorError
from tests.unit.fakes import FakeDatabase
from tests.unit.usecase_support import T0, add_user


@pytest.fixture(scope="module")
def passwords() -> Iterator[Passwords]:
    pool = Passwords(AuthSettings(argon2_time_cost=1, argon2_memory_kib=64, argon2_parallelism=1))
    yield pool
    pool.close()


async def test_a_confidential_client_gets_a_secret_only_its_hash_is_stored() -> None:
    db = FakeDatabase()
    made = await operators.create_client(
        db, name=" partner ", grant_types="client_credentials", scopes="orders:read,users:read"
    )
    assert made.secret is not None
    stored = db.store.clients[made.client.client_id]
    assert stored.name == "partner"
    assert stored.scopes == frozenset({"orders:read", "users:read"})
    assert same_secret(made.secret, stored.client_secret_hash)
    assert made.secret not in str(stored)
    assert await operators.find_client_by_name(db, "partner") == stored
    assert await operators.list_clients(db) == [stored]


@pytest.mark.parametrize(
    ("grant_types", "scopes", "uris", "public", "says"),
    [
        ("client_credentials", "admin", [], False, "may not hold: admin"),
        ("client_credentials", "nope", [], False, "unknown scope"),
        ("password", "orders:read", [], False, "unsupported grant type"),
        ("client_credentials", "orders:read", [], True, "public client"),
        ("refresh_token", "orders:read", [], False, "needs the authorization_code"),
        ("authorization_code", "orders:read", [], False, "--redirect-uri"),
        ("authorization_code", "orders:read", ["http://example.com/cb"], True, "https"),
        ("authorization_code", "orders:read", ["https://e.com/cb#x"], True, "fragment"),
    ],
)
async def test_a_registration_outside_the_rules_is_refused(
    grant_types: str, scopes: str, uris: list[str], public: bool, says: str
) -> None:
    db = FakeDatabase()
    with pytest.raises(OperatorError, match=says):
        await operators.create_client(
            db,
            name="c",
            grant_types=grant_types,
            scopes=scopes,
            redirect_uris=uris,
            public=public,
        )
    assert db.store.clients == {}


async def test_revoking_a_client_revokes_its_tokens_and_refresh_tokens() -> None:
    db = FakeDatabase()
    made = await operators.create_client(
        db,
        name="app",
        grant_types="authorization_code,refresh_token",
        scopes="orders:read",
        redirect_uris=["https://app.example/cb"],
    )
    client_id = made.client.client_id
    user_id = uuid.uuid4()
    db.store.tokens["j1"] = AccessTokenRecord(
        "j1", client_id, user_id, "orders:read", T0, T0 + timedelta(days=999)
    )
    db.store.refresh_tokens["r1"] = RefreshToken(
        "r1", uuid.uuid4(), client_id, user_id, "orders:read", T0, T0 + timedelta(days=999)
    )
    await operators.revoke_client(db, client_id)
    assert db.store.clients[client_id].revoked_at is not None
    assert db.store.tokens["j1"].revoked_at is not None
    assert db.store.refresh_tokens["r1"].revoked_at is not None
    with pytest.raises(OperatorError, match="no active client"):
        await operators.revoke_client(db, client_id)
    with pytest.raises(OperatorError, match="no active confidential client"):
        await operators.rotate_client_secret(db, client_id)


async def test_rotating_a_secret_replaces_the_stored_hash() -> None:
    db = FakeDatabase()
    made = await operators.create_client(
        db, name="p", grant_types="client_credentials", scopes="orders:read"
    )
    assert made.secret is not None
    secret = await operators.rotate_client_secret(db, made.client.client_id)
    stored = db.store.clients[made.client.client_id].client_secret_hash
    assert same_secret(secret, stored)
    assert not same_secret(made.secret, stored)


async def test_an_operator_creates_users_and_records_their_registration(
    passwords: Passwords,
) -> None:
    db = FakeDatabase()
    user = await operators.create_user(
        db, passwords, email=" Root@Example.com", password="Sturdy-pass-1", admin=True
    )
    assert db.store.users[user.id].role is Role.ADMIN
    assert db.store.profiles[user.id].display_name == "root"
    assert [e.type for e in db.committed[0]] == ["UserRegistered"]
    with pytest.raises(OperatorError, match="already exists"):
        await operators.create_user(db, passwords, email="root@example.com", password="Pw-1-abcdef")
    with pytest.raises(OperatorError, match="not an email"):
        await operators.create_user(db, passwords, email="root", password="Sturdy-pass-1")
    assert len(db.store.users) == 1


async def test_disabling_a_user_revokes_every_credential_and_records_each_change() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "u@example.com")
    for name in ("a", "b"):
        await operators.create_api_key(db, email=user.email, name=name, scopes="orders:read")
    db.store.tokens["j"] = AccessTokenRecord(
        "j", "c", user.id, "orders:read", T0, T0 + timedelta(days=999)
    )
    db.store.refresh_tokens["r"] = RefreshToken(
        "r", uuid.uuid4(), "c", user.id, "orders:read", T0, T0 + timedelta(days=999)
    )
    done = await operators.disable_user(db, "U@example.com")
    assert (done.tokens, done.keys) == (2, 2)
    assert db.store.users[user.id].is_disabled
    assert all(k.revoked_at is not None for k, _ in db.store.api_keys.values())
    assert [e.type for e in db.committed[-1]] == ["UserDisabled", "ApiKeyRevoked", "ApiKeyRevoked"]
    with pytest.raises(OperatorError, match="already disabled"):
        await operators.disable_user(db, user.email)
    with pytest.raises(OperatorError, match="no user"):
        await operators.disable_user(db, "nobody@example.com")


async def test_an_operators_key_is_the_users_own_use_case() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "u@example.com")
    key, plaintext = await operators.create_api_key(
        db, email=user.email, name="k", scopes="orders:read, products:read", rate_per_minute=5
    )
    assert plaintext.startswith("sk_live_")
    assert (key.user_id, key.rate_per_minute) == (user.id, 5)
    assert [e.type for e in db.committed[0]] == ["ApiKeyCreated"]
    assert await operators.list_api_keys(db, user.email) == [key]
    with pytest.raises(OperatorError, match="may not hold admin"):
        await operators.create_api_key(db, email=user.email, name="k", scopes="admin")
    with pytest.raises(OperatorError, match="not a scope"):
        await operators.create_api_key(db, email=user.email, name="k", scopes="nope")
    with pytest.raises(OperatorError, match="at least 1 request"):
        await operators.create_api_key(
            db, email=user.email, name="k", scopes="orders:read", rate_per_minute=0
        )
    assert len(db.store.api_keys) == 1


async def test_an_operator_revokes_any_key_and_the_revocation_is_recorded() -> None:
    db = FakeDatabase()
    user = add_user(db.store, "u@example.com")
    key, _ = await operators.create_api_key(db, email=user.email, name="k", scopes="orders:read")
    revoked = await operators.revoke_api_key(db, str(key.id))
    assert revoked.revoked_at is not None
    assert [e.type for e in db.committed[-1]] == ["ApiKeyRevoked"]
    assert db.committed[-1][0].stream_id == key.id
    with pytest.raises(OperatorError, match="no active API key"):
        await operators.revoke_api_key(db, str(key.id))
    with pytest.raises(OperatorError, match="not an API key ID"):
        await operators.revoke_api_key(db, "xyz")
    with pytest.raises(OperatorError, match="no active API key"):
        await operators.revoke_api_key(db, str(uuid.uuid4()))


async def test_rotating_the_signing_key_stores_a_sealed_key_and_drops_expired_ones() -> None:
    db = FakeDatabase()
    configured = keys.generate()
    sealer = keys.KeySealer.derived_from(configured)
    old, newer = keys.generate(), keys.generate()
    db.store.signing_keys[old.kid] = keys.stored_key(old, T0, sealer)
    db.store.signing_keys[newer.kid] = keys.stored_key(newer, T0 + timedelta(days=1), sealer)
    rotation = await operators.rotate_signing_key(
        db, configured, sealer=sealer, token_lifetime_seconds=60, activate_in=30
    )
    assert rotation.dropped == [old.kid], "superseded long ago: its tokens have all expired"
    assert list(db.store.signing_keys) == [newer.kid, rotation.kid]
    stored = db.store.signing_keys[rotation.kid]
    assert "PRIVATE KEY" not in stored.private_pem
    assert stored.activates_at == rotation.activates_at
    with pytest.raises(OperatorError, match="negative"):
        await operators.rotate_signing_key(
            db, configured, sealer=sealer, token_lifetime_seconds=60, activate_in=-1
        )


async def test_registering_a_manifest_adds_only_the_documents_not_registered_yet() -> None:
    db = FakeDatabase()
    first = TrustedDocument("q1", "{ products { totalCount } }", "Count")
    second = TrustedDocument("q2", "{ me { id } }")
    assert await operators.register_documents(db, [first]) == 1
    assert await operators.register_documents(db, [first, second]) == 1
    assert {key: stored[0] for key, stored in db.store.trusted_documents.items()} == {
        "q1": first,
        "q2": second,
    }
    assert db.store.events == [], "registering documents is no domain event"
