"""Strawberry objects whose derived fields are computed only when a query reads them.

A page of fifty orders has fifty global IDs, cursors and money strings to encode, and most
queries select few of them. A type lists such fields in `LAZY` (field name -> function of the
object); `assemble` sets only the stored attributes, so reading a lazy field misses the instance
and `__getattr__` computes it (once: the value is then stored). Executors read fields with
`getattr`, so they need not know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="Lazy")


class Lazy:
    LAZY: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    def __getattr__(self, name: str) -> Any:
        compute = type(self).LAZY.get(name)
        if compute is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = compute(self)
        self.__dict__[name] = value
        return value


def assemble(cls: type[T], **stored: Any) -> T:
    """An instance with `stored` set and its LAZY fields left to compute: the dataclass
    __init__, which would want every field, is not called."""
    instance = object.__new__(cls)
    instance.__dict__.update(stored)
    return instance
