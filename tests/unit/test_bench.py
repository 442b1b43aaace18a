"""The bench's pure helpers: reading wrk and /proc, judging answers. No timing is asserted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import chart
from bench.queries import ShapeError, check_nested, check_product, check_users
from bench.run import (
    BenchError,
    Options,
    cpu_ms_per_request,
    cpu_ticks,
    problems_of,
    request_headers,
)
from bench.wrk import WrkError, header_options, parse_result

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:5000/graphql
  2 threads and 32 connections
  1700 requests in 10.02s, 1.20MB read
Requests/sec:    169.70
BENCH_RESULT {"requests": 1700, "duration_us": 10020000, "p50_us": 186940, "p90_us": 300000, \
"p99_us": 658750, "max_us": 700000, "mean_us": 190000.5, "non200": 2, "graphql_errors": 3, \
"connect_errors": 0, "read_errors": 1, "write_errors": 0, "timeouts": 4}
"""


def test_parse_result_reads_the_done_hook_line() -> None:
    result = parse_result(WRK_OUTPUT)

    assert result.requests == 1700
    assert result.rps == pytest.approx(1700 / 10.02)
    assert result.p50_ms == pytest.approx(186.94)
    assert result.p99_ms == pytest.approx(658.75)
    assert (result.non200, result.graphql_errors, result.socket_errors) == (2, 3, 5)


def test_parse_result_without_the_line_fails() -> None:
    with pytest.raises(WrkError, match="BENCH_RESULT"):
        parse_result("Running 10s test\nunable to connect to 127.0.0.1:5000\n")


def test_header_options_pass_every_header_to_wrk() -> None:
    assert header_options({"Content-Type": "application/json", "Authorization": "Bearer t"}) == [
        "-H",
        "Content-Type: application/json",
        "-H",
        "Authorization: Bearer t",
    ]


def test_cpu_ticks_survive_a_command_name_with_spaces_and_parentheses() -> None:
    fields = ["S", *[str(n) for n in range(4, 14)], "250", "40", *["0"] * 30]
    stat = "4242 (python (x) 3) " + " ".join(fields)

    assert cpu_ticks(stat) == 290


def test_cpu_per_request_counts_the_requests_left_in_flight() -> None:
    assert cpu_ms_per_request(2.0, completed=968, in_flight=32) == pytest.approx(2.0)
    assert cpu_ms_per_request(1.0, completed=0, in_flight=32) == 0.0


def test_options_reject_a_duration_that_is_not_a_number() -> None:
    with pytest.raises(BenchError, match="BENCH_DURATION"):
        Options.from_env({"BENCH_DURATION": "ten"})
    assert Options.from_env({"BENCH_DURATION": "2.5"}).duration == 2.5
    assert Options.from_env({}).connections == 32


def _product(pid: str = "UHJvZHVjdDox") -> dict[str, Any]:
    return {
        "product": {
            "id": pid,
            "sku": "SKU-00001",
            "name": "Quiet Lamp 1",
            "price": {"amount": "19.99", "currency": "USD"},
        }
    }


def test_check_product_accepts_the_product_asked_for_only() -> None:
    check_product(_product(), "UHJvZHVjdDox")
    with pytest.raises(ShapeError, match=r"product\.id"):
        check_product(_product("other"), "UHJvZHVjdDox")
    with pytest.raises(ShapeError, match="product is not an object"):
        check_product({"product": None}, "UHJvZHVjdDox")


def test_check_users_wants_fifty_distinct_users_with_emails() -> None:
    users = [{"node": {"id": f"id{n}", "email": f"u{n}@example.com"}} for n in range(50)]
    check_users({"users": {"edges": users}})
    with pytest.raises(ShapeError, match="49 edges"):
        check_users({"users": {"edges": users[:49]}})
    with pytest.raises(ShapeError, match="duplicate"):
        check_users({"users": {"edges": [*users[:49], users[0]]}})


def _nested(items: list[dict[str, Any]]) -> dict[str, Any]:
    order = {
        "id": "o1",
        "status": "PLACED",
        "total": {"amount": "10.00", "currency": "USD"},
        "items": items,
    }
    user = {
        "id": "u",
        "email": "u@example.com",
        "profile": {"displayName": "Ada L."},
        "orders": {"edges": [{"node": order}]},
    }
    return {"users": {"edges": [{"node": user}] * 20}}


def test_check_nested_follows_users_to_order_items_and_products() -> None:
    item = {
        "quantity": 2,
        "unitPrice": {"amount": "5.00"},
        "product": {"id": "p", "sku": "SKU-00001", "name": "Lamp"},
    }
    check_nested(_nested([item]))
    with pytest.raises(ShapeError, match=r"order\.items is empty"):
        check_nested(_nested([]))
    with pytest.raises(ShapeError, match=r"item\.product is not an object"):
        check_nested(_nested([{**item, "product": None}]))


def test_problems_flag_failed_and_missing_requests() -> None:
    clean = {"name": "a", "requests": 10, "non200": 0, "graphql_errors": 0, "socket_errors": 0}
    empty = {**clean, "name": "b", "requests": 0}
    failing = {**clean, "name": "c", "graphql_errors": 3}

    assert problems_of([clean]) == []
    problems = problems_of([clean, empty, failing])
    assert len(problems) == 2
    assert problems[0].message.startswith("b: no request completed")
    assert problems[1].message.startswith("c: 3 of 10 requests failed")
    # Failed requests are reported figures; only a query that measured nothing fails the bench.
    assert [problem.fatal for problem in problems] == [True, False]


def test_every_request_carries_the_bearer_token() -> None:
    headers = request_headers("t0ken")

    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["Content-Type"] == "application/json"


def test_subscriber_summary_is_median_and_nearest_rank_p99() -> None:
    from bench.subscribers import BenchError as SubscriberBenchError
    from bench.subscribers import summarize

    row = summarize(3, [i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert (row.subscribers, row.samples) == (3, 100)
    assert row.p50_ms == pytest.approx(50.5)
    assert row.p99_ms == pytest.approx(100.0)
    with pytest.raises(SubscriberBenchError):
        summarize(1, [])


def test_chart_averages_the_peers_rounds_beside_the_project(tmp_path: Path) -> None:
    project = {
        "when": "2026-12-01T15:00:00+00:00",
        "commit": "abc1234",
        "results": [
            {"name": "product by id", "cpu_ms_per_request": 0.25, "rps": 900.0, "p99_ms": 9.0},
            {"name": "nested users/orders", "cpu_ms_per_request": 5.0, "rps": 80.0, "p99_ms": 90.0},
        ],
    }
    row = {"peer": "apollo-dl", "query": "point", "rps": 1000.0, "p99_us": 4000}
    peers = {
        "rounds": [
            {
                "rows": [
                    {**row, "server_cpu_ms_per_req": 0.16},
                    {"peer": "x", "query": "list", "skipped": "down"},
                ]
            },
            {"rows": [{**row, "server_cpu_ms_per_req": 0.18}]},
        ]
    }
    figures = {"ordergraph": chart.project_figures(project), **chart.peer_figures(peers)}

    assert figures["apollo-dl"]["point"].cpu_ms == pytest.approx(0.17)
    assert "x" not in figures, "a skipped measurement is no figure"
    table = chart.markdown(figures)
    assert "| ordergraph | 0.25 | 900 | 9.0 | n/a | n/a | n/a | 5.00 | 80 | 90.0 |" in table
    assert "| apollo-dl | 0.17 | 1000 | 4.0 |" in table
    png = tmp_path / "chart.png"
    chart.chart(figures, png, "test")
    assert png.read_bytes().startswith(b"\x89PNG")
