"""Checks the Bicep in infra/ without a Bicep compiler (checkov, tools/arm_check.py), and lints the Dockerfile
(hadolint), each from its own virtual environment; ``make infra`` runs it. What fails: infra/README.md, "Checks".

Exit 2 when checkov or the infra environment is not installed. The module also holds the small Bicep text
model that tests/unit/test_infra_*.py read the templates with.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
CHECKOV_VENV = ROOT / ".venv-checkov"
INFRA_VENV = ROOT / ".venv-infra"
DOCKERFILE = ROOT / "Dockerfile"
MIN_REASON_LENGTH = 20

SKIP_COMMENT = re.compile(r"//\s*checkov:skip=(?P<check>[A-Z0-9_]+)(?::(?P<reason>.*))?$")

# Parsed by the checkov environment's Python: pycep is what checkov parses Bicep with.
_PARSE_SCRIPT = """
import json, sys
from pycep import BicepParser
parser = BicepParser(add_line_numbers=True)
errors = {}
for name in sys.argv[1:]:
    try:
        with open(name, encoding="utf-8") as handle:
            parser.parse(text=handle.read())
    except Exception as error:  # lark raises several unrelated types
        errors[name] = f"{type(error).__name__}: {error}"
print(json.dumps(errors))
"""


# -- a Bicep text model: enough to read declarations, objects and arrays -----------------------------


def skip_string(text: str, start: int) -> int:
    """Index just past the string literal that opens at ``start`` (a quote)."""
    if text.startswith("'''", start):
        end = text.find("'''", start + 3)
        if end < 0:
            raise ValueError(f"unterminated multi-line string at offset {start}")
        return end + 3
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "'":
            return index + 1
        if text.startswith("${", index):
            index = skip_expression(text, index + 2, "}")
            continue
        index += 1
    raise ValueError(f"unterminated string at offset {start}")


def _block_comment_end(text: str, start: int) -> int:
    end = text.find("*/", start + 2)
    if end < 0:
        raise ValueError(f"unterminated comment at offset {start}")
    return end + 2


def skip_expression(text: str, start: int, closer: str) -> int:
    """Index just past ``closer`` that ends the expression starting at ``start`` (strings and
    nested brackets taken into account)."""
    pairs = {"{": "}", "[": "]", "(": ")"}
    expected = [closer]
    index = start
    while index < len(text):
        char = text[index]
        if char == "'":
            index = skip_string(text, index)
            continue
        if text.startswith("//", index):
            index = text.find("\n", index)
            index = len(text) if index < 0 else index
            continue
        if text.startswith("/*", index):
            index = _block_comment_end(text, index)
            continue
        if char in pairs:
            expected.append(pairs[char])
        elif char in "}])":
            if char != expected[-1]:
                raise ValueError(f"unbalanced {char!r} at offset {index}")
            expected.pop()
            if not expected:
                return index + 1
        index += 1
    raise ValueError(f"no closing {closer!r} for the expression at offset {start}")


def strip_comments(text: str) -> str:
    """The text with every comment blanked out (line numbers and string contents kept)."""
    out: list[str] = []
    index = 0
    while index < len(text):
        if text[index] == "'":
            end = skip_string(text, index)
            out.append(text[index:end])
            index = end
        elif text.startswith("//", index):
            end = text.find("\n", index)
            end = len(text) if end < 0 else end
            out.append(" " * (end - index))
            index = end
        elif text.startswith("/*", index):
            end = _block_comment_end(text, index)
            out.append(re.sub(r"[^\n]", " ", text[index:end]))
            index = end
        else:
            out.append(text[index])
            index += 1
    return "".join(out)


def block_at(code: str, start: int) -> str:
    """The bracketed block (object, array or call) whose opening bracket is at ``start``."""
    closer = {"{": "}", "[": "]", "(": ")"}[code[start]]
    return code[start : skip_expression(code, start + 1, closer)]


def split_top_level(inner: str, separators: str = "\n,") -> list[str]:
    """Entries of an object or array body (or call arguments), split at depth 0."""
    entries: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(inner):
        char = inner[index]
        if char == "'":
            end = skip_string(inner, index)
            current.append(inner[index:end])
            index = end
            continue
        if char in "{[(":
            end = skip_expression(inner, index + 1, {"{": "}", "[": "]", "(": ")"}[char])
            current.append(inner[index:end])
            index = end
            continue
        if char in separators:
            entries.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        index += 1
    entries.append("".join(current).strip())
    return [entry for entry in entries if entry]


def unquote(value: str) -> str | None:
    """The content of a plain string literal, or None when ``value`` is not one."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'" and "${" not in value:
        return value[1:-1].replace("\\'", "'")
    return None


