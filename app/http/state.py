"""What the running application holds for its lifetime, as the HTTP and WebSocket handlers see
it. app.main (the composition root) builds it and hands it everything it holds."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Protocol

import strawberry

from app.auth.principal import Principal
from app.auth.services import AuthServices
from app.cache.invalidation import CacheInvalidation
from app.cache.manager import CacheManager
from app.cache.query import QueryCache
from app.cache.responses import ResponseCache
from app.config import Settings
from app.db.engine import Database
from app.domain.events import Event
from app.engine import Engine
from app.http.budgets import Budgets
from app.http.cost import CostAnalysis
from app.http.document_store import create_document_store
from app.http.documents import DocumentPreparer
from app.http.executors import EngineExecutor
from app.http.persisted import PersistedQueries, TrustedDocuments
from app.http.pipeline import OperationPipeline
from app.http.socket_limits import SocketLimits
from app.http.sockets import OpenSockets
from app.http.subscriptions import Hub
from app.messaging.broker import Broker
from app.messaging.dispatcher import Dispatcher
from app.messaging.fanout import Fanout
from app.messaging.relay import Relay
from app.unit_of_work import AfterCommit
from loaders import Loaders
from resolvers.context import Context


class ContextFactory(Protocol):
    def __call__(
        self,
        *,
        principal: Principal,
        request_id: str,
        client_address: str,
    ) -> Context: ...


@dataclass
class AppState:
    settings: Settings
    db: Database
    schema: strawberry.Schema
    # Executes prepared operations and subscription events: the level executor or the standard
    # one (GRAPHQL_EXECUTOR).
    engine: Engine
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
    # Serves this process's subscriptions from the fanout and the store (cursors, shared
    # executions); None where no events are served.
    subscriptions: Hub | None = None
    # The open WebSockets: counted, and closed with 1001 when the process shuts down.
    sockets: OpenSockets = field(default_factory=OpenSockets)
    # Builds each operation's Context (loaders, units of work): handed in by app.main.
    contexts: ContextFactory | None = None
    # Called with each commit's events before the cache is invalidated and the dispatcher and
    # relay are woken (an app built for tests adds its fault injection here; `serve` adds
    # nothing).
    commit_hooks: list[AfterCommit] = field(default_factory=list)
    # The two-level cache; None where nothing caches (one-off tools).
    cache: CacheManager | None = None
    # Parsed and validated query documents, by query text, for this schema and these limits.
    documents: DocumentPreparer = field(init=False)
    # Every GraphQL operation, over HTTP or WebSocket, runs through this one pipeline.
    pipeline: OperationPipeline = field(init=False)
    # WebSockets and subscriptions held per client address and per principal.
    socket_limits: SocketLimits = field(init=False)
    # The catalogue's query-result cache (None when caching is off) and what invalidates the
    # cache after this process's commits.
    query_cache: QueryCache | None = None
    # Whole answers of public reads (CACHE_RESPONSES); None when off.
    responses: ResponseCache | None = None
    invalidation: CacheInvalidation | None = None

    def __post_init__(self) -> None:
        settings = self.settings
        self.documents = DocumentPreparer(self.schema._schema, settings.graphql)
        persisted = settings.persisted_queries
        self.pipeline = OperationPipeline(
            schema=self.schema,
            documents=self.documents,
            limits=settings.graphql,
            context=self.context,
            executor=EngineExecutor(self.engine, frozenset(self.documents.rules)),
            cost=CostAnalysis(self.schema._schema, settings.cost),
            persisted=PersistedQueries(
                persisted,
                create_document_store(
                    settings.redis_url,
                    settings.auth.redis_prefix,
                    persisted.max_entries,
                    persisted.ttl_seconds,
                ),
                TrustedDocuments(self.db, persisted.max_entries),
            ),
            # The rate limiter's buckets (in memory, or Redis when configured) hold the budgets.
            budgets=Budgets(self.auth.limiter, settings.budget)
            if settings.budget.enabled
            else None,
            debug=settings.debug,
            responses=self.responses,
        )
        self.socket_limits = SocketLimits(self.settings.websocket)

    def context(
        self,
        *,
        principal: Principal,
        request_id: str,
        client_address: str,
    ) -> Context:
        """A GraphQL operation's context, the same for HTTP and WebSocket operations."""
        if self.contexts is None:
            raise RuntimeError("the app was built without a context factory")
        return self.contexts(
            principal=principal, request_id=request_id, client_address=client_address
        )

    async def after_commit(self, events: list[Event]) -> None:
        """The unit of work's hook: wake whoever acts on the events that just committed.

        The cache's invalidation is awaited, so the mutation answers only once neither this
        process nor L2 holds the old value; other processes invalidate when the events reach
        them, before their subscribers see the events.
        """
        for hook in self.commit_hooks:
            result = hook(events)
            if inspect.isawaitable(result):
                await result
        try:
            if self.invalidation is not None:
                await self.invalidation.after_commit(events)
        finally:
            # Woken after the cache's invalidation, so other processes' subscribers do not find
            # the old value in L2; woken even if it was cancelled (they also poll).
            if self.dispatcher is not None:
                self.dispatcher.wake(events)
            if self.relay is not None:
                self.relay.wake(events)
