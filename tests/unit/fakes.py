"""An in-memory unit of work for the use cases' unit tests (cosmicpython's FakeUnitOfWork).

The repositories keep the SQL ones' promises that use cases rely on: a taken email or SKU is
refused, stock never goes below zero or above a ceiling, a stream version is taken once, a code
or refresh token is consumed once. A unit of work that fails leaves the store as it found it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from app.domain.auth import (
    AccessTokenRecord,
    ApiKey,
    AuthorizationCode,
    OAuthClient,
    RefreshToken,
    StoredSigningKey,
)
from app.domain.documents import TrustedDocument
from app.domain.events import Event
from app.domain.models import Order, OrderItem, OrderStatus, Product, Profile, User
from app.domain.orders import IdempotencyRecord
from app.domain.products import StockMove
from app.errors import ConcurrencyConflict
from app.unit_of_work import AfterCommit, Repositories, UnitOfWork


@dataclass
class Store:
    """Everything the fake database holds."""

    products: dict[UUID, Product] = field(default_factory=dict)
    orders: dict[UUID, Order] = field(default_factory=dict)
    items: dict[UUID, list[OrderItem]] = field(default_factory=dict)
    users: dict[UUID, User] = field(default_factory=dict)
    profiles: dict[UUID, Profile] = field(default_factory=dict)
    api_keys: dict[UUID, tuple[ApiKey, str]] = field(default_factory=dict)
    idempotency: dict[tuple[UUID, str], IdempotencyRecord] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    tokens: dict[str, AccessTokenRecord] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    signing_keys: dict[str, StoredSigningKey] = field(default_factory=dict)
    trusted_documents: dict[str, tuple[TrustedDocument, datetime]] = field(default_factory=dict)

    def events_of(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]


class _Products:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def get_many(self, ids: Sequence[UUID]) -> dict[UUID, Product]:
        return {i: self._s.products[i] for i in ids if i in self._s.products}

    async def add(self, product: Product) -> bool:
        if any(p.sku == product.sku for p in self._s.products.values()):
            return False
        self._s.products[product.id] = product
        return True

    async def save(self, product: Product, expected: Product) -> int | None:
        current = self._s.products.get(product.id)
        details = ("name", "description", "price")
        if current is None or any(getattr(current, f) != getattr(expected, f) for f in details):
            return None
        saved = dataclasses.replace(product, stock=current.stock, version=current.version + 1)
        self._s.products[product.id] = saved
        return saved.version

    async def move_stock(
        self, product_id: UUID, delta: int, now: datetime, *, ceiling: int | None = None
    ) -> StockMove | None:
        product = self._s.products.get(product_id)
        if product is None or product.stock + delta < 0:
            return None
        if ceiling is not None and product.stock + delta > ceiling:
            return None
        moved = dataclasses.replace(
            product, stock=product.stock + delta, version=product.version + 1, updated_at=now
        )
        self._s.products[product_id] = moved
        return StockMove(moved.version, moved.stock, moved.price)


class _Orders:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def get(self, order_id: UUID) -> Order | None:
        return self._s.orders.get(order_id)

    async def items(self, order_id: UUID) -> list[OrderItem]:
        return list(self._s.items.get(order_id, []))

    async def add(self, order: Order, items: Sequence[OrderItem]) -> None:
        assert order.id not in self._s.orders
        self._s.orders[order.id] = order
        self._s.items[order.id] = list(items)

    async def change_status(self, order: Order, expected: OrderStatus) -> bool:
        current = self._s.orders.get(order.id)
        if current is None or current.status is not expected:
            return False
        self._s.orders[order.id] = order
        return True


class _Profiles:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def get_user(self, user_id: UUID) -> User | None:
        return self._s.users.get(user_id)

    async def get(self, user_id: UUID) -> Profile | None:
        return self._s.profiles.get(user_id)

    async def save(self, profile: Profile, now: datetime) -> None:
        self._s.profiles[profile.user_id] = profile


class _Users:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, user: User, profile: Profile) -> bool:
        if any(u.email == user.email for u in self._s.users.values()):
            return False
        self._s.users[user.id] = user
        self._s.profiles[user.id] = profile
        return True

    async def get_by_email(self, email: str) -> User | None:
        return next((u for u in self._s.users.values() if u.email == email), None)

    async def disable(self, user_id: UUID, now: datetime) -> bool:
        user = self._s.users.get(user_id)
        if user is None or user.disabled_at is not None:
            return False
        self._s.users[user_id] = dataclasses.replace(user, disabled_at=now, updated_at=now)
        return True


class _ApiKeys:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, key: ApiKey, key_hash: str) -> None:
        self._s.api_keys[key.id] = (key, key_hash)

    async def get(self, key_id: UUID) -> ApiKey | None:
        found = self._s.api_keys.get(key_id)
        return None if found is None else found[0]

    async def list_for_user(self, user_id: UUID) -> list[ApiKey]:
        keys = [k for k, _ in self._s.api_keys.values() if k.user_id == user_id]
        return sorted(keys, key=lambda k: k.created_at)

    async def count_active(self, user_id: UUID) -> int:
        return sum(1 for k in await self.list_for_user(user_id) if k.revoked_at is None)

    async def revoke(self, key_id: UUID, now: datetime) -> bool:
        found = self._s.api_keys.get(key_id)
        if found is None or found[0].revoked_at is not None:
            return False
        self._s.api_keys[key_id] = (dataclasses.replace(found[0], revoked_at=now), found[1])
        return True


class _Idempotency:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def claim(
        self, user_id: UUID, key: str, fingerprint: str, order_id: UUID, now: datetime
    ) -> IdempotencyRecord | None:
        first = self._s.idempotency.get((user_id, key))
        if first is not None:
            return first
        self._s.idempotency[(user_id, key)] = IdempotencyRecord(fingerprint, order_id)
        return None


class _Events:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def append(self, event: Event) -> int:
        if any(
            e.stream_id == event.stream_id and e.version == event.version for e in self._s.events
        ):
            raise ConcurrencyConflict(f"{event.stream_id} already has version {event.version}")
        self._s.events.append(dataclasses.replace(event, sequence=len(self._s.events) + 1))
        return len(self._s.events)

    async def last_version(self, stream_id: UUID) -> int:
        return max((e.version for e in self._s.events if e.stream_id == stream_id), default=0)


class _Clients:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, client: OAuthClient) -> None:
        assert client.client_id not in self._s.clients
        self._s.clients[client.client_id] = client

    async def get_by_name(self, name: str) -> OAuthClient | None:
        active = [c for c in self._s.clients.values() if c.name == name and c.revoked_at is None]
        return max(active, key=lambda c: c.created_at, default=None)

    async def all(self) -> list[OAuthClient]:
        return sorted(self._s.clients.values(), key=lambda c: c.created_at)

    async def revoke(self, client_id: str, now: datetime) -> bool:
        client = self._s.clients.get(client_id)
        if client is None or client.revoked_at is not None:
            return False
        self._s.clients[client_id] = dataclasses.replace(client, revoked_at=now)
        await self.revoke_tokens(now, client_id=client_id)
        return True

    async def set_secret_hash(self, client_id: str, secret_hash: str, now: datetime) -> bool:
        client = self._s.clients.get(client_id)
        if client is None or client.revoked_at is not None or client.client_secret_hash is None:
            return False
        self._s.clients[client_id] = dataclasses.replace(client, client_secret_hash=secret_hash)
        return True

    async def add_tokens(self, records: Sequence[AccessTokenRecord]) -> None:
        for record in records:
            self._s.tokens[record.jti] = record

    async def revoke_tokens(
        self,
        now: datetime,
        *,
        jti: str | None = None,
        client_id: str | None = None,
        user_id: UUID | None = None,
        family_id: UUID | None = None,
    ) -> int:
        wanted = {"jti": jti, "client_id": client_id, "user_id": user_id, "family_id": family_id}
        chosen = {name: value for name, value in wanted.items() if value is not None}
        if not chosen:
            raise ValueError("say which tokens to revoke")
        revoked = 0
        for token in list(self._s.tokens.values()):
            if token.revoked_at is None and any(
                getattr(token, name) == value for name, value in chosen.items()
            ):
                self._s.tokens[token.jti] = dataclasses.replace(token, revoked_at=now)
                revoked += 1
        return revoked


class _Grants:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add_code(self, code: AuthorizationCode) -> None:
        self._s.codes[code.code_hash] = code

    async def consume_code(self, code_hash: str, family_id: UUID, now: datetime) -> bool:
        code = self._s.codes.get(code_hash)
        if code is None or code.used_at is not None:
            return False
        self._s.codes[code_hash] = dataclasses.replace(code, used_at=now, family_id=family_id)
        return True

    async def add_refresh_token(self, token: RefreshToken) -> None:
        self._s.refresh_tokens[token.token_hash] = token

    async def rotate_refresh_token(self, token_hash: str, now: datetime) -> bool:
        token = self._s.refresh_tokens.get(token_hash)
        if token is None or token.used_at is not None or token.revoked_at is not None:
            return False
        self._s.refresh_tokens[token_hash] = dataclasses.replace(token, used_at=now)
        return True

    async def revoke_refresh_tokens(
        self,
        now: datetime,
        *,
        family_id: UUID | None = None,
        user_id: UUID | None = None,
        client_id: str | None = None,
    ) -> int:
        wanted = {"family_id": family_id, "user_id": user_id, "client_id": client_id}
        chosen = [(name, value) for name, value in wanted.items() if value is not None]
        if len(chosen) != 1:
            raise ValueError("say which refresh tokens to revoke, one way")
        name, value = chosen[0]
        revoked = 0
        for token in list(self._s.refresh_tokens.values()):
            if token.revoked_at is None and getattr(token, name) == value:
                self._s.refresh_tokens[token.token_hash] = dataclasses.replace(
                    token, revoked_at=now
                )
                revoked += 1
        return revoked


class _SigningKeys:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def all(self) -> list[StoredSigningKey]:
        return sorted(self._s.signing_keys.values(), key=lambda k: k.activates_at)

    async def add(self, key: StoredSigningKey) -> None:
        self._s.signing_keys[key.kid] = key

    async def delete(self, kids: Sequence[str]) -> int:
        return sum(self._s.signing_keys.pop(kid, None) is not None for kid in kids)


class _TrustedDocuments:
    def __init__(self, store: Store) -> None:
        self._s = store

    async def add(self, documents: Sequence[TrustedDocument], now: datetime) -> int:
        added = 0
        for document in documents:
            if document.id not in self._s.trusted_documents:
                self._s.trusted_documents[document.id] = (document, now)
                added += 1
        return added


def fake_repositories(store: Store) -> Repositories:
    return Repositories(
        products=_Products(store),
        orders=_Orders(store),
        profiles=_Profiles(store),
        users=_Users(store),
        api_keys=_ApiKeys(store),
        idempotency=_Idempotency(store),
        events=_Events(store),
        clients=_Clients(store),
        grants=_Grants(store),
        signing_keys=_SigningKeys(store),
        trusted_documents=_TrustedDocuments(store),
    )


class FakeUnitOfWork(UnitOfWork):
    """Works on `store`; a failure puts back the copy taken when the work began."""

    def __init__(
        self,
        store: Store,
        *,
        after_commit: AfterCommit | None = None,
        repositories: Callable[[Store], Repositories] = fake_repositories,
    ) -> None:
        super().__init__(after_commit=after_commit)
        self.store = store
        self._make_repositories = repositories
        self._snapshot: Store | None = None
        self.commits = 0
        self.rollbacks = 0

    async def _begin(self) -> Repositories:
        self._snapshot = copy.deepcopy(self.store)
        return self._make_repositories(self.store)

    async def _end(self, error: BaseException | None) -> None:
        snapshot, self._snapshot = self._snapshot, None
        assert snapshot is not None
        if error is None:
            self.commits += 1
            return
        self.rollbacks += 1
        for name in Store.__dataclass_fields__:
            setattr(self.store, name, getattr(snapshot, name))


@dataclass
class FakeDatabase:
    """One store shared by every unit of work a use case opens (it may retry), and what they did."""

    store: Store = field(default_factory=Store)
    # Which repositories each unit of work gets: a test may wrap one to inject a fault.
    repositories: Callable[[Store], Repositories] = fake_repositories
    committed: list[list[Event]] = field(default_factory=list)
    opened: list[FakeUnitOfWork] = field(default_factory=list)

    def __call__(self) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(
            self.store, after_commit=self.committed.append, repositories=self.repositories
        )
        self.opened.append(uow)
        return uow

    @property
    def rollbacks(self) -> int:
        return sum(uow.rollbacks for uow in self.opened)
