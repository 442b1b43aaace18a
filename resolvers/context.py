"""What every resolver can reach: the request's loaders and principal."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry

from app.auth.principal import ANONYMOUS, Principal
from app.db.engine import Database, StatementStats
from loaders import Loaders


@dataclass(slots=True)
class Context:
    loaders: Loaders
    principal: Principal = ANONYMOUS
    request_id: str = ""
    stats: StatementStats = field(default_factory=StatementStats)

    @classmethod
    def create(
        cls, db: Database, principal: Principal = ANONYMOUS, request_id: str = ""
    ) -> Context:
        return cls(loaders=Loaders.create(db), principal=principal, request_id=request_id)


Info = strawberry.Info[Context, None]
