"""The Starlette application: the composition root that wires settings, database and schema."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from app.auth.services import AuthServices
from app.cache.invalidation import CacheInvalidation
from app.cache.manager import CacheManager
from app.cache.query import QueryCache
from app.cache.responses import ResponseCache
from app.config import Settings
from app.db.engine import Database
from app.db.urls import DatabaseUrl
from app.domain.events import Event
from app.email import EmailSender, sender_from
from app.engine import Engine
from app.http import authorize, oauth
from app.http.auth_middleware import AuthMiddleware
from app.http.executors import PreparedDocument
from app.http.graphiql import NODE_MODULES, create_graphiql
from app.http.graphql import graphql_endpoint_for
from app.http.health import healthz, readyz
from app.http.limits import BodyLimitMiddleware
from app.http.request_id import RequestIdMiddleware
from app.http.rest.api import not_found, rest_endpoint
from app.http.security_headers import SecurityHeadersMiddleware
from app.http.subscriptions import Hub
from app.http.test_hooks import published_events
from app.http.websocket import GraphQLWebSocket
from app.messaging import handlers
from app.messaging.broker import Broker, create_broker
from app.messaging.bus import EventBus, logging_middleware
from app.messaging.dispatcher import Dispatcher
from app.messaging.fanout import Fanout
from app.messaging.probe import EventProbe
from app.messaging.relay import Relay
from app.state import AppState
from loaders import Loaders
from resolvers.schema import build_schema


def create_app(
    settings: Settings | None = None,
    *,
    node_modules: Path = NODE_MODULES,
    email_sender: EmailSender | None = None,
) -> Starlette:
    """`email_sender` replaces the configured one (SMTP_URL, else the log), e.g. in tests."""
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
        probe = EventProbe(fanout) if events.test_event_probe else None
        # One engine executes queries (the pipeline) and subscription events (the hub).
        engine = Engine(schema, settings.graphql_executor)
        subscriptions = Hub(db, fanout, engine, settings.websocket, events, debug=settings.debug)
        app.state.og = AppState(
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
            probe=probe,
            cache=cache,
            invalidation=invalidation,
            query_cache=query_cache,
            responses=ResponseCache(cache) if cache.enabled and settings.cache.responses else None,
        )
        await auth.start()
        await dispatcher.start()  # first catches up on events stored before this start
        if probe is not None:
            probe.start()
        await broker.start()  # readers first: they must know where the stream ends
        await relay.start()  # then catch up on events committed but never published
        # What startup built (modules, the schema, the engine) lives as long as the process;
        # frozen, the cyclic GC stops rescanning it in every full collection, which cost up to a
        # third of a large query's CPU (the nested bench query: ~110 -> ~75 ms in-process).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            subscriptions.close()
            await app.state.og.pipeline.close()
            await dispatcher.stop()
            await auth.close()
            # Last before the engine: a relay stuck in a batch is given its grace, and the other
            # tasks' own timers must not come due in the meantime.
            await relay.stop()
            await broker.close()
            await invalidation.close()
            await cache.close()
            if probe is not None:
                await probe.stop()
            await db.dispose()

    graphql = graphql_endpoint_for(html_page=graphiql.page if graphiql else None)
    return Starlette(
        debug=False,
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            # The same path over WebSocket: subscriptions (and queries, mutations) for clients
            # speaking graphql-transport-ws or graphql-ws.
            WebSocketRoute("/graphql", GraphQLWebSocket(schema, settings.websocket)),
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
            *(
                [Route("/_test/events", published_events, methods=["GET"])]
                if settings.events.test_event_probe
                else []
            ),
        ],
        middleware=[
            # Outermost first: every response, even a refusal or a crash, gets nosniff (and HSTS
            # over https) and its request ID.
            Middleware(SecurityHeadersMiddleware, hsts_seconds=settings.hsts_seconds),
            Middleware(RequestIdMiddleware),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=settings.graphql.max_body_bytes,
                read_timeout=settings.graphql.body_read_timeout,
            ),
            Middleware(AuthMiddleware, paths=("/graphql",), problem_prefixes=("/api/",)),
        ],
        lifespan=lifespan,
        exception_handlers={404: not_found},
    )