def object_entries(block: str) -> dict[str, str]:
    """``{ key: value ... }`` as key -> value text (keys unquoted)."""
    entries: dict[str, str] = {}
    for entry in split_top_level(block.strip()[1:-1]):
        key, separator, value = entry.partition(":")
        if not separator:
            raise ValueError(f"not a key: value entry: {entry!r}")
        key = key.strip()
        entries[unquote(key) or key] = value.strip()
    return entries


def array_items(block: str) -> list[str]:
    """``[ a b c ]`` as the item texts."""
    return split_top_level(block.strip()[1:-1])


def call_arguments(call: str) -> list[str]:
    """``name(a, b)`` as the argument texts."""
    opening = call.index("(")
    return split_top_level(block_at(call, opening)[1:-1], separators=",")


def objects_in(expression: str) -> list[dict[str, str]]:
    """Every top-level object literal in ``expression``, e.g. both branches of ``c ? {...} : {...}``."""
    found: list[dict[str, str]] = []
    index = 0
    while index < len(expression):
        char = expression[index]
        if char == "'":
            index = skip_string(expression, index)
        elif char == "{":
            block = block_at(expression, index)
            found.append(object_entries(block) if block.strip("{} \n") else {})
            index += len(block)
        else:
            index += 1
    return found


def path_value(block: str, *keys: str) -> str:
    """The value at ``keys`` in nested objects, e.g. path_value(body, 'properties', 'httpsOnly')."""
    value = block
    for key in keys:
        value = object_entries(value)[key]
    return value


@dataclass(frozen=True)
class Resource:
    symbol: str
    type: str
    existing: bool
    condition: str | None
    loop: str | None  # `for x in <loop>` when the resource is a loop
    body: str  # the object literal (for a loop: the object after the colon)


@dataclass(frozen=True)
class Module:
    symbol: str
    path: str
    condition: str | None
    body: str


_NEXT_DECLARATION = re.compile(r"^(?:@|param |var |resource |module |output |targetScope|type |func |import )", re.M)
_DECLARATION = re.compile(
    r"^(?P<kind>resource|module) (?P<symbol>\w+) '(?P<target>[^']+)'(?P<existing> existing)? = ", re.M
)


