"""The HTTP functions' route templates — literal segments, ``{name}``, and a last-segment catch-all ``{*name}`` of
one segment or more — matched with werkzeug's router as the Functions host matches them; anything else is refused
at start. The rules: devhost/README.md ("HTTP"); why werkzeug, and how: docs/decisions/0013."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from werkzeug.exceptions import MethodNotAllowed as _WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as _WerkzeugNotFound
from werkzeug.routing import Map, Rule

_PARAMETER = re.compile(r"\{(?P<star>\*{0,2})(?P<name>[^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# RFC 3986 pchar other than percent-encodings: left as they are in the canonical form of a segment.
_SAFE = "!$&'()*+,;=:@-._~"


def _canonical(text: str) -> str:
    """A path segment (already decoded) as werkzeug matches it: case-folded, then percent-encoded."""
    return quote(text.casefold(), safe=_SAFE)


@dataclass(frozen=True)
class Parameter:
    name: str
    catch_all: bool = False


Segment = str | Parameter


@dataclass(frozen=True)
class RouteTemplate:
    template: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        """Read a route template; ``ValueError`` names what the development host does not support."""
        try:
            return cls(template, _parse_template(template))
        except ValueError as error:
            raise ValueError(f"invalid route template '{template}': {error}") from error

    @property
    def parameters(self) -> list[Parameter]:
        return [segment for segment in self.segments if isinstance(segment, Parameter)]

    def rule(self, prefix: tuple[str, ...]) -> str:
        """The werkzeug rule for this template below ``prefix``, literals in their canonical form."""
        parts = [_canonical(part) for part in prefix]
        for segment in self.segments:
            if isinstance(segment, Parameter):
                # werkzeug tries static parts, then converters by weight: literal > parameter > catch-all (path)
                parts.append(f"<path:{segment.name}>" if segment.catch_all else f"<{segment.name}>")
            else:
                parts.append(_canonical(segment))
        return "/" + "/".join(parts)

    def values(self, raw_segments: list[str]) -> dict[str, str]:
        """The decoded route values from the (percent-encoded) segments of a path this template matched."""
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if isinstance(segment, Parameter):
                raw = "/".join(raw_segments[index:]) if segment.catch_all else raw_segments[index]
                values[segment.name] = unquote(raw)  # decoded after the split: %2F stays inside its value
        return values


def _parse_template(template: str) -> tuple[Segment, ...]:
    text = template.strip().removeprefix("~").strip("/")
    if not text:
        return ()
    segments: list[Segment] = []
    names: set[str] = set()
    pieces = text.split("/")
    for index, piece in enumerate(pieces):
        if not piece:
            raise ValueError("empty segment ('//')")
        found = _PARAMETER.fullmatch(piece)
        if found is None:
            if "{" in piece or "}" in piece:
                raise ValueError(
                    f"segment '{piece}' mixes literal text and parameters; the development host reads a "
                    "parameter only as a whole segment ('{name}')"
                )
            if "?" in piece or "<" in piece or ">" in piece:
                raise ValueError(f"'{piece}' is not a valid literal segment")
            segments.append(piece)
            continue
        name, catch_all = found["name"], bool(found["star"])
        if not _NAME.match(name):
            raise ValueError(
                f"'{piece}' is not supported by the development host: write '{{name}}' or '{{*name}}' with a "
                "name made of letters, digits and '_' (no constraints, optional or default values)"
            )
        if name.lower() in names:
            raise ValueError(f"the parameter '{name}' appears more than once")
        names.add(name.lower())
        if catch_all and index != len(pieces) - 1:
            raise ValueError(f"the catch-all parameter '{name}' must be the last segment")
        segments.append(Parameter(name, catch_all))
    return tuple(segments)


# ---------------------------------------------------------------------------------------------- router


@dataclass(frozen=True)
class Route:
    template: RouteTemplate
    methods: frozenset[str] | None  # None: any method
    target: Any


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    params: dict[str, str]


@dataclass(frozen=True)
class RouteNotFound:
    path: str


@dataclass(frozen=True)
class MethodNotAllowed:
    path: str
    allowed: tuple[str, ...]


Resolution = RouteMatch | RouteNotFound | MethodNotAllowed


class _FunctionRule(Rule):
    """A werkzeug rule for exactly the declared methods: werkzeug adds HEAD to GET rules, the Functions host
    does not (a GET-only function answers HEAD with 405)."""

    def __init__(self, string: str, *, methods: frozenset[str] | None, endpoint: int) -> None:
        super().__init__(string, methods=methods, endpoint=endpoint)
        if methods is not None:
            self.methods = set(methods)


class Router:
    """Matches request paths below a route prefix (host.json ``routePrefix``) against route templates."""

    def __init__(self, routes: Iterable[tuple[str, Iterable[str] | None, Any]], prefix: str = "api") -> None:
        built = []
        for template, methods, target in routes:
            allowed = frozenset(method.upper() for method in methods) if methods else None
            built.append(Route(RouteTemplate.parse(template), allowed, target))
        self.routes: tuple[Route, ...] = tuple(built)
        self.prefix: tuple[str, ...] = tuple(part for part in prefix.strip("/").split("/") if part)
        rules = [
            _FunctionRule(route.template.rule(self.prefix), methods=route.methods, endpoint=index)
            for index, route in enumerate(self.routes)
        ]
        # strict_slashes=False: a trailing slash is ignored, as the Functions host ignores it
        self._urls = Map(rules, strict_slashes=False, merge_slashes=False, redirect_defaults=False).bind("devhost")

    def resolve(self, method: str, path: str) -> Resolution:
        """Find the route for ``method`` and a raw (percent-encoded) URL path; a query string is ignored."""
        raw = path.split("?", 1)[0]
        segments = raw.strip("/").split("/") if raw.strip("/") else []
        # werkzeug matches the canonical form (literals case-insensitive); values come from the request's own segments
        canonical = "/" + "/".join(_canonical(unquote(segment)) for segment in segments)
        try:
            index, _ = self._urls.match(canonical, method=method.upper())
        except _WerkzeugMethodNotAllowed as error:  # routes match the path, none the method: 405 with theirs
            return MethodNotAllowed(raw, tuple(sorted(error.valid_methods or ())))
        except _WerkzeugNotFound:
            return RouteNotFound(raw)
        route = self.routes[index]
        return RouteMatch(route, route.template.values(segments[len(self.prefix) :]))

    def url_path(self, route: Route) -> str:
        """The path a route is served at, for listings: ``/api/items/{id}``."""
        parts = [*self.prefix, route.template.template.strip().lstrip("~").strip("/")]
        return "/" + "/".join(part for part in parts if part)
