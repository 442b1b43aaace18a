"""The in-process bus, the dispatcher's backoff and the email configuration, without I/O."""

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


async def test_subscribers_get_their_events_until_they_unsubscribe() -> None:
    bus = EventBus()
    got: list[tuple[str, str]] = []

    async def orders(event: Event) -> None:
        got.append(("orders", event.type))

    async def everything(event: Event) -> None:
        got.append(("all", event.type))

    stop = bus.subscribe(EventType.ORDER_CREATED, orders)
    bus.subscribe(ALL_EVENTS, everything, name="all")
    await bus.publish(_event())
    await bus.publish(_event(EventType.ORDER_CANCELLED))
    stop()
    await bus.publish(_event())
    assert got == [
        ("orders", "OrderCreated"),
        ("all", "OrderCreated"),
        ("all", "OrderCancelled"),
        ("all", "OrderCreated"),
    ]
    with pytest.raises(ValueError, match="already exists"):
        bus.subscribe(EventType.ORDER_CREATED, everything, name="all")


async def test_a_failing_handler_does_not_stop_the_others() -> None:
    bus = EventBus()
    ran: list[str] = []

    async def broken(event: Event) -> None:
        raise RuntimeError("boom")

    async def fine(event: Event) -> None:
        ran.append("fine")

    bus.subscribe(EventType.ORDER_CREATED, broken, name="broken")
    bus.subscribe(EventType.ORDER_CREATED, fine, name="fine")
    outcomes = await bus.publish(_event())
    assert isinstance(outcomes["broken"], RuntimeError)
    assert outcomes["fine"] is None
    assert ran == ["fine"]
    assert list(await bus.publish(_event(), only={"fine"})) == ["fine"]


async def test_middlewares_wrap_handlers_outermost_first() -> None:
    trail: list[str] = []

    def middleware(label: str) -> Any:
        async def wrap(event: Event, name: str, call_next: Handler) -> None:
            trail.append(f"{label}>{name}")
            await call_next(event)
            trail.append(f"<{label}")

        return wrap

    bus = EventBus([middleware("a")])
    bus.use(middleware("b"))

    async def handler(event: Event) -> None:
        trail.append("handler")

    bus.subscribe(EventType.ORDER_CREATED, handler, name="h")
    await bus.publish(_event())
    assert trail == ["a>h", "b>h", "handler", "<b", "<a"]


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
