"""What the running application holds for its lifetime, as the HTTP and WebSocket handlers see
it. app.main (the composition root) builds it and hands it everything it holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import strawberry

from app.auth.principal import Principal
from app.auth.services import AuthServices
from app.config import Settings
from app.db.engine import Database
from app.domain.events import Event
from app.engine import Engine
from app.http.documents import DocumentPreparer
from app.http.executors import EngineExecutor
from app.http.pipeline import OperationPipeline
from app.messaging.broker import Broker
from app.messaging.dispatcher import Dispatcher
from app.messaging.fanout import Fanout
from app.messaging.relay import Relay
from app.unit_of_work import AfterCommit
from loaders import Loaders
from resolvers.context import Context, Listen


class ContextFactory(Protocol):
    def __call__(
        self,
        *,
        principal: Principal,
        request_id: str,
        client_address: str,
        listen: Listen | None = None,
    ) -> Context: ...


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
    # Carries committed events to every process's fanout (in process, or Redis Streams).
    broker: Broker | None = None
    # Hands committed events to the broker, one relay at a time; woken after every commit.
    relay: Relay | None = None
    # Builds each operation's Context (loaders, units of work): handed in by app.main.
    contexts: ContextFactory | None = None
    # Called with each commit's events before the dispatcher and relay are woken (an app built
    # for tests adds its fault injection here; `serve` adds nothing).
    commit_hooks: list[AfterCommit] = field(default_factory=list)
    # Parsed and validated query documents, by query text, for this schema and these limits.
    documents: DocumentPreparer = field(init=False)
    # Executes prepared operations: the level executor or the standard one (GRAPHQL_EXECUTOR).
    engine: Engine = field(init=False)
    # Every GraphQL operation, over HTTP or WebSocket, runs through this one pipeline.
    pipeline: OperationPipeline = field(init=False)

    def __post_init__(self) -> None:
        self.documents = DocumentPreparer(self.schema._schema, self.settings.graphql)
        self.engine = Engine(self.schema, self.settings.graphql_executor)
        self.pipeline = OperationPipeline(
            schema=self.schema,
            documents=self.documents,
            limits=self.settings.graphql,
            context=self.context,
            executor=EngineExecutor(self.engine, frozenset(self.documents.rules)),
            debug=self.settings.debug,
        )

    def context(
        self,
        *,
        principal: Principal,
        request_id: str,
        client_address: str,
        listen: Listen | None = None,
    ) -> Context:
        """A GraphQL operation's context, the same for HTTP and WebSocket operations."""
        if self.contexts is None:
            raise RuntimeError("the app was built without a context factory")
        return self.contexts(
            principal=principal, request_id=request_id, client_address=client_address, listen=listen
        )

    def after_commit(self, events: list[Event]) -> None:
        """The unit of work's hook: wake whoever acts on the events that just committed."""
        for hook in self.commit_hooks:
            hook(events)
        if self.dispatcher is not None:
            self.dispatcher.wake(events)
        if self.relay is not None:
            self.relay.wake(events)
