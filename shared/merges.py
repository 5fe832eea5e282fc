"""Merging sorted streams without holding them: the one way the core joins a database's uuids, a
container's listing and a backup's file list, all of which come in byte order of their keys."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class SortedStream(Generic[T]):
    """A stream sorted by ``key``, read forward only: ``seek`` finds an item by its key, passing over
    (and handing to ``on_skip``) every item below it. Memory does not grow with the stream."""

    def __init__(
        self,
        items: Iterable[T],
        key: Callable[[T], str],
        on_skip: Callable[[T], None] | None = None,
    ) -> None:
        self._items = iter(items)
        self._key = key
        self._on_skip = on_skip
        self._current = next(self._items, None)

    def seek(self, key: str) -> T | None:
        """The item whose key is ``key`` (taken from the stream, so seek each key once, in order), or
        None when the stream has none."""
        while self._current is not None and self._key(self._current) < key:
            self._skip()
        if self._current is not None and self._key(self._current) == key:
            found, self._current = self._current, next(self._items, None)
            return found
        return None

    def contains(self, key: str) -> bool:
        return self.seek(key) is not None

    def drain(self) -> None:
        """Pass over what is left (each to ``on_skip``)."""
        while self._current is not None:
            self._skip()

    def _skip(self) -> None:
        assert self._current is not None
        if self._on_skip is not None:
            self._on_skip(self._current)
        self._current = next(self._items, None)


def missing_from(names: Iterable[str], present: Iterable[str]) -> Iterator[str]:
    """The sorted, distinct ``names`` that the sorted ``present`` lacks."""
    stream = SortedStream(present, str)
    return (name for name in names if not stream.contains(name))


def found_in(names: Iterable[str], present: Iterable[str]) -> Iterator[str]:
    """The sorted, distinct ``names`` that the sorted ``present`` has too."""
    stream = SortedStream(present, str)
    return (name for name in names if stream.contains(name))


def distinct(names: Iterable[str]) -> Iterator[str]:
    """A sorted stream without its repeats."""
    last = None
    for name in names:
        if name != last:
            yield name
            last = name
