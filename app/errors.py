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


class CursorExpired(ApiError):
    """A subscription asked to resume after an event older than the store keeps for replay:
    refetch the state and subscribe afresh."""

    code = "CURSOR_EXPIRED"


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


LOST_RACE_MESSAGE = "The request lost a race with another change; retry"


class ConcurrencyConflict(Retryable, ServiceUnavailable):
    """Another writer changed the aggregate since it was read (a stream version was taken).

    Use cases retry it; a client sees it only when every retry lost, as SERVICE_UNAVAILABLE with
    a fixed message. `detail` (which may name rows and versions) is for the log only.
    """

    code = "SERVICE_UNAVAILABLE"

    def __init__(self, detail: str) -> None:
        super().__init__(LOST_RACE_MESSAGE)
        self.detail = detail


class DatabaseBusy(Retryable, ServiceUnavailable):
    """A lock was not granted in time (SQLite's busy timeout, PostgreSQL's lock or deadlock)."""

    code = "SERVICE_UNAVAILABLE"
