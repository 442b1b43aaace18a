"""The OAuth adapter's writes, on the in-memory unit of work."""

from __future__ import annotations

import uuid
from datetime import timedelta

from app.auth import grants
from app.domain.auth import AccessTokenRecord, AuthorizationCode, RefreshToken
from tests.unit.fakes import FakeDatabase
from tests.unit.usecase_support import T0

LATER = T0 + timedelta(days=999)


def _code(code_hash: str = "h") -> AuthorizationCode:
    return AuthorizationCode(
        code_hash, "c", uuid.uuid4(), "https://a/cb", "orders:read", "x", "S256", T0, LATER
    )


def _token(jti: str, family: uuid.UUID | None = None) -> AccessTokenRecord:
    return AccessTokenRecord(jti, "c", None, "orders:read", T0, LATER, family_id=family)


def _refresh(token_hash: str, family: uuid.UUID) -> RefreshToken:
    return RefreshToken(token_hash, family, "c", uuid.uuid4(), "orders:read", T0, LATER)


async def test_a_code_is_stored_by_its_hash() -> None:
    db = FakeDatabase()
    await grants.issue_code(db, _code("hash-1"))
    assert list(db.store.codes) == ["hash-1"]


async def test_a_code_exchange_stores_its_tokens_and_uses_the_code_once() -> None:
    db = FakeDatabase()
    await grants.issue_code(db, _code("h"))
    family = uuid.uuid4()
    writes = grants.TokenWrites(
        issued=[_token("j1", family)],
        new_refresh=[_refresh("r1", family)],
        consume_code="h",
        family_id=family,
    )
    assert await grants.store_tokens(db, writes)
    assert db.store.codes["h"].used_at is not None
    assert db.store.codes["h"].family_id == family
    assert set(db.store.tokens) == {"j1"}
    assert set(db.store.refresh_tokens) == {"r1"}
    replay = grants.TokenWrites(issued=[_token("j2")], consume_code="h", family_id=uuid.uuid4())
    assert not await grants.store_tokens(db, replay)
    assert set(db.store.tokens) == {"j1"}, "a lost exchange stores nothing"


async def test_a_refresh_token_rotates_once() -> None:
    db = FakeDatabase()
    family = uuid.uuid4()
    db.store.refresh_tokens["r1"] = _refresh("r1", family)
    first = grants.TokenWrites(
        issued=[_token("j1", family)], new_refresh=[_refresh("r2", family)], rotate_refresh="r1"
    )
    assert await grants.store_tokens(db, first)
    assert db.store.refresh_tokens["r1"].used_at is not None
    second = grants.TokenWrites(issued=[_token("j3", family)], rotate_refresh="r1")
    assert not await grants.store_tokens(db, second)
    assert "j3" not in db.store.tokens


async def test_revocations_and_families() -> None:
    db = FakeDatabase()
    family = uuid.uuid4()
    db.store.tokens = {"a": _token("a", family), "b": _token("b"), "c": _token("c")}
    db.store.refresh_tokens["r"] = _refresh("r", family)
    assert await grants.store_tokens(db, grants.TokenWrites(revoked_jtis=["b"]))
    assert db.store.tokens["b"].revoked_at is not None
    assert db.store.tokens["c"].revoked_at is None
    await grants.revoke_family(db, family)
    assert db.store.tokens["a"].revoked_at is not None
    assert db.store.refresh_tokens["r"].revoked_at is not None
    assert db.store.tokens["c"].revoked_at is None
