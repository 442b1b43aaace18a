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
