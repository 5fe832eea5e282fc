"""A response body as the CLI declared it reads it: a dict that refuses a field its shape (a TypedDict of
cli/api.py) does not name, so every field the CLI reads is one the contract test holds to the OpenAPI."""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any, Union, get_args, get_origin, is_typeddict


class UndeclaredField(KeyError):
    """The CLI read a field its shape does not declare (a bug: declare it in cli/api.py)."""


@cache
def _hints(shape: type) -> dict[str, Any]:
    return typing.get_type_hints(shape)


def _optional_inner(hint: Any) -> Any:
    """``X | None`` -> X; anything else as it is."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def wrap(value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` declares it: dicts of a TypedDict become Documents, lists and maps of them too."""
    if value is None:
        return None
    hint = _optional_inner(hint)
    if is_typeddict(hint) and isinstance(value, dict):
        return Document(value, hint)
    origin = get_origin(hint)
    if origin is list and isinstance(value, list):
        (item,) = get_args(hint)
        return [wrap(each, item) for each in value]
    if origin is dict and isinstance(value, dict):
        _, item = get_args(hint)
        return {key: wrap(each, item) for key, each in value.items()}
    return value


class Document(dict[str, Any]):
    """The JSON as received (``json.dumps`` and ``--json`` print it whole); ``[]`` and ``get`` check the shape:
    ``[]`` only for a field the API always sends, ``get`` for one it may leave out."""

    __slots__ = ("shape",)

    def __init__(self, data: dict[str, Any], shape: type) -> None:
        super().__init__(data)
        self.shape = shape

    def _hint(self, key: str) -> Any:
        hints = _hints(self.shape)
        if key not in hints:
            raise UndeclaredField(f"{self.shape.__name__} does not declare {key!r}: add it to cli/api.py")
        return hints[key]

    def __getitem__(self, key: str) -> Any:
        hint = self._hint(key)
        if key in self.shape.__optional_keys__:  # type: ignore[attr-defined]
            raise UndeclaredField(f"{self.shape.__name__}.{key} may be absent: read it with .get()")
        return wrap(super().__getitem__(key), hint)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        hint = self._hint(key)
        return wrap(super().get(key, default), hint)