class BicepFile:
    """One .bicep file: its text, its code without comments and its declarations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = path.read_text(encoding="utf-8")
        self.code = strip_comments(self.text)

    def _declarations(self) -> Iterator[tuple[re.Match[str], str | None, str | None, str]]:
        for match in _DECLARATION.finditer(self.code):
            index = match.end()
            condition: str | None = None
            loop: str | None = None
            if self.code.startswith("if ", index):
                condition_block = block_at(self.code, index + 3)
                condition = condition_block[1:-1].strip()
                index += 3 + len(condition_block) + 1
            if self.code.startswith("[for ", index):
                loop_block = block_at(self.code, index)
                header, _, body = loop_block[1:-1].partition(":")
                loop = header.split(" in ", 1)[1].strip()
                yield match, condition, loop, body.strip()
                continue
            yield match, condition, loop, block_at(self.code, index)

    def resources(self) -> list[Resource]:
        return [
            Resource(
                symbol=match["symbol"],
                type=match["target"].split("@")[0],
                existing=bool(match["existing"]),
                condition=condition,
                loop=loop,
                body=body,
            )
            for match, condition, loop, body in self._declarations()
            if match["kind"] == "resource"
        ]

    def resources_of_type(self, resource_type: str) -> list[Resource]:
        return [resource for resource in self.resources() if resource.type.lower() == resource_type.lower()]

    def modules(self) -> list[Module]:
        return [
            Module(symbol=match["symbol"], path=match["target"], condition=condition, body=body)
            for match, condition, _, body in self._declarations()
            if match["kind"] == "module"
        ]

    def params(self) -> dict[str, bool]:
        """Parameter name -> whether it has a default value."""
        return {
            match["name"]: bool(match["default"])
            for match in re.finditer(r"^param (?P<name>\w+) \w+(?P<default> = .*)?$", self.code, re.M)
        }

    def outputs(self) -> set[str]:
        return set(re.findall(r"^output (\w+) ", self.code, re.M))

    def var(self, name: str) -> str:
        """The expression of ``var name = <expression>`` (up to the next declaration)."""
        match = re.search(rf"^var {name} = ", self.code, re.M)
        if match is None:
            raise KeyError(f"{self.path.name} has no var {name}")
        index = match.end()
        if self.code[index] in "{[":
            return block_at(self.code, index)
        following = _NEXT_DECLARATION.search(self.code, index)
        return self.code[index : following.start() if following else len(self.code)].strip()

    def skip_comments(self) -> list[tuple[int, str, str]]:
        """(line number, check id, reason) of each ``// checkov:skip=`` comment."""
        found: list[tuple[int, str, str]] = []
        for number, line in enumerate(self.text.splitlines(), start=1):
            match = SKIP_COMMENT.search(line)
            if match:
                found.append((number, match["check"], (match["reason"] or "").strip()))
        return found


def bicep_files(infra: Path = INFRA) -> list[BicepFile]:
    return [BicepFile(path) for path in sorted(infra.rglob("*.bicep"))]


