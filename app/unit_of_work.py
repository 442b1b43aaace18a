"""The unit of work: one transaction, the repositories bound to it, and the events the work
raised, which commit with the state change or not at all.

    async with uow_factory() as uow:
        product = (await uow.products.get_many([pid]))[pid]
        ...
        await uow.record(event)

Leaving the block normally commits; any exception rolls everything back. After a commit the
after-commit hook gets the recorded events (the dispatcher and relay wake on it).

Use cases see only `UnitOfWork` and the repository protocols below, which import nothing but
the domain: `app.repositories.unit_of_work.SqlUnitOfWork` runs them on the database, and the
tests' in-memory fake runs them without one.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
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

# Runs after a commit, before the unit of work's block is left (so before a mutation answers);
# it may be a coroutine function, which is awaited (the cache's invalidation is).
AfterCommit = Callable[[list[Event]], Awaitable[None] | None]


# --- what use cases may ask of each repository ------------------------------------------------


class Products(Protocol):
    async def get_many(self, ids: Sequence[UUID]) -> dict[UUID, Product]: ...
    async def add(self, product: Product) -> bool: ...
    async def save(self, product: Product, expected: Product) -> int | None: ...
    async def move_stock(
        self, product_id: UUID, delta: int, now: datetime, *, ceiling: int | None = None
    ) -> StockMove | None: ...


class Orders(Protocol):
    async def get(self, order_id: UUID) -> Order | None: ...
    async def items(self, order_id: UUID) -> list[OrderItem]: ...
    async def add(self, order: Order, items: Sequence[OrderItem]) -> None: ...
    async def change_status(self, order: Order, expected: OrderStatus) -> bool: ...


class Profiles(Protocol):
    async def get_user(self, user_id: UUID) -> User | None: ...
    async def get(self, user_id: UUID) -> Profile | None: ...
    async def save(self, profile: Profile, now: datetime) -> None: ...


class Users(Protocol):
    async def add(self, user: User, profile: Profile) -> bool: ...
    async def get_by_email(self, email: str) -> User | None: ...
    async def disable(self, user_id: UUID, now: datetime) -> bool: ...


class ApiKeys(Protocol):
    async def add(self, key: ApiKey, key_hash: str) -> None: ...
    async def get(self, key_id: UUID) -> ApiKey | None: ...
    async def list_for_user(self, user_id: UUID) -> list[ApiKey]: ...
    async def count_active(self, user_id: UUID) -> int: ...
    async def revoke(self, key_id: UUID, now: datetime) -> bool: ...


class Idempotency(Protocol):
    async def claim(
        self, user_id: UUID, key: str, fingerprint: str, order_id: UUID, now: datetime
    ) -> IdempotencyRecord | None: ...


class Events(Protocol):
    async def append(self, event: Event) -> int: ...
    async def last_version(self, stream_id: UUID) -> int: ...


class Clients(Protocol):
    async def add(self, client: OAuthClient) -> None: ...
    async def get_by_name(self, name: str) -> OAuthClient | None: ...
    async def all(self) -> list[OAuthClient]: ...
    async def revoke(self, client_id: str, now: datetime) -> bool: ...
    async def set_secret_hash(self, client_id: str, secret_hash: str, now: datetime) -> bool: ...
    async def add_tokens(self, records: Sequence[AccessTokenRecord]) -> None: ...
    async def revoke_tokens(
        self,
        now: datetime,
        *,
        jti: str | None = None,
        client_id: str | None = None,
        user_id: UUID | None = None,
        family_id: UUID | None = None,
    ) -> int: ...


class Grants(Protocol):
    async def add_code(self, code: AuthorizationCode) -> None: ...
    async def consume_code(self, code_hash: str, family_id: UUID, now: datetime) -> bool: ...
    async def add_refresh_token(self, token: RefreshToken) -> None: ...
    async def rotate_refresh_token(self, token_hash: str, now: datetime) -> bool: ...
    async def revoke_refresh_tokens(
        self,
        now: datetime,
        *,
        family_id: UUID | None = None,
        user_id: UUID | None = None,
        client_id: str | None = None,
    ) -> int: ...


class SigningKeys(Protocol):
    async def all(self) -> list[StoredSigningKey]: ...
    async def add(self, key: StoredSigningKey) -> None: ...
    async def delete(self, kids: Sequence[str]) -> int: ...


class TrustedDocuments(Protocol):
    async def add(self, documents: Sequence[TrustedDocument], now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class Repositories:
    products: Products
    orders: Orders
    profiles: Profiles
    users: Users
    api_keys: ApiKeys
    idempotency: Idempotency
    events: Events
    clients: Clients
    grants: Grants
    signing_keys: SigningKeys
    trusted_documents: TrustedDocuments


# --- the unit of work -------------------------------------------------------------------------


class UnitOfWork(abc.ABC):
    """One all-or-nothing piece of work; entered once."""

    def __init__(self, *, after_commit: AfterCommit | None = None) -> None:
        self._after_commit = after_commit
        self._repositories: Repositories | None = None
        self._recorded: list[Event] = []

    @abc.abstractmethod
    async def _begin(self) -> Repositories:
        """Start the transaction and bind the repositories to it."""

    @abc.abstractmethod
    async def _end(self, error: BaseException | None) -> None:
        """Commit when `error` is None, else roll back (letting `error` propagate)."""

    async def __aenter__(self) -> Self:
        if self._repositories is not None:
            raise RuntimeError("a unit of work is entered once at a time")
        self._recorded = []
        self._repositories = await self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._repositories = None
        await self._end(exc)
        if exc is None and self._after_commit is not None:
            result = self._after_commit(list(self._recorded))
            if inspect.isawaitable(result):
                await result

    def _current(self) -> Repositories:
        if self._repositories is None:
            raise RuntimeError("use the unit of work inside `async with uow:`")
        return self._repositories

    @property
    def products(self) -> Products:
        return self._current().products

    @property
    def orders(self) -> Orders:
        return self._current().orders

    @property
    def profiles(self) -> Profiles:
        return self._current().profiles

    @property
    def users(self) -> Users:
        return self._current().users

    @property
    def api_keys(self) -> ApiKeys:
        return self._current().api_keys

    @property
    def idempotency(self) -> Idempotency:
        return self._current().idempotency

    @property
    def events(self) -> Events:
        return self._current().events

    @property
    def clients(self) -> Clients:
        return self._current().clients

    @property
    def grants(self) -> Grants:
        return self._current().grants

    @property
    def signing_keys(self) -> SigningKeys:
        return self._current().signing_keys

    @property
    def trusted_documents(self) -> TrustedDocuments:
        return self._current().trusted_documents

    async def record(self, *events: Event) -> None:
        """Append the events to the store now, in this transaction, so a taken stream version
        fails the work here rather than at commit."""
        store = self._current().events
        for event in events:
            await store.append(event)
            self._recorded.append(event)


UnitOfWorkFactory = Callable[[], UnitOfWork]
