"""Errors a client can act on. Each carries the `extensions.code` the API reports for it."""

from __future__ import annotations


class ApiError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadUserInput(ApiError):
    code = "BAD_USER_INPUT"


class NotFound(ApiError):
    code = "NOT_FOUND"


class ServiceUnavailable(ApiError):
    code = "SERVICE_UNAVAILABLE"


class Unauthenticated(ApiError):
    """Credentials are needed and none were sent."""

    code = "UNAUTHENTICATED"


class Forbidden(ApiError):
    """The principal is known but lacks the scope; used where existence is no secret."""

    code = "FORBIDDEN"


class RateLimited(ApiError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Retryable(ApiError):
    """A write lost a race or waited too long for a lock; running it again may well succeed.

    Use cases retry these a bounded number of times; a client only sees one when every retry
    failed, and may then retry the request itself.
    """


class ConcurrencyConflict(Retryable):
    """Another writer changed the aggregate since it was read (a stream version was taken)."""

    code = "CONFLICT"


class DatabaseBusy(Retryable, ServiceUnavailable):
    """A lock was not granted in time (SQLite's busy timeout, PostgreSQL's lock or deadlock)."""

    code = "SERVICE_UNAVAILABLE"
