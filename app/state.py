"""What the running application holds for its lifetime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import strawberry

from app.auth.principal import Principal
from app.auth.services import AuthServices
from app.config import Settings
from app.db.engine import Database
from app.http.documents import DocumentPreparer
from app.messaging.dispatcher import Dispatcher
from app.messaging.fanout import Fanout, Listener
from app.usecases.accounts import SignUps
from loaders import Loaders
from resolvers.context import Context


@dataclass
class AppState:
    settings: Settings
    db: Database
    schema: strawberry.Schema
    auth: AuthServices
    # Runs side effects after commits; None where nothing should (e.g. one-off tools).
    dispatcher: Dispatcher | None = None
    # This process's live subscribers; brokers publish committed events into it. Each event
    # gets fresh DataLoaders, shared by the subscribers it reaches.
    fanout: Fanout[Loaders] | None = None
    # Parsed and validated query documents, by query text, for this schema and these limits.
    documents: DocumentPreparer = field(init=False)
    # Admission control: a turn to execute one GraphQL operation (MAX_CONCURRENT_OPERATIONS).
    operations: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.documents = DocumentPreparer(self.schema._schema, self.settings.graphql)
        self.operations = asyncio.Semaphore(self.settings.graphql.max_concurrent_operations)

    def context(
        self,
        *,
        principal: Principal,
        request_id: str,
        client_address: str,
        listen: Callable[[Collection[str]], Listener[Loaders]] | None = None,
    ) -> Context:
        """A GraphQL operation's context, the same for HTTP and WebSocket operations."""
        auth = self.auth
        return Context.create(
            self.db,
            principal=principal,
            request_id=request_id,
            after_commit=None if self.dispatcher is None else self.dispatcher.wake,
            listen=listen,
            client_address=client_address,
            sign_ups=SignUps(auth.passwords, auth.limiter, auth.settings.sign_ups_per_address),
            api_key_environment=auth.settings.api_key_environment,
        )
