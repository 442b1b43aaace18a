"""Rule violations the client can correct, reported as data rather than as crashes.

A use case that meets one raises `DomainError`; the unit of work rolls back and the resolver turns
each `Problem` into a `UserError` in the mutation's payload.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(enum.StrEnum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    SKU_TAKEN = "SKU_TAKEN"
    NOT_FOUND = "NOT_FOUND"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    INVALID_EMAIL = "INVALID_EMAIL"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    TOO_MANY_API_KEYS = "TOO_MANY_API_KEYS"


@dataclass(frozen=True, slots=True)
class Problem:
    code: Code
    message: str
    # The input path the problem is about, e.g. ("items", "1", "quantity"); None for the whole.
    field: tuple[str, ...] | None = None


class DomainError(Exception):
    """One or more problems; raising it inside a unit of work undoes everything the work did."""

    def __init__(self, *problems: Problem) -> None:
        if not problems:
            raise ValueError("a DomainError needs at least one problem")
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems

    @classmethod
    def of(cls, code: Code, message: str, *field: str) -> DomainError:
        return cls(Problem(code, message, field or None))


def check(problems: list[Problem]) -> None:
    """Raise the collected problems, if any, so a client learns of all of them at once."""
    if problems:
        raise DomainError(*problems)
