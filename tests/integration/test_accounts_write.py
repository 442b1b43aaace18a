"""registerUser, createApiKey, revokeApiKey and apiKeys through the schema, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from app.auth.passwords import Passwords
from app.auth.principal import ANONYMOUS, Principal, PrincipalKind
from app.auth.ratelimit import MemoryRateLimiter
from app.db import tables
from app.db.engine import Database, track_statements
from app.email import InMemoryEmailSender
from app.main import graphql_context
from app.messaging import handlers
from app.messaging.bus import EventBus, logging_middleware
from app.messaging.dispatcher import Dispatcher
from app.usecases.accounts import SignUps
from resolvers.global_id import to_global_id
from resolvers.schema import schema
from tests.auth_support import auth_settings
from tests.conftest import MakeDb
from tests.graphql import Result, execute
from tests.integration.helpers import CUSTOMER_SCOPES, count_rows, new_shop

REGISTER = """mutation($input: RegisterUserInput!) {
  registerUser(input: $input) {
    user { id profile { firstName lastName displayName } }
    errors { field message code }
  }
}"""
CREATE_KEY = """mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    apiKey { id name scopes last4 createdAt lastUsedAt usageCount revokedAt }
    key
    errors { field code }
  }
}"""
REVOKE_KEY = """mutation($id: ID!) {
  revokeApiKey(id: $id) { apiKey { id revokedAt } errors { code } } }"""
MY_KEYS = "{ apiKeys { id name scopes last4 revokedAt } }"


@pytest.fixture
def passwords() -> Iterator[Passwords]:
    pool = Passwords(auth_settings())
    yield pool
    pool.close()


async def register(
    db: Database, sign_ups: SignUps, address: str = "192.0.2.1", **fields: Any
) -> Result:
    from app.http.errors import format_error

    fields.setdefault("password", "Sturdy-pass-1")
    context = graphql_context(db, client_address=address, sign_ups=sign_ups)
    with track_statements() as stats:
        result = await schema.execute(
            REGISTER, variable_values={"input": fields}, context_value=context
        )
    errors = [format_error(e, "test", debug=True) for e in result.errors or []]
    return Result(result.data, errors, stats)


def sign_ups_of(passwords: Passwords, per_minute: int = 100) -> SignUps:
    return SignUps(passwords, MemoryRateLimiter(), per_minute)


async def test_registering_creates_user_profile_event_and_a_welcome_email(
    backend: str, make_db: MakeDb, passwords: Passwords
) -> None:
    shop = await new_shop(make_db, backend, "register")
    sender = InMemoryEmailSender()
    bus = EventBus([logging_middleware])
    handlers.register(bus, shop.db, sender)
    dispatcher = Dispatcher(shop.db, bus)
    result = await register(
        shop.db,
        sign_ups_of(passwords),
        email=" Grace@Example.com",
        firstName="Grace",
        lastName="Hopper",
    )
    payload = result.ok()["registerUser"]
    assert payload["errors"] == []
    assert payload["user"]["profile"] == {
        "firstName": "Grace",
        "lastName": "Hopper",
        "displayName": "Grace Hopper",
    }
    async with shop.db.read() as conn:
        row = (
            await conn.execute(
                select(tables.users).where(tables.users.c.email == "grace@example.com")
            )
        ).one()
        events = (
            await conn.execute(select(tables.events).where(tables.events.c.stream_id == row.id))
        ).all()
    assert payload["user"]["id"] == to_global_id("User", row.id)
    assert row.role == "customer"
    assert row.password_hash.startswith("$argon2id$"), "stored as Argon2id, never in clear"
    assert await passwords.verify(row.password_hash, "Sturdy-pass-1")
    assert [(e.type, e.version) for e in events] == [("UserRegistered", 1)]
    assert await dispatcher.drain() >= 1
    assert [(m.to, m.subject) for m in sender.sent] == [
        ("grace@example.com", "Welcome to ordergraph")
    ]
    assert "Grace Hopper" in sender.sent[0].body


async def test_rule_violations_are_payload_errors_with_fields(
    backend: str, make_db: MakeDb, passwords: Passwords
) -> None:
    shop = await new_shop(make_db, backend, "register_rules")
    sign_ups = sign_ups_of(passwords)
    users_before = await count_rows(shop.db, "users")
    bad = (await register(shop.db, sign_ups, email="nope", password="weak")).ok()
    assert bad["registerUser"]["user"] is None
    assert [(e["code"], e["field"]) for e in bad["registerUser"]["errors"]] == [
        ("INVALID_EMAIL", ["email"]),
        ("WEAK_PASSWORD", ["password"]),
    ]
    first = (await register(shop.db, sign_ups, email="twice@example.com")).ok()
    assert first["registerUser"]["errors"] == []
    again = (await register(shop.db, sign_ups, email="TWICE@example.com ")).ok()
    assert [(e["code"], e["field"]) for e in again["registerUser"]["errors"]] == [
        ("EMAIL_TAKEN", ["email"])
    ]
    assert await count_rows(shop.db, "users") == users_before + 1


async def test_racing_sign_ups_for_one_email_make_one_account(
    backend: str, make_db: MakeDb, passwords: Passwords
) -> None:
    shop = await new_shop(make_db, backend, "register_race")
    sign_ups = sign_ups_of(passwords)
    results = await asyncio.gather(
        *(register(shop.db, sign_ups, email="race@example.com") for _ in range(5))
    )
    codes = sorted(e["code"] for r in results for e in r.ok()["registerUser"]["errors"])
    assert codes == ["EMAIL_TAKEN"] * 4
    assert await count_rows(shop.db, "users", email="race@example.com") == 1
    async with shop.db.read() as conn:
        stmt = select(tables.events).where(tables.events.c.type == "UserRegistered")
        assert len((await conn.execute(stmt)).all()) == 1


async def test_sign_ups_are_limited_per_address(
    backend: str, make_db: MakeDb, passwords: Passwords
) -> None:
    shop = await new_shop(make_db, backend, "register_limit")
    sign_ups = sign_ups_of(passwords, per_minute=2)
    for n in range(2):
        ok = await register(shop.db, sign_ups, "198.51.100.7", email=f"l{n}@example.com")
        assert ok.ok()["registerUser"]["errors"] == []
    refused = await register(shop.db, sign_ups, "198.51.100.7", email="l2@example.com")
    assert refused.codes == ["RATE_LIMITED"]
    assert refused.errors[0]["extensions"]["retryAfter"] >= 1
    assert await count_rows(shop.db, "users", email="l2@example.com") == 0
    other = await register(shop.db, sign_ups, "198.51.100.8", email="l2@example.com")
    assert other.ok()["registerUser"]["errors"] == [], "another address has its own bucket"


async def test_a_user_creates_lists_and_revokes_their_keys(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "keys")
    owner, other = shop.customers[0], shop.customers[1]
    variables = {"input": {"name": " ci ", "scopes": ["orders:read", "orders:write"]}}
    created = (await execute(shop.db, CREATE_KEY, variables, principal=owner)).ok()
    payload = created["createApiKey"]
    assert payload["errors"] == []
    key, api_key = payload["key"], payload["apiKey"]
    assert key.startswith("sk_live_")
    assert key.endswith(api_key["last4"])
    assert api_key["name"] == "ci"
    assert api_key["scopes"] == ["orders:read", "orders:write"]
    assert (api_key["usageCount"], api_key["lastUsedAt"], api_key["revokedAt"]) == (0, None, None)
    async with shop.db.read() as conn:
        stored = (await conn.execute(select(tables.api_keys))).one()
    assert stored.key_hash != key
    assert key not in str(tuple(stored))

    listed = (await execute(shop.db, MY_KEYS, principal=owner)).ok()["apiKeys"]
    assert [k["id"] for k in listed] == [api_key["id"]]
    assert "key" not in listed[0]
    assert (await execute(shop.db, MY_KEYS, principal=other)).ok()["apiKeys"] == []
    node = "query($id: ID!) { node(id: $id) { id ... on ApiKey { name } } }"
    mine = await execute(shop.db, node, {"id": api_key["id"]}, principal=owner)
    assert mine.ok()["node"] == {"id": api_key["id"], "name": "ci"}
    theirs = await execute(shop.db, node, {"id": api_key["id"]}, principal=other)
    assert theirs.codes == ["NOT_FOUND"]

    stolen = await execute(shop.db, REVOKE_KEY, {"id": api_key["id"]}, principal=other)
    assert stolen.codes == ["NOT_FOUND"], "another user's key does not exist for them"
    revoked = (await execute(shop.db, REVOKE_KEY, {"id": api_key["id"]}, principal=owner)).ok()
    assert revoked["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    again = (await execute(shop.db, REVOKE_KEY, {"id": api_key["id"]}, principal=owner)).ok()
    assert (
        again["revokeApiKey"]["apiKey"]["revokedAt"]
        == revoked["revokeApiKey"]["apiKey"]["revokedAt"]
    )
    async with shop.db.read() as conn:
        stmt = select(tables.events.c.type, tables.events.c.version, tables.events.c.payload)
        events = (await conn.execute(stmt.order_by(tables.events.c.sequence))).all()
    key_events = [(e.type, e.version) for e in events if e.type.startswith("ApiKey")]
    assert key_events == [("ApiKeyCreated", 1), ("ApiKeyRevoked", 2)]
    assert all(key not in str(e.payload) for e in events)


async def test_keys_never_exceed_the_creating_credential(backend: str, make_db: MakeDb) -> None:
    shop = await new_shop(make_db, backend, "keys_scopes")
    reader = Principal(
        PrincipalKind.CUSTOMER, user_id=shop.customers[0].user_id, scopes=frozenset({"orders:read"})
    )

    async def create(principal: Principal, *scopes: str, name: str = "k") -> Result:
        variables = {"input": {"name": name, "scopes": list(scopes)}}
        return await execute(shop.db, CREATE_KEY, variables, principal=principal)

    assert (await create(reader, "orders:write")).codes == ["FORBIDDEN"]
    assert (await create(shop.customers[0], "admin")).codes == ["FORBIDDEN"]
    bad = (await create(reader, "orders:read", "everything", name="")).ok()["createApiKey"]
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [
        ("BAD_USER_INPUT", ["name"]),
        ("BAD_USER_INPUT", ["scopes", "1"]),
    ]
    assert (await create(ANONYMOUS, "orders:read")).codes == ["UNAUTHENTICATED"]
    client = Principal(PrincipalKind.CLIENT, client_id="c", scopes=CUSTOMER_SCOPES)
    assert (await create(client, "orders:read")).codes == ["FORBIDDEN"]
    assert await count_rows(shop.db, "api_keys") == 0
    assert shop.customers[0].user_id is not None
    wrong_type = to_global_id("User", shop.customers[0].user_id)
    revoke = await execute(shop.db, REVOKE_KEY, {"id": wrong_type}, principal=shop.customers[0])
    assert revoke.codes == ["BAD_USER_INPUT"]
