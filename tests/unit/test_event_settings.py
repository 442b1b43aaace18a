"""Event settings: defaults and parsing; test-only switches are no settings of the app."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.config import ConfigError, EventSettings, Settings
from app.domain.events import Event
from app.messaging.broker import decode, encode


def test_defaults_and_parsing() -> None:
    assert Settings.from_env({}).events == EventSettings()
    parsed = Settings.from_env(
        {
            "EVENTS_STREAM_MAXLEN": "5000",
            "EVENTS_RELAY_POLL_SECONDS": "0.5",
            "EVENTS_RELAY_BATCH": "50",
            "EVENTS_REPLAY_WINDOW_SECONDS": "3600",
            "EVENTS_DISPATCH_CONCURRENCY": "3",
        }
    ).events
    assert parsed == EventSettings(5000, 0.5, 50, replay_window=3600.0, dispatch_concurrency=3)


def test_the_served_app_has_no_test_switches() -> None:
    """Fault injection and probes exist only in tests.instrumented's app, never in `serve`'s."""
    from app.main import create_app

    app = create_app(Settings.from_env({"OG_TEST_EVENT_PROBE": "1"}))
    paths = {getattr(route, "path", "") for route in app.routes}
    assert "/_test/events" not in paths
    assert "/graphql" in paths


def test_a_poll_of_zero_is_refused() -> None:
    with pytest.raises(ConfigError, match="EVENTS_RELAY_POLL_SECONDS"):
        Settings.from_env({"EVENTS_RELAY_POLL_SECONDS": "0"})


def test_events_survive_the_stream_encoding() -> None:
    event = Event(
        id=uuid.uuid4(),
        stream_id=uuid.uuid4(),
        stream_type="Order",
        version=3,
        type="OrderCreated",
        occurred_at=datetime(2026, 5, 1, 12, 30, tzinfo=UTC),
        payload={"total": {"amount": "12.50", "currency": "EUR"}, "items": [1, 2]},
        sequence=42,
    )
    assert decode(encode(event)) == event
