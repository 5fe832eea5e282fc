"""The HTTP API reference of the documentation site, rendered as Markdown from the OpenAPI document that
``GET /api/openapi.json`` serves (``build_openapi()``): every route, its parameters, body and answers, every
schema, and the events sent to webhooks.

The site's build renders it into docs/reference/api.md (tools/mkdocs_hooks.py), so it is never out of date;
``python -m tools.api_reference`` prints it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

Schema = dict[str, Any]

METHODS = ("get", "put", "post", "patch", "delete")
# Where the routes' groups go on the page; a group not named here follows them, as the document orders it.
TAG_ORDER = (
    "Environments",
    "Backups",
    "Restores",
    "Restore drills",
    "Downloads",
    "Uploads",
    "Access",
    "Events",
    "Service",
    "Backups page",
)
SCHEMA_PREFIX = "#/components/schemas/"


def schema_anchor(name: str) -> str:
    return "schema-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def event_anchor(name: str) -> str:
    return "event-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _text(value: str) -> str:
    """Prose from the document as Markdown shows it literally: no HTML tags or emphasis made of its <, > and *,
    except inside `code`."""
    parts = value.split("`")
    for index in range(0, len(parts), 2):
        parts[index] = parts[index].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts[index] = parts[index].replace("*", r"\*").replace("_", r"\_")
    return "`".join(parts)


def _cell(value: str) -> str:
    """Prose for a table cell: one line, no column break."""
    return _text(" ".join(value.split())).replace("|", r"\|")


def _code(value: object) -> str:
    text = str(value)
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


class Reference:
    """One OpenAPI document, rendered."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, Schema] = document.get("components", {}).get("schemas", {})
        self.operations = [
            (path, method, operation)
            for path, item in document.get("paths", {}).items()
            for method, operation in item.items()
            if method in METHODS
        ]
        # The description most routes give a status (the shared 400, 401, 404 …), said once rather than per route.
        counts = Counter(
            (status, answer.get("description", ""))
            for _, _, operation in self.operations
            for status, answer in operation.get("responses", {}).items()
            if not status.startswith("2")
        )
        self.usual: dict[str, str] = {}
        for (status, description), count in counts.most_common():
            if status not in self.usual and count > 1:
                self.usual[status] = description

    # Types, as a reader wants them: "string (date-time)", "array of BackupView", "integer or null".
    def type_of(self, schema: Schema) -> str:
        if "$ref" in schema:
            return self.link(schema["$ref"])
        for combiner, word in (("anyOf", " or "), ("oneOf", " or "), ("allOf", " and ")):
            if combiner in schema:
                return word.join(self.type_of(option) for option in schema[combiner])
        if "const" in schema:
            return _code(_json(schema["const"]))
        if "enum" in schema:
            return "one of " + ", ".join(_code(_json(value)) for value in schema["enum"])
        kind = schema.get("type")
        if isinstance(kind, list):
            return " or ".join(self.type_of({**schema, "type": one}) for one in kind)
        if kind == "array":
            return "array of " + self.type_of(schema.get("items", {}))
        if kind == "object" and isinstance(schema.get("additionalProperties"), dict) and not schema.get("properties"):
            return "object of " + self.type_of(schema["additionalProperties"])
        if kind is None:
            return "any"
        shown = str(kind)
        if "format" in schema:
            shown += f" ({schema['format']})"
        return shown

    def link(self, ref: str) -> str:
        name = ref.removeprefix(SCHEMA_PREFIX)
        if name not in self.schemas:
            raise ValueError(f"the document refers to a schema it does not define: {ref}")
        return f"[{name}](#{schema_anchor(name)})"

    def bounds(self, schema: Schema) -> str:
        said = []
        for key, word in (("minimum", "at least"), ("maximum", "at most"), ("minLength", "length at least"),
                          ("maxLength", "length at most"), ("minItems", "items at least"),
                          ("maxItems", "items at most")):  # fmt: skip
            if key in schema:
                said.append(f"{word} {schema[key]}")
        if "pattern" in schema:
            said.append(f"matches {_code(schema['pattern'])}")
        if "default" in schema and schema["default"] is not None:
            said.append(f"default {_code(_json(schema['default']))}")
        return "; ".join(said)

    def fields(self, schema: Schema) -> Iterator[str]:
        """An object's properties as a table."""
        properties: dict[str, Schema] = schema.get("properties", {})
        if not properties:
            return
        required = set(schema.get("required", ()))
        yield "| field | type | required | meaning |"
        yield "| --- | --- | --- | --- |"
        for name, field in properties.items():
            meaning = _cell(field.get("description", ""))
            bounds = self.bounds(field)
            if bounds:
                meaning = f"{meaning} ({bounds})" if meaning else bounds
            yield f"| `{name}` | {self.type_of(field)} | {'yes' if name in required else ''} | {meaning} |"
        yield ""

    # The page.
    def render(self) -> str:
        return "\n".join(self._render()).rstrip() + "\n"

    def _render(self) -> Iterator[str]:
        info = self.document.get("info", {})
        if info.get("description"):
            yield _text(info["description"])
            yield ""
        yield f"OpenAPI {self.document.get('openapi', '')}, {info.get('title', '')} {info.get('version', '')}."
        schemes = self.document.get("components", {}).get("securitySchemes", {})
        if schemes:
            places = {"header": "header", "query": "query parameter"}
            keys = " or ".join(
                f"the {_code(scheme.get('name'))} {places.get(scheme.get('in'), scheme.get('in'))}"
                for scheme in schemes.values()
                if scheme.get("type") == "apiKey"
            )
            yield f"Every route but the public ones takes a function key, in {keys}."
        yield ""
        groups = self.groups()
        yield "## Routes at a glance"
        yield ""
        yield "| route | what |"
        yield "| --- | --- |"
        for _, operations in groups:
            for path, method, operation in operations:
                route = f"{method.upper()} {path}"
                yield f"| [{_code(route)}](#{operation['operationId']}) | {_cell(operation.get('summary', ''))} |"
        yield ""
        if self.usual:
            yield "## Errors"
            yield ""
            yield "Unless a route says otherwise, it answers an error with an `application/problem+json` body,"
            yield "a [Problem](#schema-problem), and one of these statuses:"
            yield ""
            yield "| status | when |"
            yield "| --- | --- |"
            for status in sorted(self.usual):
                yield f"| {status} | {_cell(self.usual[status])} |"
            yield ""
        for tag, operations in groups:
            yield f"## {tag}"
            yield ""
            for path, method, operation in operations:
                yield from self.operation(path, method, operation)
        webhooks = self.document.get("webhooks", {})
        if webhooks:
            yield "## Events sent to webhooks"
            yield ""
            yield (
                "Each is a `POST` to the namespace's webhooks that want it (and an event on the Event Grid topic, if "
                "one is configured), in CloudEvents structured mode, signed per Standard Webhooks."
            )
            yield ""
            for name, item in webhooks.items():
                for method, operation in item.items():
                    if method in METHODS:
                        yield from self.event(name, operation)
        yield "## Schemas"
        yield ""
        for name, schema in self.schemas.items():
            yield from self.schema(name, schema)

    def groups(self) -> list[tuple[str, list[tuple[str, str, Schema]]]]:
        grouped: dict[str, list[tuple[str, str, Schema]]] = {}
        for path, method, operation in self.operations:
            if "operationId" not in operation:
                raise ValueError(f"{method.upper()} {path} has no operationId to link it by")
            tag = (operation.get("tags") or ["Other"])[0]
            grouped.setdefault(tag, []).append((path, method, operation))
        order = [tag for tag in TAG_ORDER if tag in grouped] + [tag for tag in grouped if tag not in TAG_ORDER]
        return [(tag, grouped[tag]) for tag in order]

    def operation(self, path: str, method: str, operation: Schema) -> Iterator[str]:
        yield f"### {_code(method.upper() + ' ' + path)} {{ #{operation['operationId']} }}"
        yield ""
        if operation.get("summary"):
            yield f"**{_text(operation['summary'])}**"
            yield ""
        if operation.get("description"):
            yield _text(operation["description"])
            yield ""
        if operation.get("security") == []:
            yield "Public: no function key."
            yield ""
        parameters = operation.get("parameters", [])
        if parameters:
            yield "| parameter | in | type | required | meaning |"
            yield "| --- | --- | --- | --- | --- |"
            for parameter in parameters:
                schema = parameter.get("schema", {})
                meaning = _cell(parameter.get("description") or schema.get("description", ""))
                bounds = self.bounds(schema)
                if bounds:
                    meaning = f"{meaning} ({bounds})" if meaning else bounds
                yield (
                    f"| `{parameter['name']}` | {parameter.get('in', '')} | {self.type_of(schema)} | "
                    f"{'yes' if parameter.get('required') else ''} | {meaning} |"
                )
            yield ""
        body = operation.get("requestBody")
        if body:
            contents = ", ".join(
                f"{_code(kind)} {self.type_of(content.get('schema', {}))}" for kind, content in body["content"].items()
            )
            yield f"Body{' (required)' if body.get('required') else ' (optional)'}: {contents}."
            yield ""
        yield "| answer | when | body |"
        yield "| --- | --- | --- |"
        for status, answer in operation.get("responses", {}).items():
            description = answer.get("description", "")
            if not status.startswith("2") and self.usual.get(status) == description:
                continue
            if description == operation.get("summary") and status.isdigit():
                description = HTTPStatus(int(status)).phrase  # said once already, above the table
            yield f"| {status} | {_cell(description)} | {self.answer_body(answer)} |"
        usual = [
            status
            for status, answer in operation.get("responses", {}).items()
            if not status.startswith("2") and self.usual.get(status) == answer.get("description", "")
        ]
        if usual:
            yield f"| {', '.join(usual)} | as every route: see [Errors](#errors) | `application/problem+json` |"
        yield ""

    def answer_body(self, answer: Schema) -> str:
        said = [
            f"{_code(kind)} {self.type_of(content['schema'])}" if "schema" in content else _code(kind)
            for kind, content in answer.get("content", {}).items()
        ]
        for header, about in answer.get("headers", {}).items():
            said.append(f"header `{header}`: {_cell(about.get('description', ''))}".rstrip(": "))
        return "; ".join(said)

    def event(self, name: str, operation: Schema) -> Iterator[str]:
        yield f"### {_code(name)} {{ #{event_anchor(name)} }}"
        yield ""
        if operation.get("summary"):
            yield f"**{_text(operation['summary'])}**"
            yield ""
        if operation.get("description"):
            yield _text(operation["description"])
            yield ""
        parameters = operation.get("parameters", [])
        if parameters:
            yield "| header | meaning |"
            yield "| --- | --- |"
            for parameter in parameters:
                yield f"| `{parameter['name']}` | {_cell(parameter.get('description', ''))} |"
            yield ""
        for kind, content in operation.get("requestBody", {}).get("content", {}).items():
            schema = content.get("schema", {})
            yield f"Body: {_code(kind)}" + ("" if "properties" in schema else f" {self.type_of(schema)}")
            yield ""
            yield from self.fields(schema)

    def schema(self, name: str, schema: Schema) -> Iterator[str]:
        yield f"### {name} {{ #{schema_anchor(name)} }}"
        yield ""
        if schema.get("description"):
            yield _text(schema["description"])
            yield ""
        if "properties" in schema:
            yield from self.fields(schema)
        else:
            yield self.type_of(schema) + "."
            yield ""


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def render(document: dict[str, Any]) -> str:
    """The reference of ``document`` (an OpenAPI 3.1 document), in Markdown."""
    return Reference(document).render()


def current() -> str:
    """The reference of the API as the code declares it now."""
    from functions.openapi import build_openapi

    return render(build_openapi())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.api_reference", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    sys.stdout.write(current())
    return 0


if __name__ == "__main__":
    sys.exit(main())
