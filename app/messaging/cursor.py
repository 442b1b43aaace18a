"""Subscription cursors: an event's position in the store's global order, opaque to clients.

Opaque so the encoding can change (a second component, a shard) without breaking clients that
only store the string and hand it back as `after`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta

from app.errors import BadUserInput, CursorExpired
from app.repositories.events import Mark

_PREFIX = "ev1:"


def encode(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{position}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int:
    """The position a cursor names; BAD_USER_INPUT for anything this server did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadUserInput("`after` is not a subscription cursor") from None
    digits = raw.removeprefix(_PREFIX)
    if raw == digits or not digits.isdigit() or len(digits) > 18:
        raise BadUserInput("`after` is not a subscription cursor")
    return int(digits)


def check_resumable(position: int, mark: Mark, now: datetime, window: timedelta) -> None:
    """Refuse a cursor the store can no longer replay after (CURSOR_EXPIRED) or never knew.

    The cursor's own event must still be kept and lie within the replay window: then every
    later event is kept too (retention removes the oldest first and only outside the window).
    """
    if mark.occurred_at is None:
        if mark.first_kept is None or position < mark.first_kept:
            raise CursorExpired("the cursor is older than the events kept for replay; refetch")
        raise BadUserInput("`after` names no event of this server")
    if mark.occurred_at < now - window:
        raise CursorExpired("the cursor is older than the replay window; refetch and resubscribe")
