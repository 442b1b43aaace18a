"""What one client may hold: WebSockets and subscriptions per address and per principal, frame
size, slow headers and bodies, and a client that goes away (issue 11)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from app.config import GraphQLLimits
from app.db.engine import Database
from app.http.server import MAX_HEADER_BYTES
from bench.servers import subprocess_server as serve_command
from tests.conftest import MakeDb
from tests.e2e.conftest import SMALL
from tests.e2e.ws_support import TRANSPORT_WS, WAIT, Server, ready_socket, serving, socket

STOCK = "subscription S($id: ID!) { productStockChanged(id: $id) { id stock } }"


@pytest.fixture(scope="module")
async def limits_db(make_db: MakeDb) -> Database:
    return await make_db("sqlite", "connection_limits", SMALL)


async def test_sockets_are_capped_per_address(limits_db: Database) -> None:
    async with (
        serving(limits_db, max_sockets_per_address=2) as server,
        ready_socket(server),
        ready_socket(server),
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with socket(server):
                pass
        assert refused.value.response.status_code == 403
    async with serving(limits_db, max_sockets_per_address=2) as server, ready_socket(server):
        async with ready_socket(server):
            pass
        async with ready_socket(server):  # a closed socket gave its place back
            pass


async def test_sockets_are_capped_per_principal(limits_db: Database) -> None:
    async with serving(limits_db, max_sockets_per_principal=2) as server:
        token = f"Bearer {server.admin_token()}"
        async with (
            ready_socket(server, authorization=token),
            ready_socket(server, authorization=token),
            socket(server) as third,
        ):
            await third.send({"type": "connection_init", "payload": {"Authorization": token}})
            assert await third.close_code() == 1013
            async with ready_socket(server):  # an anonymous socket is not that principal
                pass


async def test_subscriptions_are_capped_per_address_across_sockets(limits_db: Database) -> None:
    async with (
        serving(limits_db, max_subscriptions_per_address=3) as server,
        ready_socket(server) as first,
        ready_socket(server) as second,
    ):
        body = await server.http(
            "{ products(first: 1) { edges { node { id } } } }", server.admin_token()
        )
        product_id = body["data"]["products"]["edges"][0]["node"]["id"]
        for n in range(2):
            await first.start(f"a{n}", STOCK, {"id": product_id})
        await server.listening(2)
        await second.start("b0", STOCK, {"id": product_id})
        await server.listening(3)
        await second.start("b1", STOCK, {"id": product_id})
        refused = await second.receive()
        assert refused["type"] == "error", refused
        assert refused["id"] == "b1"
        assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_OPERATIONS"
        assert "WS_MAX_SUBSCRIPTIONS_PER_ADDRESS" in refused["payload"][0]["message"]
        await first.send({"type": "complete", "id": "a0"})
        await _subscriptions(server, 2)
        await second.start("b2", STOCK, {"id": product_id})
        await server.listening(3)


async def _subscriptions(server: Server, count: int) -> None:
    """Wait until exactly `count` subscriptions are served: one that ended has left the hub, and
    given back its place under the caps in the same step."""
    hub = server.state.subscriptions
    assert hub is not None
    for _ in range(int(WAIT / 0.01)):
        if hub.subscriber_count == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{hub.subscriber_count} subscriptions, not {count}")


async def test_a_frame_larger_than_a_request_body_closes_the_socket(
    limits_db: Database,
) -> None:
    async with serving(limits_db) as server, ready_socket(server) as client:
        limit = server.state.settings.graphql.max_body_bytes
        await client.send('{"type": "ping", "payload": {"pad": "' + "x" * limit + '"}}')
        assert await client.close_code() == 1009


async def _raw(base_url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base_url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def test_a_slow_body_is_timed_out_with_408(
    limits_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with serving(limits_db, graphql=GraphQLLimits(body_read_timeout=0.3)) as server:
        reader, writer = await _raw(server.base_url)
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"query":'
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), WAIT)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_a_client_that_goes_away_mid_body_is_logged_at_info(
    limits_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with serving(limits_db) as server:
        _reader, writer = await _raw(server.base_url)
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"query":'
        )
        await writer.drain()
        writer.close()
        for _ in range(int(WAIT / 0.02)):
            if any("client went away" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    went_away = [r for r in caplog.records if "client went away" in r.getMessage()]
    assert went_away, caplog.text
    assert went_away[0].levelno == logging.INFO
    assert went_away[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_serve_closes_connections_whose_headers_trickle_in(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'slow.sqlite3'}",
        "HEADER_READ_TIMEOUT": "0.5",
    }
    with serve_command(env, tmp_path / "serve.log", command="serve") as server:
        reader, writer = await _raw(server.base_url)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # and never the blank line
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), WAIT)
        writer.close()
        fine = await _healthz(server.base_url)
    assert answer == b"", "closed without an answer"
    assert fine.startswith(b"HTTP/1.1 200")


async def test_serve_refuses_request_headers_over_the_size_limit(tmp_path: Path) -> None:
    # uvicorn gathers an httptools request's URL by concatenation, with no limit: megabytes of
    # URL within the header deadline cost seconds of CPU, anonymously.
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'large.sqlite3'}"}
    with serve_command(env, tmp_path / "serve.log", command="serve") as server:
        reader, writer = await _raw(server.base_url)
        writer.write(b"GET /graphql?query=" + b"a" * (MAX_HEADER_BYTES + 1))  # no end in sight
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), WAIT)
        writer.close()
        fine = await _healthz(server.base_url)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert fine.startswith(b"HTTP/1.1 200")


async def _healthz(base_url: str) -> bytes:
    reader, writer = await _raw(base_url)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    return answer


async def test_serve_refuses_websocket_frames_beyond_the_body_limit(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'frames.sqlite3'}", "MAX_BODY_BYTES": "4096"}
    with serve_command(env, tmp_path / "serve.log", command="serve") as server:
        url = server.base_url.replace("http://", "ws://") + "/graphql"
        async with connect(
            url, subprotocols=[Subprotocol(TRANSPORT_WS)], open_timeout=WAIT, max_size=None
        ) as ws:
            await ws.send('{"type": "connection_init", "payload": {"pad": "' + "x" * 8000 + '"}}')
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
