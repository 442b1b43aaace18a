"""What every resolver can reach: the request's loaders and principal."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry

from app.auth.principal import ANONYMOUS, Principal
from app.db.engine import Database, StatementStats
from app.unit_of_work import AfterCommit, UnitOfWork, UnitOfWorkFactory
from loaders import Loaders


@dataclass(slots=True)
class Context:
    loaders: Loaders
    # Mutations' use cases open their units of work with this; reads never do.
    unit_of_work: UnitOfWorkFactory
    principal: Principal = ANONYMOUS
    request_id: str = ""
    stats: StatementStats = field(default_factory=StatementStats)

    @classmethod
    def create(
        cls,
        db: Database,
        principal: Principal = ANONYMOUS,
        request_id: str = "",
        after_commit: AfterCommit | None = None,
    ) -> Context:
        return cls(
            loaders=Loaders.create(db),
            unit_of_work=lambda: UnitOfWork(db, after_commit=after_commit),
            principal=principal,
            request_id=request_id,
        )


Info = strawberry.Info[Context, None]
