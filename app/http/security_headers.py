"""Headers every HTTP response carries, whatever route or refusal produced it.

`X-Content-Type-Options: nosniff` stops a browser from reading a JSON answer (which may echo
client text) as HTML or script. `Strict-Transport-Security` is sent only on responses served over
https: on plain http a browser ignores it, and on a development machine it would pin `localhost`
to https for a year. Behind a TLS-terminating proxy the scheme is https when the proxy is trusted
(FORWARDED_ALLOW_IPS) and says so in `X-Forwarded-Proto`.
"""

from __future__ import annotations

NOSNIFF = (b"x-content-type-options", b"nosniff")
HSTS_HEADER = b"strict-transport-security"

Header = tuple[bytes, bytes]


class SecurityHeaders:
    """The headers for a request's scheme, worked out once (app.http.edge adds them)."""

    def __init__(self, hsts_seconds: int = 31_536_000) -> None:
        hsts = (HSTS_HEADER, f"max-age={hsts_seconds}".encode("latin-1"))
        self._plain: tuple[Header, ...] = (NOSNIFF,)
        self._https: tuple[Header, ...] = (NOSNIFF, hsts) if hsts_seconds > 0 else (NOSNIFF,)

    def for_scheme(self, scheme: str | None) -> tuple[Header, ...]:
        """What a response to a request over `scheme` carries (any copy it had is replaced)."""
        return self._https if scheme == "https" else self._plain
