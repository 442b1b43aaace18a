"""Request IDs tie a client's report to the server's log lines."""

from __future__ import annotations

import re
import uuid

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")


def request_id_from(header_value: str | None) -> str:
    """The client's ID when it is safe to log and echo, otherwise a fresh one."""
    if header_value and _WELL_FORMED.match(header_value):
        return header_value
    return uuid.uuid4().hex
