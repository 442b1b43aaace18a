"""Request IDs, given by the edge (app.http.edge) on a bare Starlette app (in memory, no server)."""

from __future__ import annotations

import logging
import os

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.http.edge import Edge
from app.http.request_id import request_id_from, request_id_of


async def crash(request: Request) -> Response:
    raise RuntimeError("secret detail")


async def echo(request: Request) -> Response:
    return PlainTextResponse(request_id_of(request))


def client() -> httpx.AsyncClient:
    app = Starlette(
        routes=[Route("/crash", crash), Route("/echo", echo)],
        middleware=[Middleware(Edge)],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abcdefgh", True),
        ("trace-0123:456.789_x", True),
        ("short", False),
        ("x" * 129, False),
        ("has space in it", False),
        ("<script>alert(1)</script>", False),
        ("", False),
        (None, False),
    ],
)
def test_only_well_formed_ids_are_kept(given: str | None, kept: bool) -> None:
    made = request_id_from(given)

    assert (made == given) is kept
    assert request_id_from(made) == made


async def test_the_handler_sees_the_id_the_response_carries() -> None:
    async with client() as c:
        response = await c.get("/echo", headers={"x-request-id": "given-id-123"})
        fresh = await c.get("/echo")

    assert response.text == response.headers["x-request-id"] == "given-id-123"
    assert fresh.text == fresh.headers["x-request-id"]


async def test_a_crash_anywhere_is_a_json_500_with_the_id_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="app.http"):
        async with client() as c:
            response = await c.get("/crash")

    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert "secret" not in response.text
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.exc_info is not None


def test_fresh_ids_are_distinct_and_128_bits_of_hex() -> None:
    made = {request_id_from(None) for _ in range(1000)}  # several times the 4 KiB read at once

    assert len(made) == 1000
    assert all(len(one) == 32 and int(one, 16) >= 0 for one in made)


def test_a_forked_process_never_repeats_its_parents_ids() -> None:
    request_id_from(None)  # the parent holds unread random bytes now
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        os.write(write, request_id_from(None).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)

    assert from_child != request_id_from(None)