# -- running checkov -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    check: str
    name: str
    resource: str
    file: Path
    lines: tuple[int, int]
    reason: str = ""

    def where(self) -> str:
        return f"{shown(self.file)}:{self.lines[0]}-{self.lines[1]}"


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def parse_errors(files: list[Path], python: Path) -> dict[str, str]:
    """Each file's pycep parse error, by file: checkov only counts parse errors and still exits 0."""
    result = subprocess.run(
        [str(python), "-c", _PARSE_SCRIPT, *map(str, files)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"could not run pycep: {result.stderr.strip()}")
    errors: dict[str, str] = json.loads(result.stdout)
    return errors


def run_checkov(checkov: Path, infra: Path) -> dict[str, Any]:
    command = [str(checkov), "--framework", "bicep", "-d", str(infra), "--output", "json", "--skip-download"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"checkov exited with {result.returncode}: {result.stderr.strip()[-2000:]}")
    document = json.loads(result.stdout or "[]")
    reports = document if isinstance(document, list) else [document]
    for report in reports:
        if isinstance(report, dict) and report.get("check_type") == "bicep":
            return report
    raise RuntimeError("checkov reported nothing for the bicep framework: no .bicep file was scanned")


def _findings(report: dict[str, Any], kind: str, infra: Path) -> list[Finding]:
    return [
        Finding(
            check=item["check_id"],
            name=item.get("check_name", ""),
            resource=item.get("resource", ""),
            file=(infra / item["file_path"].lstrip("/")).resolve(),
            lines=(item["file_line_range"][0], item["file_line_range"][1]),
            reason=(item.get("check_result", {}).get("suppress_comment") or "").strip(),
        )
        for item in report["results"].get(kind, [])
    ]


def check(infra: Path, checkov: Path) -> list[str]:
    """Every problem found, as printable lines; empty when infra/ is clean."""
    problems: list[str] = []
    files = bicep_files(infra)
    if not files:
        return [f"no .bicep files under {infra}"]

    for name, error in parse_errors([file.path for file in files], checkov.parent / "python").items():
        problems.append(f"parse error: {shown(Path(name))}: {error}")

    report = run_checkov(checkov, infra)
    for name in report["results"].get("parsing_errors", []):
        problems.append(f"parse error (checkov): {shown(Path(name))}")
    for finding in _findings(report, "failed_checks", infra):
        problems.append(f"failed: {finding.check} {finding.name} — {finding.resource} ({finding.where()})")

    skipped = _findings(report, "skipped_checks", infra)
    for finding in skipped:
        if len(finding.reason) < MIN_REASON_LENGTH:
            problems.append(f"skip without a reason: {finding.check} on {finding.resource} ({finding.where()})")
    for file in files:
        for line, check_id, _ in file.skip_comments():
            used = any(
                finding.check == check_id
                and finding.file == file.path.resolve()
                and finding.lines[0] <= line <= finding.lines[1]
                for finding in skipped
            )
            if not used:
                where = f"{shown(file.path)}:{line}"
                problems.append(f"stale skip: {where} skips {check_id}, which checkov did not skip there")

    summary = report.get("summary", {})
    print(
        f"checkov {summary.get('checkov_version', '?')} (bicep): {len(files)} files, "
        f"{summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed, "
        f"{summary.get('skipped', 0)} skipped, {summary.get('parsing_errors', 0)} parse errors"
    )
    return problems


def arm_models(infra: Path, python: Path) -> list[str]:
    """tools/arm_check.py in the infra environment: its summary and notes are printed, its problems returned."""
    result = subprocess.run(
        [str(python), "-m", "tools.arm_check", "--infra", str(infra)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"tools/arm_check.py exited with {result.returncode}: {result.stderr.strip()[-2000:]}")
    print(result.stdout.rstrip())
    return [line for line in result.stderr.splitlines() if line.strip()]


def hadolint(dockerfile: Path, executable: Path) -> list[str]:
    result = subprocess.run(
        [str(executable), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    findings = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if result.returncode != 0 and not findings:
        raise RuntimeError(f"hadolint exited with {result.returncode} and said nothing")
    version = subprocess.run([str(executable), "--version"], capture_output=True, text=True, check=False)
    print(f"{version.stdout.strip() or 'hadolint'}: {shown(dockerfile)}, {len(findings)} findings")
    return [f"hadolint: {finding}" for finding in findings]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--infra", type=Path, default=INFRA, help="folder with the Bicep files (default: infra)")
    parser.add_argument(
        "--checkov", type=Path, default=CHECKOV_VENV / "bin" / "checkov", help="checkov executable in its own venv"
    )
    parser.add_argument(
        "--infra-venv", type=Path, default=INFRA_VENV, help="venv with the azure-mgmt-* models and hadolint"
    )
    parser.add_argument("--dockerfile", type=Path, default=DOCKERFILE, help="the Dockerfile to lint")
    options = parser.parse_args(argv)
    checkov: Path = options.checkov
    infra_python: Path = options.infra_venv / "bin" / "python"
    missing = [
        (checkov, "python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -r requirements-checkov.txt"),
        (infra_python, "python3 -m venv .venv-infra && .venv-infra/bin/pip install -r requirements-infra.txt"),
    ]
    for path, remedy in missing:
        if not path.exists():
            print(f"{path} is missing (make infra installs it): {remedy}", file=sys.stderr)
            return 2
    try:
        problems = check(options.infra.resolve(), checkov)
        problems += arm_models(options.infra.resolve(), infra_python)
        problems += hadolint(options.dockerfile.resolve(), options.infra_venv / "bin" / "hadolint")
    except (RuntimeError, ValueError) as error:
        print(f"check_infra: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
