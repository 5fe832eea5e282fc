"""The HTTP functions' route templates, matched with werkzeug's router.

The development host reads the two template forms this app uses: literal segments and ``{name}``
parameters (one whole segment each), and a catch-all ``{*name}`` (or ``{**name}``) as the last segment,
which takes the rest of the path — one segment or more. Anything else the Functions host accepts
(constraints such as ``{id:int}``, optional ``{id?}`` and default ``{page=1}`` parameters, segments that
mix literals and parameters) is refused when the host starts, with a message naming the template, rather
than matched differently from Azure.

Matching is done as the Functions host does it for those forms:

- below the route prefix (host.json ``extensions.http.routePrefix``); literal segments and the prefix
  match case-insensitively; a trailing slash is ignored;
- a literal segment beats a parameter, which beats a catch-all, whatever order the functions were
  registered in (werkzeug tries static parts first, then converters by weight, backtracking);
- a route whose methods do not include the request's is passed over for the next one that matches, and
  when none takes the method the answer is 405 listing the methods of every route that matched the path;
- route values are URL-decoded after the path is split, so ``%2F`` stays inside its value.

werkzeug matches a canonical form of the path (each segment decoded, case-folded and re-encoded); the
values are then read from the request's own segments, at the positions the template gives them.
"""

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
                values[segment.name] = unquote(raw)
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
        self._urls = Map(rules, strict_slashes=False, merge_slashes=False, redirect_defaults=False).bind("devhost")

    def resolve(self, method: str, path: str) -> Resolution:
        """Find the route for ``method`` and a raw (percent-encoded) URL path; a query string is ignored."""
        raw = path.split("?", 1)[0]
        segments = raw.strip("/").split("/") if raw.strip("/") else []
        canonical = "/" + "/".join(_canonical(unquote(segment)) for segment in segments)
        try:
            index, _ = self._urls.match(canonical, method=method.upper())
        except _WerkzeugMethodNotAllowed as error:
            return MethodNotAllowed(raw, tuple(sorted(error.valid_methods or ())))
        except _WerkzeugNotFound:
            return RouteNotFound(raw)
        route = self.routes[index]
        return RouteMatch(route, route.template.values(segments[len(self.prefix) :]))

    def url_path(self, route: Route) -> str:
        """The path a route is served at, for listings: ``/api/items/{id}``."""
        parts = [*self.prefix, route.template.template.strip().lstrip("~").strip("/")]
        return "/" + "/".join(part for part in parts if part)
