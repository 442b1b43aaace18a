"""The subscriber bench's clients: thousands of WebSocket subscribers in one process, each as cheap
as a real socket can be, so that the bench measures the server rather than its own clients.

A general-purpose client (`websockets`) costs tens of microseconds of Python per message and a
task wake-up per socket; 10,000 of them in one process on a 2-core machine took longer to read
one event's 10,000 messages than the server took to send them, and that queueing was counted as
the server's latency. Here every socket is a plain `asyncio.Protocol` speaking just enough of
RFC 6455 (a client handshake, masked frames out, unmasked frames in, ping/pong, close) and of
graphql-transport-ws (init, subscribe, ping/pong); a message is timestamped when its bytes
arrive, before it is parsed. The bench (bench.subscribers) spreads a group's sockets over a few
such processes and talks to each through JSON lines on its stdin and stdout:

    {"op": "open", "url", "query", "variables", "indexes": [start, stop], "documents", "at_once"}
                               -> {"op": "opened", "count"}
    (spontaneously)            -> {"op": "seen"} once every socket has received an event
                               -> {"op": "done", "version"} once every socket received that one
                               -> {"op": "failed", "message"} when a socket breaks
    {"op": "report"}           -> {"op": "report", "times": {version: [unix times]}}
                                  (and the sockets are closed)
    {"op": "exit"}
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
WAIT = 30.0


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 section 5.2), final, of one opcode."""
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    mask = os.urandom(4)
    key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
    masked = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big") if length else b""
    return head + mask + masked


