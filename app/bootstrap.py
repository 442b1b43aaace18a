"""The composition root: where the layers are built and handed what they need.

Nothing below this module constructs a database engine, a unit of work or a GraphQL context for
itself; they are made here (and, for the process, in app.main's lifespan) and passed down.
"""

from __future__ import annotations

from app.auth.principal import ANONYMOUS, Principal
from app.db.engine import Database
from app.repositories.unit_of_work import RepositoryFactory, SqlUnitOfWork, sql_repositories
from app.unit_of_work import AfterCommit
from app.usecases.accounts import SignUps
from loaders import Loaders
from resolvers.context import Context, Listen


def graphql_context(
    db: Database,
    *,
    principal: Principal = ANONYMOUS,
    request_id: str = "",
    after_commit: AfterCommit | None = None,
    listen: Listen | None = None,
    client_address: str = "",
    sign_ups: SignUps | None = None,
    api_key_environment: str = "live",
    repositories: RepositoryFactory = sql_repositories,
) -> Context:
    """A GraphQL operation's context: fresh loaders over `db`, and units of work on it that call
    `after_commit` with what they committed."""
    return Context(
        loaders=Loaders.create(db),
        unit_of_work=SqlUnitOfWork.factory(
            db, after_commit=after_commit, repositories=repositories
        ),
        principal=principal,
        request_id=request_id,
        listen=listen,
        client_address=client_address,
        sign_ups=sign_ups,
        api_key_environment=api_key_environment,
    )
