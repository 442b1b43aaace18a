"""Subscription cursors: opaque, round-tripping, strict about what they accept, and expiring with
the replay window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.errors import BadUserInput, CursorExpired
from app.messaging import cursor
from app.repositories.events import Mark

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


@pytest.mark.parametrize("position", [0, 1, 42, 10**17])
def test_a_cursor_names_its_position_and_nothing_readable(position: int) -> None:
    encoded = cursor.encode(position)
    assert str(position) not in encoded
    assert cursor.decode(encoded) == position


@pytest.mark.parametrize(
    "bad",
    # empty, garbage, not base64, then "ev1:-1", "ev2:1", "ev1:1x" and a pagination cursor
    ["", "abc", "!!!", "ZXYxOi0x", "ZXYyOjE", "ZXYxOjF4", "b3JkZXI6MQ"],
)
def test_anything_else_is_bad_user_input(bad: str) -> None:
    with pytest.raises(BadUserInput):
        cursor.decode(bad)


def test_a_kept_event_inside_the_window_can_be_resumed_after() -> None:
    cursor.check_resumable(5, Mark(NOW - timedelta(days=6), 1), NOW, WEEK)


def test_an_event_outside_the_window_has_expired() -> None:
    with pytest.raises(CursorExpired):
        cursor.check_resumable(5, Mark(NOW - timedelta(days=8), 1), NOW, WEEK)


def test_an_event_no_longer_kept_has_expired_and_one_never_given_is_bad_input() -> None:
    with pytest.raises(CursorExpired):
        cursor.check_resumable(5, Mark(None, 9), NOW, WEEK)
    with pytest.raises(CursorExpired):
        cursor.check_resumable(5, Mark(None, None), NOW, WEEK)
    with pytest.raises(BadUserInput):
        cursor.check_resumable(50, Mark(None, 9), NOW, WEEK)