class Frames:
    """Splits the server's (unmasked) frames out of a byte stream."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buffer = self._buffer
        buffer += data
        found: list[tuple[int, bytes]] = []
        start = 0
        end = len(buffer)
        while end - start >= 2:
            first, second = buffer[start], buffer[start + 1]
            if second & 0x80:
                raise ValueError("the server sent a masked frame")
            length = second & 0x7F
            offset = start + 2
            if length == 126:
                if end - offset < 2:
                    break
                (length,) = struct.unpack_from("!H", buffer, offset)
                offset += 2
            elif length == 127:
                if end - offset < 8:
                    break
                (length,) = struct.unpack_from("!Q", buffer, offset)
                offset += 8
            if end - offset < length:
                break
            if not first & 0x80:
                raise ValueError("the server sent a fragmented message")
            found.append((first & 0x0F, bytes(buffer[offset : offset + length])))
            start = offset + length
        del buffer[:start]
        return found


class Subscriber(asyncio.Protocol):
    """One socket with one graphql-transport-ws subscription; calls `on_next(index, version,
    received_at)` for each event it is sent (the event's stream version)."""

    def __init__(
        self,
        url: str,
        payload: dict[str, Any],
        index: int,
        on_next: Callable[[int, int, float], None],
        on_failure: Callable[[str], None],
    ) -> None:
        parts = urlsplit(url)
        self._host = parts.netloc
        self._path = parts.path or "/"
        self._payload = payload
        self.index = index
        self._on_next = on_next
        self._on_failure = on_failure
        self._key = base64.b64encode(os.urandom(16))
        self._head = b""
        self._frames = Frames()
        self._transport: asyncio.Transport | None = None
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._transport.write(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            % (self._path.encode(), self._host.encode(), self._key)
        )

    def data_received(self, data: bytes) -> None:
        received_at = time.time()  # before any parsing: what the socket handed over, when
        if self._head is not None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self._head[:end], self._head[end + 4 :]
            self._head = None  # type: ignore[assignment]
            self._upgraded(head)
        try:
            frames = self._frames.feed(data)
        except ValueError as error:
            self._fail(str(error))
            return
        for opcode, body in frames:
            if opcode == TEXT:
                self._message(body, received_at)
            elif opcode == PING:
                self._send(PONG, body)
            elif opcode == CLOSE:
                self._close_received(body)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if not self._closing:
            self._fail(f"socket {self.index} lost: {exc or 'closed by the server'}")

    def close(self) -> None:
        """Start the closing handshake (the server closes the TCP connection)."""
        if self._transport is None or self._transport.is_closing():
            if not self.closed.done():
                self.closed.set_result(None)
            return
        self._closing = True
        self._send(CLOSE, struct.pack("!H", 1000))

    def _upgraded(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 101"):
            self._fail(f"the handshake was answered {lines[0]!r}")
            return
        accept = base64.b64encode(hashlib.sha1(self._key + GUID).digest())
        if not any(
            line.lower().startswith(b"sec-websocket-accept:")
            and line.split(b":", 1)[1].strip() == accept
            for line in lines[1:]
        ):
            self._fail("the handshake's Sec-WebSocket-Accept is wrong")
            return
        self._send_json({"type": "connection_init", "payload": {}})

    def _message(self, body: bytes, received_at: float) -> None:
        message = orjson.loads(body)
        kind = message.get("type")
        if kind == "next":
            version = message["payload"]["extensions"]["event"]["version"]
            self._on_next(self.index, int(version), received_at)
        elif kind == "ping":
            self._send_json({"type": "pong"})
        elif kind == "connection_ack":
            self._send_json({"type": "subscribe", "id": "1", "payload": self._payload})
            if not self.subscribed.done():
                self.subscribed.set_result(None)
        elif kind != "pong":
            self._fail(f"socket {self.index} was sent {body[:300]!r}")

    def _close_received(self, body: bytes) -> None:
        if not self._closing:
            self._fail(f"socket {self.index} closed by the server: {body[:120]!r}")
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def _send_json(self, message: dict[str, Any]) -> None:
        self._send(TEXT, json.dumps(message).encode())

    def _send(self, opcode: int, payload: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame(opcode, payload))

    def _fail(self, message: str) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(message))
        self._closing = True
        self._on_failure(message)
        if self._transport is not None:
            self._transport.close()


class Process:
    """This client process: its sockets, what they received, and the bench's commands."""

    def __init__(self) -> None:
        self.sockets: list[Subscriber] = []
        self.size = 0
        self.times: dict[int, list[float]] = {}
        self.seen: set[int] = set()
        self.failed = False

    def say(self, **message: Any) -> None:
        sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
        sys.stdout.buffer.flush()

    def on_next(self, index: int, version: int, received_at: float) -> None:
        received = self.times.get(version)
        if received is None:
            received = self.times[version] = []
        received.append(received_at)
        if len(received) == self.size:
            self.say(op="done", version=version)
        if len(self.seen) < self.size:
            self.seen.add(index)
            if len(self.seen) == self.size:
                self.say(op="seen")

    def on_failure(self, message: str) -> None:
        if not self.failed:
            self.failed = True
            self.say(op="failed", message=message)

    async def open(self, command: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        parts = urlsplit(command["url"])
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        gate = asyncio.Semaphore(int(command["at_once"]))
        start, stop = command["indexes"]

        async def one(index: int) -> Subscriber:
            payload = {
                "query": command["query"] % f"d{index % command['documents']}",
                "variables": command["variables"],
            }
            async with gate:
                _, subscriber = await loop.create_connection(
                    lambda: Subscriber(
                        command["url"], payload, index, self.on_next, self.on_failure
                    ),
                    host,
                    port,
                )
                await asyncio.wait_for(subscriber.subscribed, WAIT)
            return subscriber

        self.sockets = []
        self.size = stop - start
        self.times = {}
        self.seen = set()
        self.failed = False
        try:
            self.sockets = list(await asyncio.gather(*(one(i) for i in range(start, stop))))
        except (OSError, ConnectionError, TimeoutError) as error:
            self.say(op="failed", message=f"opening sockets: {error!r}")
            return
        self.say(op="opened", count=len(self.sockets))

    async def report(self) -> None:
        self.say(op="report", times={str(v): t for v, t in self.times.items()})
        for subscriber in self.sockets:
            subscriber.close()
        closing = [s.closed for s in self.sockets]
        if closing:
            await asyncio.wait(closing, timeout=WAIT)
        self.sockets = []


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    process = Process()
    while line := await reader.readline():
        command = json.loads(line)
        if command["op"] == "open":
            await process.open(command)
        elif command["op"] == "report":
            await process.report()
        elif command["op"] == "exit":
            return


def main() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    main()
