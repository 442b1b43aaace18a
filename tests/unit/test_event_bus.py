"""The in-process bus, the dispatcher's backoff and the email configuration, without I/O.

That the dispatcher takes events to their handlers through the bus (middlewares, unsubscribing,
a failing handler apart from the others) is in tests/integration/test_dispatcher.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.config import ConfigError, Settings
from app.db.engine import Database
from app.db.urls import DatabaseUrl
from app.domain.events import Event, EventType, StreamType, new_event
from app.email import ConsoleEmailSender, SmtpEmailSender, SmtpSettings, sender_from
from app.messaging.bus import ALL_EVENTS, EventBus, Handler
from app.messaging.dispatcher import Dispatcher

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def _event(type_: EventType = EventType.ORDER_CREATED) -> Event:
    return new_event(type_, StreamType.ORDER, uuid.uuid4(), 1, {}, NOW)


def _names(bus: EventBus, type_: EventType) -> list[str]:
    return [subscription.name for subscription in bus.subscriptions_for(type_)]


def test_subscriptions_are_per_type_or_for_all_until_unsubscribed() -> None:
    bus = EventBus()

    async def orders(event: Event) -> None: ...

    async def everything(event: Event) -> None: ...

    stop = bus.subscribe(EventType.ORDER_CREATED, orders)
    bus.subscribe(ALL_EVENTS, everything, name="all")
    assert _names(bus, EventType.ORDER_CREATED) == [f"{__name__}.{orders.__qualname__}", "all"]
    assert _names(bus, EventType.ORDER_CANCELLED) == ["all"]
    stop()
    assert _names(bus, EventType.ORDER_CREATED) == ["all"]
    stop()  # twice is harmless
    with pytest.raises(ValueError, match="already exists"):
        bus.subscribe(EventType.ORDER_CREATED, everything, name="all")


async def test_delivery_runs_the_middlewares_outermost_first_and_returns_the_failure() -> None:
    trail: list[str] = []

    def middleware(label: str) -> Any:
        async def wrap(event: Event, name: str, call_next: Handler) -> None:
            trail.append(f"{label}>{name}")
            try:
                await call_next(event)
            finally:
                trail.append(f"<{label}")

        return wrap

    bus = EventBus([middleware("a"), middleware("b")])

    async def handler(event: Event) -> None:
        trail.append("handler")

    async def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(EventType.ORDER_CREATED, handler, name="h")
    bus.subscribe(EventType.ORDER_CREATED, broken, name="broken")
    fine, failing = bus.subscriptions_for(EventType.ORDER_CREATED)
    await bus.deliver(_event(), fine)
    assert trail == ["a>h", "b>h", "handler", "<b", "<a"]
    trail.clear()
    # The dispatcher, not the bus, records a failure and retries that handler alone.
    with pytest.raises(RuntimeError, match="boom"):
        await bus.deliver(_event(), failing)
    assert trail == ["a>broken", "b>broken", "<b", "<a"]


def test_backoff_doubles_up_to_a_ceiling() -> None:
    url = DatabaseUrl.parse("sqlite:///var/unused.sqlite3")
    db = Database(url, Settings(database_url=str(url)))
    dispatcher = Dispatcher(db, EventBus(), max_delay=timedelta(seconds=10))
    delays = [dispatcher.backoff(n).total_seconds() for n in range(1, 7)]
    assert delays == [1, 2, 4, 8, 10, 10]
    assert dispatcher.backoff(500) == timedelta(seconds=10)
    with pytest.raises(ValueError, match="lease"):
        Dispatcher(db, EventBus(), handler_timeout=600, lease=timedelta(seconds=60))


def test_email_goes_to_the_log_unless_smtp_is_configured() -> None:
    assert isinstance(sender_from(None, "x@example.com"), ConsoleEmailSender)
    assert isinstance(sender_from("smtp://mail.example.com", "x@example.com"), SmtpEmailSender)
    s = SmtpSettings.parse("smtp://us%40er:p%3Ass@mail.example.com:587?starttls=true")
    assert (s.host, s.port, s.username, s.password, s.use_tls, s.start_tls) == (
        "mail.example.com",
        587,
        "us@er",
        "p:ss",
        False,
        True,
    )
    implicit = SmtpSettings.parse("smtps://mail.example.com")
    assert (implicit.port, implicit.use_tls, implicit.username) == (465, True, None)
    for bad in ("http://mail.example.com", "smtp://", "smtp://host:99999"):
        with pytest.raises(ConfigError):
            SmtpSettings.parse(bad)


def test_settings_read_the_email_configuration() -> None:
    settings = Settings.from_env({"SMTP_URL": "smtp://h", "EMAIL_FROM": "shop <s@example.com>"})
    assert (settings.smtp_url, settings.email_from) == ("smtp://h", "shop <s@example.com>")
    assert Settings.from_env({}).smtp_url is None
