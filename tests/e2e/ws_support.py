"""A real server with WebSockets, real WebSocket clients, and committed events to publish."""

from __future__ import annotations

import asyncio
import json
import socket as sock
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID, uuid4

import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from app.auth.scopes import ALL_SCOPES
from app.config import (
    AuthSettings,
    BudgetSettings,
    EventSettings,
    GraphQLLimits,
    Settings,
    WebSocketSettings,
)
from app.db.engine import Database
from app.domain.events import Event
from app.http.state import AppState
from app.repositories import events as event_repo
from bench.servers import in_process as live_server
from resolvers.global_id import from_global_id
from tests.auth_support import auth_settings

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
WAIT = 10.0  # seconds before a test gives up on a message it expects (a hang, not a timing)
KEEPALIVES = ("ping", "pong", "ka")


@dataclass
class Server:
    app: Starlette
    base_url: str

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.og
        return state

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/graphql"

    def token(
        self, user_id: UUID | None = None, scopes: str = "", *, issued: int | None = None
    ) -> tuple[str, str]:
        """A JWT this server accepts and its jti: a user's (customer or admin) or a client's."""
        token, record = self.state.auth.tokens.mint(
            client_id="ws-tests", user_id=user_id, scope=scopes, now=issued
        )
        return token, record.jti

    def admin_token(self) -> str:
        return self.token(uuid4(), " ".join(sorted(ALL_SCOPES)))[0]

    async def http(self, query: str, token: str, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"authorization": f"Bearer {token}"},
            )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body

    async def stored_events(self, global_id: str) -> list[Event]:
        """What the unit of work stored for one aggregate, oldest first."""
        _, pk = from_global_id(global_id)
        async with self.state.db.read() as conn:
            return (await event_repo.by_stream_ids(conn, [pk])).get(pk, [])

    async def listening(self, count: int) -> None:
        """Wait until this process serves `count` subscriptions (set up and listening)."""
        hub = self.state.subscriptions
        assert hub is not None
        for _ in range(int(WAIT / 0.01)):
            if hub.subscriber_count >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{hub.subscriber_count} subscriptions, not {count}")

    async def publish_latest(self, global_id: str) -> Event:
        """The aggregate's latest committed event, which the in-process relay has handed (or is
        about to hand) to this process's subscribers: the commit wakes it."""
        return (await self.stored_events(global_id))[-1]


@asynccontextmanager
async def serving(
    db: Database,
    graphql: GraphQLLimits | None = None,
    budget: BudgetSettings | None = None,
    *,
    events: EventSettings | None = None,
    auth: AuthSettings | None = None,
    **websocket: Any,
) -> AsyncIterator[Server]:
    values: dict[str, Any] = {"init_timeout": 5.0, "keepalive": 30.0, "auth_recheck": 0.1}
    values.update(websocket)
    settings = Settings(
        database_url=str(db.url),
        auth=auth or auth_settings(),
        websocket=WebSocketSettings(**values),
        events=events or EventSettings(),
        graphql=graphql or GraphQLLimits(),
        budget=budget or BudgetSettings(),
    )
    from app.main import create_app

    app = create_app(settings)
    async with live_server(app, websockets=True) as base_url:
        yield Server(app, base_url)


class Socket:
    """One client socket speaking either protocol as raw JSON messages."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        # Each operation's last event extensions (cursor, event id and version).
        self.extensions: dict[str, dict[str, Any]] = {}

    @property
    def protocol(self) -> str | None:
        return self.ws.subprotocol

    async def send(self, message: Any) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def receive(self, *, keepalive: bool = False, wait: float = WAIT) -> dict[str, Any]:
        """The next message; keepalive messages are skipped unless asked for."""
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), wait)
            message: dict[str, Any] = json.loads(raw)
            if keepalive or message.get("type") not in KEEPALIVES:
                return message

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send({"type": "connection_init", "payload": payload or {}})
        return await self.receive()

    async def start(self, id_: str, query: str, variables: dict[str, Any] | None = None) -> None:
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        payload = {"query": query, "variables": variables or {}}
        await self.send({"type": kind, "id": id_, "payload": payload})

    async def result(self, id_: str) -> dict[str, Any]:
        """The next result of operation `id_` (`next` or legacy `data`), its payload; a
        subscription event's extensions (cursor, event) are kept apart in `extensions`, a
        query's (cost) stay in the payload."""
        message = await self.receive()
        assert message.get("id") == id_, message
        assert message["type"] in ("next", "data"), message
        payload: dict[str, Any] = message["payload"]
        if "cursor" in payload.get("extensions", {}):
            self.extensions[id_] = payload.pop("extensions")
        return payload

    async def close_code(self) -> int:
        """Wait until the server closes the socket; its close code."""
        with pytest.raises(ConnectionClosed) as closed:
            await self._drain()
        assert closed.value.rcvd is not None, "the server sent no close frame"
        return closed.value.rcvd.code

    async def _drain(self) -> None:
        while True:
            await asyncio.wait_for(self.ws.recv(), WAIT)


