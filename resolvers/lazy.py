"""Strawberry objects whose derived fields are computed only when a query reads them.

A page of fifty orders has fifty global IDs, cursors and money strings to encode, and most
queries select few of them. A type lists such fields in `LAZY` (field name -> function of the
object); `assemble` sets only the stored attributes, so reading a lazy field computes it (once:
the value is then stored on the instance). Executors read fields with `getattr`, so they need not
know.

The first read of a lazy field misses the instance and lands in `__getattr__`, which puts a
`_Computed` descriptor on the class for every LAZY field: later reads find it without the failed
lookup (an AttributeError raised and caught) that reaching `__getattr__` costs, about a third of
a field read on a large page. They are put there only then, after the class's `@strawberry.type`
has run, because a class attribute seen by the dataclass machinery would become the field's
default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")


class _Computed:
    """A non-data descriptor: the instance's stored value, once computed, shadows it."""

    __slots__ = ("compute", "name")

    def __init__(self, name: str, compute: Callable[[Any], Any]) -> None:
        self.name = name
        self.compute = compute

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            raise AttributeError(self.name)  # no class-level value
        value = self.compute(instance)
        instance.__dict__[self.name] = value
        return value


class Lazy:
    LAZY: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    def __getattr__(self, name: str) -> Any:
        cls = type(self)
        compute = cls.LAZY.get(name)
        if compute is None:
            raise AttributeError(f"{cls.__name__!r} object has no attribute {name!r}")
        for field, function in cls.LAZY.items():
            if field not in cls.__dict__:
                setattr(cls, field, _Computed(field, function))
        value = compute(self)
        self.__dict__[name] = value
        return value


def assemble(cls: type[T], **stored: Any) -> T:
    """An instance with `stored` set and its LAZY fields left to compute: the dataclass
    __init__, which would want every field, is not called."""
    instance = object.__new__(cls)
    instance.__dict__ = stored  # the call's own fresh dict: no copy
    return instance
