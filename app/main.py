"""The composition root: the one place that builds the application's parts and hands each layer
what it needs (the engine, the units of work, the GraphQL context, the event machinery).

Nothing below it constructs these for itself. An app built for tests passes an
`Instrumentation` (fault injection, probes); `serve` never does.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from app.auth.principal import ANONYMOUS, Principal
from app.auth.services import AuthServices
from app.cache.invalidation import CacheInvalidation
from app.cache.manager import CacheManager
from app.cache.query import QueryCache
from app.cache.responses import ResponseCache
from app.config import Settings
from app.db.engine import Database
from app.db.urls import DatabaseUrl
from app.domain.accounts import MAX_KEYS_PER_USER
from app.domain.events import Event
from app.email import EmailSender, sender_from
from app.engine import Engine
from app.http import authorize, oauth
from app.http.auth_middleware import AuthMiddleware
from app.http.cors import CorsMiddleware
from app.http.edge import Edge, GraphQLRoute
from app.http.executors import PreparedDocument
from app.http.graphiql import NODE_MODULES, create_graphiql
from app.http.graphql import graphql_endpoint_for
from app.http.health import healthz, readyz
from app.http.limits import BodyLimit, BodyLimitMiddleware
from app.http.metrics import metrics_route
from app.http.rest.api import not_found, rest_endpoint
from app.http.sockets import OpenSockets
from app.http.state import AppState, ContextFactory
from app.http.subscriptions import Hub
from app.http.websocket import GraphQLWebSocket
from app.messaging import handlers
from app.messaging.broker import Broker, create_broker
from app.messaging.bus import EventBus, logging_middleware
from app.messaging.dispatcher import Dispatcher
from app.messaging.fanout import Fanout
from app.messaging.relay import Relay
from app.observability import metrics
from app.repositories.unit_of_work import RepositoryFactory, SqlUnitOfWork, sql_repositories
from app.retention import RetentionJob
from app.unit_of_work import AfterCommit
from app.usecases.accounts import SignUps
from loaders import Loaders
from resolvers.context import Context
from resolvers.schema import build_schema

# The cyclic GC's thresholds once the process serves. A nested page allocates ~100k container
# objects, nearly all freed by reference counting; at CPython's default (a young collection
# every 700 net allocations) a process serving 10-16 such requests at once spent a quarter of
# its CPU rescanning the in-flight responses (in process, 16 at once: 30 -> 22 ms CPU per
# nested request at 50,000; at 200,000, 10 at once: ~2 ms less again, the same peak RSS).
# Collections still run, every 200,000 net allocations, so cycles are freed and memory stays
# bounded.
GC_THRESHOLDS = (200_000, 20, 10)


def graphql_context(
    db: Database,
    *,
    principal: Principal = ANONYMOUS,
    request_id: str = "",
    after_commit: AfterCommit | None = None,
    client_address: str = "",
    sign_ups: SignUps | None = None,
    api_key_environment: str = "live",
    max_api_keys_per_user: int = MAX_KEYS_PER_USER,
    repositories: RepositoryFactory = sql_repositories,
    query_cache: QueryCache | None = None,
) -> Context:
    """A GraphQL operation's context: fresh loaders over `db` (the catalogue's reads through
    `query_cache` when given), and units of work on it that call `after_commit` with what they
    committed."""
    return Context(
        loaders=Loaders.create(db, query_cache),
        unit_of_work=SqlUnitOfWork.factory(
            db, after_commit=after_commit, repositories=repositories
        ),
        principal=principal,
        request_id=request_id,
        client_address=client_address,
        sign_ups=sign_ups,
        api_key_environment=api_key_environment,
        max_api_keys_per_user=max_api_keys_per_user,
    )


def _contexts(
    db: Database,
    auth: AuthServices,
    after_commit: AfterCommit,
    query_cache: QueryCache | None,
) -> ContextFactory:
    sign_ups = SignUps(auth.passwords, auth.limiter, auth.settings.sign_ups_per_address)

    def make(
        *,
        principal: Principal,
        request_id: str,
        client_address: str,
    ) -> Context:
        return graphql_context(
            db,
            principal=principal,
            request_id=request_id,
            after_commit=after_commit,
            client_address=client_address,
            sign_ups=sign_ups,
            api_key_environment=auth.settings.api_key_environment,
            max_api_keys_per_user=auth.settings.max_api_keys_per_user,
            query_cache=query_cache,
        )

    return make


@dataclass(frozen=True)
class Instrumentation:
    """What only an app built for tests adds (tests.instrumented): hooks called with each
    commit's events before anything acts on them, routes, and a context entered once the app
    has started (given its state) and left before it stops."""

    commit_hooks: Sequence[AfterCommit] = ()
    routes: Sequence[BaseRoute] = ()
    running: Callable[[AppState], AbstractAsyncContextManager[None]] | None = None


def create_app(
    settings: Settings | None = None,
    *,
    node_modules: Path = NODE_MODULES,
    email_sender: EmailSender | None = None,
    instrumentation: Instrumentation | None = None,
) -> Starlette:
    """`email_sender` replaces the configured one (SMTP_URL, else the log), e.g. in tests."""
    extras = instrumentation or Instrumentation()
    settings = settings or Settings.from_env()
    url = DatabaseUrl.parse(settings.database_url)
    schema = build_schema(extensions=[PreparedDocument])
    graphiql = create_graphiql(settings, node_modules)
    email_sender = email_sender or sender_from(settings.smtp_url, settings.email_from)
    # app.http.errors logs every internal error once, with its request ID; Strawberry would also
    # log every error, clients' mistakes included, at ERROR level.
    logging.getLogger("strawberry.execution").setLevel(logging.CRITICAL)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(url, settings)
        auth = AuthServices.create(settings, db)
        bus = EventBus([logging_middleware])
        handlers.register(bus, db, email_sender)
        dispatcher = Dispatcher(db, bus, concurrency=settings.events.dispatch_concurrency)
        broker_ref: list[Broker] = []
        cache = CacheManager.create(
            settings.cache,
            settings.redis_url,
            settings.auth.redis_prefix,
            # Other processes' invalidations arrive through the broker; while it is cut off, L1
            # serves nothing older than the propagation bound.
            coherent=lambda: not broker_ref or broker_ref[0].delivering,
        )
        query_cache = QueryCache(cache) if cache.enabled else None
        fanout: Fanout[Loaders] = Fanout(lambda event: Loaders.create(db, query_cache))
        events = settings.events
        invalidation = CacheInvalidation(cache)

        def deliver(event: Event) -> None:
            invalidation.delivered(event)
            fanout.publish(event)

        broker = create_broker(
            settings.redis_url,
            settings.auth.redis_prefix,
            deliver,
            maxlen=events.stream_maxlen,
        )
        broker_ref.append(broker)
        relay = Relay(db, broker, batch=events.relay_batch, poll_interval=events.relay_poll_seconds)
        # One engine executes queries (the pipeline) and subscription events (the hub).
        engine = Engine(schema, settings.graphql_executor)
        subscriptions = Hub(db, fanout, engine, settings.websocket, events, debug=settings.debug)
        retention = (
            RetentionJob(db, settings.retention) if settings.retention.interval_seconds else None
        )
        state = AppState(
            settings=settings,
            db=db,
            schema=schema,
            engine=engine,
            auth=auth,
            dispatcher=dispatcher,
            fanout=fanout,
            broker=broker,
            relay=relay,
            subscriptions=subscriptions,
            sockets=sockets,
            commit_hooks=list(extras.commit_hooks),
            cache=cache,
            invalidation=invalidation,
            query_cache=query_cache,
            responses=ResponseCache(cache) if cache.enabled and settings.cache.responses else None,
        )
        state.contexts = _contexts(db, auth, state.after_commit, query_cache)
        app.state.og = state
        await auth.start()
        await dispatcher.start()  # first catches up on events stored before this start
        running = extras.running(state) if extras.running is not None else nullcontext()
        await running.__aenter__()
        await broker.start()  # readers first: they must know where the stream ends
        await relay.start()  # then catch up on events committed but never published
        if retention is not None:
            await retention.start()
        # What startup built (modules, the schema, the engine) lives as long as the process;
        # frozen, the cyclic GC stops rescanning it in every full collection, which cost up to a
        # third of a large query's CPU (the nested bench query: ~110 -> ~75 ms in-process).
        defaults = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*defaults)
            gc.unfreeze()
            subscriptions.close()
            await state.pipeline.close()
            if retention is not None:
                await retention.stop()
            await dispatcher.stop()
            await auth.close()
            # Last before the engine: a relay stuck in a batch is given its grace, and the other
            # tasks' own timers must not come due in the meantime.
            await relay.stop()
            await broker.close()
            await running.__aexit__(None, None, None)
            await invalidation.close()
            await cache.close()
            await db.dispose()
            metrics.process_exited(os.getpid())  # its live gauges leave the sums

    graphql = graphql_endpoint_for(html_page=graphiql.page if graphiql else None)
    body_limit = BodyLimit(settings.graphql.max_body_bytes, settings.graphql.body_read_timeout)
    sockets = OpenSockets()
    operations = settings.operations
    return Starlette(
        debug=False,
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            # The same path over WebSocket: subscriptions (and queries, mutations) for clients
            # speaking graphql-transport-ws or graphql-ws.
            WebSocketRoute(
                "/graphql",
                sockets.middleware(
                    GraphQLWebSocket(schema, settings.websocket, settings.cors.allowed_origins)
                ),
            ),
            # The versioned REST API (app/http/rest): /api/v1/..., /api/v2/..., or /api/... with
            # the `api-version` header; every method reaches it, so others get a 405 problem.
            Route(
                "/api/{path:path}",
                rest_endpoint,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            ),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route(authorize.PATH, authorize.endpoint(settings.auth), methods=["GET", "POST"]),
            *oauth.routes,
            *(graphiql.routes() if graphiql else []),
            *([metrics_route(operations.metrics_token)] if operations.metrics_token else []),
            *extras.routes,
        ],
        middleware=[
            # Outermost first. The edge gives every response, even a refusal or a crash, its
            # request ID and security headers, and records it; it serves /graphql itself, with
            # the same body limit and authentication as the layers below (app.http.edge).
            Middleware(
                Edge,
                hsts_seconds=settings.hsts_seconds,
                graphql=GraphQLRoute(graphql, body_limit, cors=bool(settings.cors.allowed_origins)),
            ),
            # Preflights are answered here, before limits and authentication. Without allowed
            # origins nothing is added: browsers then refuse cross-origin calls themselves.
            *(
                [Middleware(CorsMiddleware, settings=settings.cors)]
                if settings.cors.allowed_origins
                else []
            ),
            Middleware(BodyLimitMiddleware, limit=body_limit),
            Middleware(AuthMiddleware, paths=("/graphql",), problem_prefixes=("/api/",)),
        ],
        lifespan=lifespan,
        exception_handlers={404: not_found},
    )
