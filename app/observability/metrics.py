"""The process's Prometheus metrics (prometheus-client) and how /metrics renders them.

Metrics live in prometheus-client's default registry, created at import. Several worker processes
on one host (`WORKERS=N`) share them through its multi-process mode: `python -m app serve` sets
PROMETHEUS_MULTIPROC_DIR before any worker imports this module, each process writes its values to
files there, and whichever process answers a scrape adds them up (gauges of live things are summed
over live processes only).

Recording stays off the hot path's budget: label children are bound once where labels are fixed,
and operation names, which clients choose, are bounded (`OperationNames`) so a client cannot grow
the number of series without end.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_COUNTS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100)
_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

HTTP_DURATION = Histogram(
    "og_http_request_duration_seconds",
    "HTTP requests by route and status class, from the first byte in to the last byte out.",
    ["route", "status"],
    buckets=_SECONDS,
)
OPERATION_DURATION = Histogram(
    "og_graphql_operation_duration_seconds",
    "GraphQL operations by transport, operation name and outcome.",
    ["transport", "operation", "outcome"],
    buckets=_SECONDS,
)
SQL_STATEMENTS = Histogram(
    "og_graphql_sql_statements",
    "SQL statements one GraphQL operation issued.",
    ["transport"],
    buckets=_COUNTS,
)
SQL_ROUND_TRIPS = Histogram(
    "og_graphql_sql_round_trips",
    "Waits for the database one GraphQL operation made (statements, prepares, BEGIN, COMMIT).",
    ["transport"],
    buckets=_COUNTS,
)
LOADER_BATCH = Histogram(
    "og_dataloader_batch_size",
    "Keys one DataLoader batch asked the database for.",
    ["loader"],
    buckets=_SIZES,
)
POOL_IN_USE = Gauge(
    "og_db_pool_connections_in_use",
    "Pooled database connections checked out now.",
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "og_db_pool_waiting",
    "Borrowers waiting for a pooled database connection now.",
    multiprocess_mode="livesum",
)
WEBSOCKETS = Gauge(
    "og_websocket_connections",
    "Open GraphQL WebSocket connections.",
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS = Gauge(
    "og_websocket_subscriptions",
    "Active GraphQL subscriptions.",
    multiprocess_mode="livesum",
)
OUTBOX_LAG_EVENTS = Gauge(
    "og_outbox_unpublished_events",
    "Committed events not yet handed to the broker, as the relay last saw them.",
    multiprocess_mode="max",
)
OUTBOX_LAG_SECONDS = Gauge(
    "og_outbox_lag_seconds",
    "Age of the oldest committed event not yet handed to the broker, as the relay last saw it.",
    multiprocess_mode="max",
)
RELAY_DELAY = Histogram(
    "og_relay_delay_seconds",
    "From an event's commit to its hand-over to the broker.",
    buckets=_SECONDS,
)
RATE_LIMITED = Counter(
    "og_rate_limit_refusals",
    "Requests refused by a rate limit, by limit.",
    ["limit"],
)


class OperationNames:
    """Operation names as metric labels: well-formed GraphQL names, at most `limit` distinct ones
    per process (later newcomers are counted as `other`); nameless operations are `anonymous`."""

    _NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if name in self._known:
            return name
        if not self._NAME.match(name):
            return "other"
        with self._lock:
            if len(self._known) >= self.limit:
                return "other"
            self._known.add(name)
        return name


OPERATION_NAMES = OperationNames()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def _registry() -> CollectorRegistry:
    """This process's registry, or in multi-process mode one that reads every worker's files."""
    directory = multiprocess_dir()
    if directory is None:
        return REGISTRY
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def render() -> bytes:
    """The text exposition of every metric (all workers' in multi-process mode)."""
    return generate_latest(_registry())


def serve_separately(host: str, port: int) -> None:
    """METRICS_PORT: the metrics on their own listener (a daemon thread of this process), for a
    scraper on a private network."""
    start_http_server(port, addr=host, registry=_registry())


def process_exited(pid: int) -> None:
    """Drop a finished worker's live gauges (multi-process mode only)."""
    if multiprocess_dir() is not None:
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


_operation_children: dict[tuple[str, str, str], Any] = {}
_sql_children: dict[str, tuple[Any, Any]] = {}


def outcome_of(body: Mapping[str, Any]) -> str:
    """A GraphQL response's outcome: ok, error (executed, with errors), refused (never executed),
    unavailable (a dependency or the deadline) or rate_limited."""
    errors = body.get("errors")
    if not errors:
        return "ok"
    codes = {(e.get("extensions") or {}).get("code") for e in errors}
    if "SERVICE_UNAVAILABLE" in codes:
        return "unavailable"
    if "RATE_LIMITED" in codes:
        return "rate_limited"
    return "error" if "data" in body else "refused"


def observe_operation(
    transport: str,
    name: str | None,
    outcome: str,
    seconds: float,
    statements: int | None = None,
    round_trips: int = 0,
) -> None:
    """One operation's duration; its SQL counts where it executed (`statements` not None)."""
    label = OPERATION_NAMES.label(name)
    key = (transport, label, outcome)
    child = _operation_children.get(key)
    if child is None:
        child = _operation_children[key] = OPERATION_DURATION.labels(transport, label, outcome)
    child.observe(seconds)
    if statements is None:
        return
    sql = _sql_children.get(transport)
    if sql is None:
        sql = _sql_children[transport] = (
            SQL_STATEMENTS.labels(transport),
            SQL_ROUND_TRIPS.labels(transport),
        )
    sql[0].observe(statements)
    sql[1].observe(round_trips)
