"""What every resolver can reach: the request's loaders and principal.

Over a WebSocket each operation has its own Context. A subscription's events are executed with
a context whose `loaders` are pointed at the fresh set each event (or replayed batch) comes with,
so nothing cached for one event serves the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry

from app.auth.principal import ANONYMOUS, Principal
from app.cache.query import QueryCache
from app.db.engine import Database, StatementStats
from app.domain.accounts import MAX_KEYS_PER_USER
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
            client_address=client_address,
            sign_ups=sign_ups,
            api_key_environment=api_key_environment,
            max_api_keys_per_user=max_api_keys_per_user,
        )


Info = strawberry.Info[Context, None]
