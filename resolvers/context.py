"""What every resolver can reach: the request's loaders and principal.

Over a WebSocket each operation has its own Context. A subscription's resolver points `loaders` at
the fresh set its current event came with, so nothing cached for one event serves the next.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import strawberry

from app.auth.principal import ANONYMOUS, Principal
from app.cache.query import QueryCache
from app.db.engine import Database, StatementStats
from app.domain.accounts import MAX_KEYS_PER_USER
from app.messaging.fanout import Listener
from app.unit_of_work import AfterCommit, SqlUnitOfWork, UnitOfWorkFactory
from app.usecases.accounts import SignUps
from loaders import Loaders


@dataclass(slots=True)
class Context:
    loaders: Loaders
    # Mutations' use cases open their units of work with this; reads never do.
    unit_of_work: UnitOfWorkFactory
    principal: Principal = ANONYMOUS
    request_id: str = ""
    stats: StatementStats = field(default_factory=StatementStats)
    # Subscriptions listen to committed events with this (event types in, a bounded listener
    # out); None where no events are served (plain HTTP).
    listen: Callable[[Collection[str]], Listener[Loaders]] | None = None
    # The request's peer (the socket's, from the HTTP layer; `serve` trusts no forwarding
    # headers, so a client cannot pick its own): sign-ups are rate limited per address.
    client_address: str = ""
    # Password hashing and the sign-up limit; None where no auth services run (schema tests).
    sign_ups: SignUps | None = None
    api_key_environment: str = "live"
    max_api_keys_per_user: int = MAX_KEYS_PER_USER

    @classmethod
    def create(
        cls,
        db: Database,
        principal: Principal = ANONYMOUS,
        request_id: str = "",
        after_commit: AfterCommit | None = None,
        listen: Callable[[Collection[str]], Listener[Loaders]] | None = None,
        *,
        client_address: str = "",
        sign_ups: SignUps | None = None,
        api_key_environment: str = "live",
        max_api_keys_per_user: int = MAX_KEYS_PER_USER,
        query_cache: QueryCache | None = None,
    ) -> Context:
        return cls(
            loaders=Loaders.create(db, query_cache),
            unit_of_work=lambda: SqlUnitOfWork(db, after_commit=after_commit),
            principal=principal,
            request_id=request_id,
            listen=listen,
            client_address=client_address,
            sign_ups=sign_ups,
            api_key_environment=api_key_environment,
            max_api_keys_per_user=max_api_keys_per_user,
        )


Info = strawberry.Info[Context, None]
