"""The unit of work on the database: one write transaction (`Database.write`) and the SQL
repositories bound to its connection.

Which repositories it binds is injected (`repositories=`), so a test can wrap one to inject a
fault without patching a class for the whole process.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import Database
from app.repositories.api_keys import ApiKeyRepository
from app.repositories.clients import ClientRepository
from app.repositories.events import EventRepository
from app.repositories.grants import GrantRepository
from app.repositories.idempotency import IdempotencyRepository
from app.repositories.orders import OrderRepository
from app.repositories.products import ProductRepository
from app.repositories.signing_keys import SigningKeyRepository
from app.repositories.trusted_documents import TrustedDocumentRepository
from app.repositories.users import ProfileRepository, UserRepository
from app.unit_of_work import AfterCommit, Repositories, UnitOfWork, UnitOfWorkFactory

RepositoryFactory = Callable[[AsyncConnection], Repositories]


def sql_repositories(conn: AsyncConnection) -> Repositories:
    return Repositories(
        products=ProductRepository(conn),
        orders=OrderRepository(conn),
        profiles=ProfileRepository(conn),
        users=UserRepository(conn),
        api_keys=ApiKeyRepository(conn),
        idempotency=IdempotencyRepository(conn),
        events=EventRepository(conn),
        clients=ClientRepository(conn),
        grants=GrantRepository(conn),
        signing_keys=SigningKeyRepository(conn),
        trusted_documents=TrustedDocumentRepository(conn),
    )


class SqlUnitOfWork(UnitOfWork):
    """A unit of work in one write transaction of the database."""

    def __init__(
        self,
        db: Database,
        *,
        after_commit: AfterCommit | None = None,
        repositories: RepositoryFactory = sql_repositories,
    ) -> None:
        super().__init__(after_commit=after_commit)
        self._db = db
        self._make_repositories = repositories
        self._cm: AbstractAsyncContextManager[AsyncConnection] | None = None
        self._conn: AsyncConnection | None = None

    @classmethod
    def factory(
        cls,
        db: Database,
        *,
        after_commit: AfterCommit | None = None,
        repositories: RepositoryFactory = sql_repositories,
    ) -> UnitOfWorkFactory:
        return lambda: cls(db, after_commit=after_commit, repositories=repositories)

    async def _begin(self) -> Repositories:
        self._cm = self._db.write()
        self._conn = await self._cm.__aenter__()
        return self._make_repositories(self._conn)

    async def _end(self, error: BaseException | None) -> None:
        cm, self._cm, self._conn = self._cm, None, None
        assert cm is not None
        if error is None:
            await cm.__aexit__(None, None, None)
        else:
            await cm.__aexit__(type(error), error, error.__traceback__)

    @property
    def connection(self) -> AsyncConnection:
        """The work's connection, for tests that need to run raw SQL inside it."""
        if self._conn is None:
            raise RuntimeError("use the unit of work inside `async with uow:`")
        return self._conn
