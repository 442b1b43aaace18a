"""A user's own profile: names and how the API shows them."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime

from app.domain.errors import Problem, check
from app.domain.events import Event, EventType, StreamType, new_event
from app.domain.models import Profile, display_name_for
from app.domain.text import one_line

MAX_NAME = 100
MAX_DISPLAY_NAME = 200


class Keep(enum.Enum):
    """Marks a profile field the client did not send."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class ProfileChanges:
    """Which fields to change; a field left as `KEEP` stays as it is, None clears it."""

    first_name: str | Keep | None = KEEP
    last_name: str | Keep | None = KEEP
    display_name: str | Keep | None = KEEP


def _clean(
    value: str | Keep | None, current: str | None, field: str, limit: int, problems: list[Problem]
) -> str | None:
    if value is KEEP:
        return current
    if value is None:
        return None
    return one_line(value, field, limit, problems) or None


def update_profile(
    profile: Profile,
    changes: ProfileChanges,
    *,
    email: str,
    stream_version: int,
    now: datetime,
) -> tuple[Profile, Event | None]:
    """The changed profile and its event; no event when nothing changes.

    A cleared display name falls back to the one derived from the names and email, as at sign-up.
    """
    problems: list[Problem] = []
    first = _clean(changes.first_name, profile.first_name, "firstName", MAX_NAME, problems)
    last = _clean(changes.last_name, profile.last_name, "lastName", MAX_NAME, problems)
    if changes.display_name is KEEP:
        display = profile.display_name
    else:
        chosen = _clean(changes.display_name, None, "displayName", MAX_DISPLAY_NAME, problems)
        display = chosen or display_name_for(first, last, email)
    check(problems)
    changed = dataclasses.replace(profile, first_name=first, last_name=last, display_name=display)
    if changed == profile:
        return profile, None
    payload = {
        key: getattr(changed, attr)
        for key, attr in (
            ("firstName", "first_name"),
            ("lastName", "last_name"),
            ("displayName", "display_name"),
        )
        if getattr(changed, attr) != getattr(profile, attr)
    }
    event = new_event(
        EventType.PROFILE_UPDATED,
        StreamType.USER,
        profile.user_id,
        stream_version + 1,
        payload,
        now,
    )
    return changed, event
