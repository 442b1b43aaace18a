"""Why a request's credentials were refused, before any GraphQL runs."""

from __future__ import annotations


class InvalidCredentials(Exception):
    """An invalid, expired or revoked token or key: HTTP 401 with `WWW-Authenticate`."""

    def __init__(self, message: str, error: str = "invalid_token") -> None:
        super().__init__(message)
        self.message = message
        self.error = error


class TooManyRequests(Exception):
    """The credential's token bucket is empty: HTTP 429 with `Retry-After`."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded; retry after {retry_after} s")
        self.retry_after = retry_after
