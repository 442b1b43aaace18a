"""Event settings: defaults, parsing, and the test-only switches refused in production."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from app.config import ConfigError, EventSettings, Settings, production_problems
from app.domain.events import Event
from app.messaging.broker import decode, encode


def test_defaults_and_parsing() -> None:
    assert Settings.from_env({}).events == EventSettings()
    parsed = Settings.from_env(
        {
            "EVENTS_STREAM_MAXLEN": "5000",
            "EVENTS_RELAY_POLL_SECONDS": "0.5",
            "EVENTS_RELAY_BATCH": "50",
            "OG_FAULT_CRASH_AFTER_COMMIT": "2",
            "OG_TEST_EVENT_PROBE": "true",
            "EVENTS_REPLAY_WINDOW_SECONDS": "3600",
        }
    ).events
    assert parsed == EventSettings(5000, 0.5, 50, 2, True, 3600.0)


@pytest.mark.parametrize(
    "switch", [{"OG_FAULT_CRASH_AFTER_COMMIT": "1"}, {"OG_TEST_EVENT_PROBE": "1"}]
)
def test_test_only_switches_are_refused_in_production(switch: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="refused when APP_ENV=production"):
        Settings.from_env({"APP_ENV": "production", **switch})
    assert Settings.from_env({"APP_ENV": "staging", **switch}).events != EventSettings()


def test_production_problems_name_the_switches() -> None:
    settings = Settings.from_env({"OG_TEST_EVENT_PROBE": "1"})
    production = replace(settings, auth=replace(settings.auth, environment="production"))
    assert any("OG_TEST_EVENT_PROBE" in problem for problem in production_problems(production))


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