@asynccontextmanager
async def socket(
    server: Server, protocol: str = TRANSPORT_WS, *, url: str | None = None, pings: bool = True
) -> AsyncIterator[Socket]:
    """A socket to the server (or to `url`, e.g. a `Proxy` in front of it); without `pings`
    the client sends no keepalive pings of its own (nor ends the connection for want of a
    pong)."""
    async with connect(
        url or server.ws_url,
        subprotocols=[Subprotocol(protocol)],
        open_timeout=WAIT,
        ping_interval=20.0 if pings else None,  # 20 s: websockets' default
    ) as ws:
        yield Socket(ws)


@asynccontextmanager
async def ready_socket(
    server: Server,
    protocol: str = TRANSPORT_WS,
    authorization: str | None = None,
    *,
    url: str | None = None,
    pings: bool = True,
) -> AsyncIterator[Socket]:
    """A socket whose connection_init (with this Authorization, if any) was acknowledged."""
    async with socket(server, protocol, url=url, pings=pings) as client:
        ack = await client.init({} if authorization is None else {"Authorization": authorization})
        assert ack["type"] == "connection_ack", ack
        yield client


def now() -> int:
    return int(time.time())


class Served(Protocol):
    """A server answering at a base URL: in this process (`Server`) or its own (`ServerProcess`)."""

    @property
    def base_url(self) -> str: ...


class Proxy:
    """A TCP proxy in front of a server, which the test controls: `cut()` drops every
    connection as a network does (a reset, no close frame), `stall()` stops reading from the
    server (as a client that stops reading: the server's socket buffers fill) until `flow()`.
    Its reads from the server are small, so little is buffered in between."""

    def __init__(self, server: Served) -> None:
        self._target = server.base_url.removeprefix("http://").split(":")
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Server | None = None
        self.base_url = ""
        self.url = ""

    async def __aenter__(self) -> Proxy:
        self._listener = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._listener.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"ws://127.0.0.1:{port}/graphql"
        return self

    async def __aexit__(self, *_: object) -> None:
        self.cut()
        assert self._listener is not None
        self._listener.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self._target
        upstream = sock.socket(sock.AF_INET, sock.SOCK_STREAM)
        # Before connecting: a small window and segments, so the server's socket buffers stay
        # small too (on loopback they grow to megabytes) and a stall fills them soon.
        upstream.setsockopt(sock.SOL_SOCKET, sock.SO_RCVBUF, 4096)
        upstream.setsockopt(sock.IPPROTO_TCP, sock.TCP_MAXSEG, 536)
        upstream.setblocking(False)
        await asyncio.get_running_loop().sock_connect(upstream, (host, int(port)))
        from_server, to_server = await asyncio.open_connection(sock=upstream, limit=1024)
        self._pairs.append((writer, to_server))
        for task in (
            self._pipe(reader, to_server, gated=False),
            self._pipe(from_server, writer, gated=True),
        ):
            started = asyncio.create_task(task)
            self._tasks.add(started)
            started.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, gated: bool
    ) -> None:
        try:
            while True:
                if gated:
                    await self._flowing.wait()
                data = await reader.read(1024)
                if not data:
                    writer.close()  # an orderly end: what is buffered is delivered first
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            writer.transport.abort()

    def cut(self) -> None:
        """Drop every connection through the proxy: both ends get a reset, nobody a frame."""
        for client_side, server_side in self._pairs:
            client_side.transport.abort()
            server_side.transport.abort()
        self._pairs.clear()

    def stall(self) -> None:
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()
