"""HTTP route templates as Azure Functions (ASP.NET Core routing) reads them, and a router over them.

Supported template syntax: literal segments (matched case-insensitively), ``{name}``, constrained
``{name:int}`` (``int long bool guid alpha datetime decimal double float required minlength(n)
maxlength(n) length(n) length(n,m) min(n) max(n) range(n,m) regex(expr)``), chained constraints
``{x:int:min(1)}``, optional ``{name?}``, defaults ``{name=value}``, catch-all ``{*rest}`` / ``{**rest}``, and
segments mixing literals and parameters such as ``{name}.{ext}``. ``{{`` and ``}}`` stand for literal braces
(a regex constraint writes ``\\d{{3}}``). Like ASP.NET Core's ``RegexRouteConstraint``, a regex constraint is
case-insensitive and not anchored: write ``^...$`` to match the whole value.

When several templates match a path, the one with the best ASP.NET "inbound precedence" wins: compared
segment by segment, a literal beats a mixed segment, which beats a constrained parameter, which beats an
unconstrained one, which beats a catch-all; a template that ends earlier beats one that continues with an
optional segment. Route values are URL-decoded.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_DECIMAL = re.compile(r"^\s*[+-]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)\s*$")
_FLOAT = re.compile(r"^\s*[+-]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$")
_FLOAT_WORDS = {"nan", "infinity", "+infinity", "-infinity"}
_HEX = "[0-9a-fA-F]"
_GUID_D = rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_GUID = re.compile(rf"^\s*(?:{_HEX}{{32}}|{_GUID_D}|\{{{_GUID_D}\}}|\({_GUID_D}\))\s*$")
_ALPHA = re.compile(r"^[a-zA-Z]*$")
_DATETIME_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y/%m/%d", "%d %B %Y", "%B %d, %Y")


# ---------------------------------------------------------------------------------------------- constraints


def _integer_in(value: str, bounds: tuple[int, int]) -> bool:
    return _INTEGER.match(value) is not None and bounds[0] <= int(value) <= bounds[1]


def _is_bool(value: str) -> bool:
    return value.strip().lower() in ("true", "false")


def _is_float(value: str) -> bool:
    return _FLOAT.match(value) is not None or value.strip().lower() in _FLOAT_WORDS


def _is_datetime(value: str) -> bool:
    text = value.strip()
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return True
    for pattern in _DATETIME_FORMATS:
        try:
            dt.datetime.strptime(text, pattern)
        except ValueError:
            continue
        return True
    return False


def _numbers(name: str, argument: str | None, count: tuple[int, ...]) -> list[int]:
    if argument is None:
        raise ValueError(f"route constraint '{name}' needs an argument, e.g. {name}(3)")
    parts = [part.strip() for part in argument.split(",")]
    if len(parts) not in count or not all(_INTEGER.match(part) for part in parts):
        wanted = " or ".join(f"{n} integer{'s' if n > 1 else ''}" for n in count)
        raise ValueError(f"route constraint '{name}({argument})' takes {wanted}")
    return [int(part) for part in parts]


def _no_argument(name: str, argument: str | None, check: Callable[[str], bool]) -> Callable[[str], bool]:
    if argument is not None:
        raise ValueError(f"route constraint '{name}' takes no argument")
    return check


def _length(name: str, argument: str | None) -> Callable[[str], bool]:
    bounds = _numbers(name, argument, (1, 2))
    if len(bounds) == 1:
        return lambda value: len(value) == bounds[0]
    low, high = bounds
    if low > high:
        raise ValueError(f"route constraint 'length({argument})': the minimum is larger than the maximum")
    return lambda value: low <= len(value) <= high


def _range(name: str, argument: str | None) -> Callable[[str], bool]:
    low, high = _numbers(name, argument, (2,))
    if low > high:
        raise ValueError(f"route constraint 'range({argument})': the minimum is larger than the maximum")
    return lambda value: _integer_in(value, _INT64) and low <= int(value) <= high


def _regex(name: str, argument: str | None) -> Callable[[str], bool]:
    if not argument:
        raise ValueError("route constraint 'regex' needs a pattern, e.g. regex(^[a-z]+$)")
    try:
        pattern = re.compile(argument, re.IGNORECASE)
    except re.error as error:
        raise ValueError(f"route constraint 'regex({argument})' is not a valid regular expression: {error}") from error
    return lambda value: pattern.search(value) is not None


def _minimum(name: str, argument: str | None) -> Callable[[str], bool]:
    (low,) = _numbers(name, argument, (1,))
    return lambda value: _integer_in(value, _INT64) and int(value) >= low


def _maximum(name: str, argument: str | None) -> Callable[[str], bool]:
    (high,) = _numbers(name, argument, (1,))
    return lambda value: _integer_in(value, _INT64) and int(value) <= high


def _min_length(name: str, argument: str | None) -> Callable[[str], bool]:
    (low,) = _numbers(name, argument, (1,))
    return lambda value: len(value) >= low


def _max_length(name: str, argument: str | None) -> Callable[[str], bool]:
    (high,) = _numbers(name, argument, (1,))
    return lambda value: len(value) <= high


_CONSTRAINTS: dict[str, Callable[[str, str | None], Callable[[str], bool]]] = {
    "int": lambda n, a: _no_argument(n, a, lambda v: _integer_in(v, _INT32)),
    "long": lambda n, a: _no_argument(n, a, lambda v: _integer_in(v, _INT64)),
    "bool": lambda n, a: _no_argument(n, a, _is_bool),
    "guid": lambda n, a: _no_argument(n, a, lambda v: _GUID.match(v) is not None),
    "alpha": lambda n, a: _no_argument(n, a, lambda v: _ALPHA.match(v) is not None),
    "datetime": lambda n, a: _no_argument(n, a, _is_datetime),
    "decimal": lambda n, a: _no_argument(n, a, lambda v: _DECIMAL.match(v) is not None),
    "double": lambda n, a: _no_argument(n, a, _is_float),
    "float": lambda n, a: _no_argument(n, a, _is_float),
    "required": lambda n, a: _no_argument(n, a, lambda v: v != ""),
    "minlength": _min_length,
    "maxlength": _max_length,
    "length": _length,
    "min": _minimum,
    "max": _maximum,
    "range": _range,
    "regex": _regex,
}


@dataclass(frozen=True)
class Constraint:
    text: str
    check: Callable[[str], bool] = field(compare=False, repr=False)

    def __call__(self, value: str) -> bool:
        return self.check(value)


def make_constraint(name: str, argument: str | None) -> Constraint:
    factory = _CONSTRAINTS.get(name.lower())
    if factory is None:
        known = ", ".join(sorted(_CONSTRAINTS))
        raise ValueError(f"unknown route constraint '{name}' (known: {known})")
    text = name if argument is None else f"{name}({argument})"
    return Constraint(text, factory(name.lower(), argument))


# ---------------------------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Parameter:
    name: str
    constraints: tuple[Constraint, ...] = ()
    optional: bool = False
    catch_all: bool = False
    default: str | None = None

    def accepts(self, value: str) -> bool:
        return all(constraint(value) for constraint in self.constraints)


Part = str | Parameter

# Inbound precedence digits (lower wins), as ASP.NET Core's RoutePrecedence.ComputeInbound.
_LITERAL, _COMPLEX, _CONSTRAINED, _PARAMETER, _CATCH_ALL = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Segment:
    parts: tuple[Part, ...]
    # For a segment mixing literals and parameters: regexes to try in order (the second, if any, leaves
    # out a trailing optional parameter). Groups are the parameters, in order.
    patterns: tuple[re.Pattern[str], ...] = field(default=(), compare=False)

    @property
    def literal(self) -> str | None:
        return self.parts[0] if len(self.parts) == 1 and isinstance(self.parts[0], str) else None

    @property
    def parameter(self) -> Parameter | None:
        return self.parts[0] if len(self.parts) == 1 and isinstance(self.parts[0], Parameter) else None

    @property
    def skippable(self) -> bool:
        parameter = self.parameter
        return parameter is not None and (parameter.optional or parameter.catch_all or parameter.default is not None)

    @property
    def precedence(self) -> int:
        if self.literal is not None:
            return _LITERAL
        parameter = self.parameter
        if parameter is None:
            return _COMPLEX
        if parameter.catch_all:
            return _CATCH_ALL
        return _CONSTRAINED if parameter.constraints else _PARAMETER


@dataclass(frozen=True)
class RouteTemplate:
    template: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        try:
            return cls(template, _parse_template(template))
        except ValueError as error:
            raise ValueError(f"invalid route template '{template}': {error}") from error

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(segment.precedence for segment in self.segments)

    @property
    def parameters(self) -> list[Parameter]:
        return [part for segment in self.segments for part in segment.parts if isinstance(part, Parameter)]

    def match(self, raw_segments: list[str]) -> dict[str, str] | None:
        """Match URL path segments (still percent-encoded); returns the decoded route values or None."""
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            parameter = segment.parameter
            if parameter is not None and parameter.catch_all:
                rest = unquote("/".join(raw_segments[index:]))
                if rest:
                    if not parameter.accepts(rest):
                        return None
                    values[parameter.name] = rest
                elif parameter.default is not None:
                    values[parameter.name] = parameter.default
                return values
            if index >= len(raw_segments):
                if not all(rest.skippable for rest in self.segments[index:]):
                    return None
                for rest in self.segments[index:]:
                    skipped = rest.parameter
                    if skipped is not None and skipped.default is not None:
                        values[skipped.name] = skipped.default
                return values
            if not _match_segment(segment, unquote(raw_segments[index]), values):
                return None
        return values if len(raw_segments) == len(self.segments) else None


def _match_segment(segment: Segment, value: str, values: dict[str, str]) -> bool:
    literal = segment.literal
    if literal is not None:
        return value.casefold() == literal.casefold()
    parameter = segment.parameter
    if parameter is not None:
        if value == "" or not parameter.accepts(value):
            return False
        values[parameter.name] = value
        return True
    for pattern in segment.patterns:
        found = pattern.match(value)
        if found is None:
            continue
        captured: dict[str, str] = {}
        pieces = iter(found.groups())
        for part in segment.parts:
            if not isinstance(part, Parameter):
                continue
            piece = next(pieces, None)
            if piece is None:
                if part.default is not None:
                    captured[part.name] = part.default
            elif part.accepts(piece):
                captured[part.name] = piece
            else:
                return False
        values.update(captured)
        return True
    return False


def _parse_template(template: str) -> tuple[Segment, ...]:
    text = template.strip()
    if text.startswith("~"):
        text = text[1:]
    text = text.strip("/")
    if not text:
        return ()
    segments = tuple(_build_segment(parts) for parts in _split_segments(text))
    names: set[str] = set()
    for index, segment in enumerate(segments):
        for part in segment.parts:
            if not isinstance(part, Parameter):
                continue
            if part.name.lower() in names:
                raise ValueError(f"the parameter '{part.name}' appears more than once")
            names.add(part.name.lower())
            if part.catch_all and index != len(segments) - 1:
                raise ValueError(f"the catch-all parameter '{part.name}' must be the last segment")
        if segment.skippable and not all(rest.skippable for rest in segments[index:]):
            raise ValueError("an optional parameter must be followed only by optional parameters")
    return segments


def _split_segments(text: str) -> list[list[Part]]:
    segments: list[list[Part]] = [[]]
    literal: list[str] = []
    position = 0

    def flush() -> None:
        if literal:
            segments[-1].append("".join(literal))
            literal.clear()

    while position < len(text):
        char = text[position]
        if text.startswith("{{", position) or text.startswith("}}", position):
            literal.append(char)
            position += 2
        elif char == "{":
            end = _parameter_end(text, position + 1)
            flush()
            segments[-1].append(_parse_parameter(text[position + 1 : end].replace("{{", "{").replace("}}", "}")))
            position = end + 1
        elif char == "}":
            raise ValueError("unmatched '}' (write '}}' for a literal brace)")
        elif char == "/":
            flush()
            if not segments[-1]:
                raise ValueError("empty segment ('//')")
            segments.append([])
            position += 1
        else:
            if char == "?":
                raise ValueError("'?' is not allowed in a literal segment")
            literal.append(char)
            position += 1
    flush()
    return segments


def _parameter_end(text: str, start: int) -> int:
    position = start
    while position < len(text):
        if text.startswith("{{", position) or text.startswith("}}", position):
            position += 2
        elif text[position] == "}":
            return position
        elif text[position] == "{":
            raise ValueError("'{' inside a parameter (write '{{' inside a regex)")
        else:
            position += 1
    raise ValueError("a parameter is not closed with '}'")


_NAME = re.compile(r"^[^{}/?*:=()]+$")


def _parse_parameter(body: str) -> Parameter:
    catch_all = False
    if body.startswith("**"):
        catch_all, body = True, body[2:]
    elif body.startswith("*"):
        catch_all, body = True, body[1:]
    optional = False
    if body.endswith("?"):
        optional, body = True, body[:-1]
    name_end = len(body)
    for marker in (":", "="):
        index = body.find(marker)
        if index != -1:
            name_end = min(name_end, index)
    name = body[:name_end].strip()
    if not name or not _NAME.match(name):
        raise ValueError(f"'{{{body}}}' has an invalid parameter name '{name}'")
    constraints: list[Constraint] = []
    default: str | None = None
    position = name_end
    while position < len(body):
        if body[position] == "=":
            default = body[position + 1 :]
            break
        # body[position] == ":" -- a constraint: name, then optionally (argument)
        position += 1
        start = position
        while position < len(body) and body[position] not in ":=(":
            position += 1
        constraint_name = body[start:position].strip()
        argument = None
        if position < len(body) and body[position] == "(":
            close = _argument_end(body, position + 1)
            argument = body[position + 1 : close]
            position = close + 1
        if not constraint_name:
            raise ValueError(f"parameter '{name}' has an empty constraint")
        constraints.append(make_constraint(constraint_name, argument))
    if optional and default is not None:
        raise ValueError(f"parameter '{name}' cannot be both optional and have a default value")
    if catch_all and optional:
        optional = False  # a catch-all already matches nothing
    return Parameter(name, tuple(constraints), optional, catch_all, default)


def _argument_end(body: str, start: int) -> int:
    """Index of the ')' closing a constraint argument: the first one followed by ':', '=' or the end."""
    position = body.find(")", start)
    while position != -1:
        following = body[position + 1 : position + 2]
        if following in ("", ":", "="):
            return position
        position = body.find(")", position + 1)
    raise ValueError(f"a constraint argument is not closed with ')' in '{body}'")


def _build_segment(parts: list[Part]) -> Segment:
    if len(parts) == 1:
        return Segment(tuple(parts))
    pattern: list[str] = []
    without_optional: list[str] | None = None
    for index, part in enumerate(parts):
        if isinstance(part, str):
            pattern.append(re.escape(part))
            continue
        if part.catch_all:
            raise ValueError(f"the catch-all parameter '{part.name}' must be a whole segment")
        if index > 0 and isinstance(parts[index - 1], Parameter):
            raise ValueError("a segment cannot hold two parameters without a literal between them")
        if part.optional or part.default is not None:
            if index != len(parts) - 1 or index < 2:
                raise ValueError(f"optional parameter '{part.name}' must end its segment, after a literal")
            without_optional = pattern[:-1]
        pattern.append("(.+)")
    flags = re.IGNORECASE | re.DOTALL
    patterns = [re.compile("^" + "".join(pattern) + "$", flags)]
    if without_optional is not None:
        patterns.append(re.compile("^" + "".join(without_optional) + "$", flags))
    return Segment(tuple(parts), tuple(patterns))


# ---------------------------------------------------------------------------------------------- router


@dataclass(frozen=True)
class Route:
    template: RouteTemplate
    methods: frozenset[str] | None  # None: any method
    target: Any

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


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


class Router:
    """Matches request paths below a route prefix (host.json ``routePrefix``) against route templates."""

    def __init__(self, routes: Iterable[tuple[str, Iterable[str] | None, Any]], prefix: str = "api") -> None:
        built = []
        for template, methods, target in routes:
            allowed = frozenset(method.upper() for method in methods) if methods else None
            built.append(Route(RouteTemplate.parse(template), allowed, target))
        # sorted() is stable: among templates of equal precedence, the first registered wins.
        self.routes: tuple[Route, ...] = tuple(sorted(built, key=lambda route: route.template.precedence))
        self.prefix: tuple[str, ...] = tuple(part for part in prefix.strip("/").split("/") if part)

    def resolve(self, method: str, path: str) -> Resolution:
        """Find the route for ``method`` and a raw (percent-encoded, query-less) URL path."""
        raw = path.split("?", 1)[0]
        segments = raw.strip("/").split("/") if raw.strip("/") else []
        if len(segments) < len(self.prefix) or any(
            unquote(segment).casefold() != part.casefold() for segment, part in zip(segments, self.prefix, strict=False)
        ):
            return RouteNotFound(raw)
        below = segments[len(self.prefix) :]
        allowed: set[str] = set()
        for route in self.routes:
            params = route.template.match(below)
            if params is None:
                continue
            if route.allows(method):
                return RouteMatch(route, params)
            allowed |= route.methods or set()
        if allowed:
            return MethodNotAllowed(raw, tuple(sorted(allowed)))
        return RouteNotFound(raw)

    def url_path(self, route: Route) -> str:
        """The path a route is served at, for listings: ``/api/items/{id:int}``."""
        parts = [*self.prefix, route.template.template.strip().lstrip("~").strip("/")]
        return "/" + "/".join(part for part in parts if part)
