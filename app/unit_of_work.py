"""The unit of work: one transaction, its connection, the repositories bound to it, and the
events the work raised, which commit with the state change or not at all.

    async with UnitOfWork(db) as uow:
        product = (await uow.products.get_many([pid]))[pid]
        ...
        await uow.record(event)

Leaving the block normally commits; any exception rolls everything back. A unit of work opened
while another is active on the same database (a use case calling another) joins the outer
transaction: only the outermost block commits, and a failure inside the inner one dooms the
whole, even if the outer code catches the exception.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Database
from app.domain.events import Event
from app.repositories.api_keys import ApiKeyRepository
from app.repositories.events import EventRepository
from app.repositories.idempotency import IdempotencyRepository
from app.repositories.orders import OrderRepository
from app.repositories.products import ProductRepository
from app.repositories.users import ProfileRepository, UserRepository

# Runs after a commit, before the unit of work's block is left (so before a mutation answers);
# it may be a coroutine function, which is awaited (the cache's invalidation is).
AfterCommit = Callable[[list[Event]], Awaitable[None] | None]


class TransactionDoomed(Exception):
    """An inner unit of work failed, so the outer one cannot commit."""


@dataclass
class _Transaction:
    db: Database
    conn: AsyncConnection
    products: ProductRepository
    orders: OrderRepository
    profiles: ProfileRepository
    users: UserRepository
    api_keys: ApiKeyRepository
    idempotency: IdempotencyRepository
    events: EventRepository
    recorded: list[Event] = field(default_factory=list)
    after_commit: list[AfterCommit] = field(default_factory=list)
    doomed: bool = False


_active: ContextVar[_Transaction | None] = ContextVar("unit_of_work", default=None)


class UnitOfWork:
    def __init__(self, db: Database, *, after_commit: AfterCommit | None = None) -> None:
        self._db = db
        self._after_commit = after_commit
        self._tx: _Transaction | None = None
        self._owner = False
        self._cm: AbstractAsyncContextManager[AsyncConnection] | None = None
        self._token: Token[_Transaction | None] | None = None
        self.joined_outer = False

    async def __aenter__(self) -> UnitOfWork:
        if self._tx is not None:
            raise RuntimeError("a UnitOfWork object is entered once at a time")
        outer = _active.get()
        if outer is not None and outer.db is self._db:
            self._tx, self._owner = outer, False
            self.joined_outer = True
        else:
            self._cm = self._db.write()
            conn = await self._cm.__aenter__()
            self._tx = _Transaction(
                db=self._db,
                conn=conn,
                products=ProductRepository(conn),
                orders=OrderRepository(conn),
                profiles=ProfileRepository(conn),
                users=UserRepository(conn),
                api_keys=ApiKeyRepository(conn),
                idempotency=IdempotencyRepository(conn),
                events=EventRepository(conn),
            )
            self._owner = True
            self._token = _active.set(self._tx)
        if self._after_commit is not None:
            self._tx.after_commit.append(self._after_commit)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tx, self._tx = self._tx, None
        assert tx is not None
        if not self._owner:
            if exc is not None:
                tx.doomed = True
            return
        assert self._cm is not None
        assert self._token is not None
        _active.reset(self._token)
        cm, self._cm = self._cm, None
        if exc is None and tx.doomed:
            exc = TransactionDoomed("an inner unit of work failed; everything was rolled back")
            await cm.__aexit__(type(exc), exc, None)
            raise exc
        await cm.__aexit__(exc_type, exc, tb)  # commits, or rolls back and lets exc propagate
        if exc is None:
            for callback in tx.after_commit:
                result = callback(list(tx.recorded))
                if inspect.isawaitable(result):
                    await result

    def _current(self) -> _Transaction:
        if self._tx is None:
            raise RuntimeError("use the unit of work inside `async with uow:`")
        return self._tx

    @property
    def connection(self) -> AsyncConnection:
        return self._current().conn

    @property
    def products(self) -> ProductRepository:
        return self._current().products

    @property
    def orders(self) -> OrderRepository:
        return self._current().orders

    @property
    def profiles(self) -> ProfileRepository:
        return self._current().profiles

    @property
    def users(self) -> UserRepository:
        return self._current().users

    @property
    def api_keys(self) -> ApiKeyRepository:
        return self._current().api_keys

    @property
    def idempotency(self) -> IdempotencyRepository:
        return self._current().idempotency

    @property
    def events(self) -> EventRepository:
        return self._current().events

    async def record(self, *events: Event) -> None:
        """Append the events to the store now, in this transaction, so a taken stream version
        fails the work here rather than at commit."""
        tx = self._current()
        for event in events:
            await tx.events.append(event)
            tx.recorded.append(event)


UnitOfWorkFactory = Callable[[], UnitOfWork]
