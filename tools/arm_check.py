"""A semantic check of the Bicep in infra/, beyond parsing, against the ARM models of the azure-mgmt-* packages.

``.venv-infra/bin/python -m tools.arm_check [--infra DIR]`` (``make infra`` runs it); what it holds each
resource to: infra/README.md, "Checks". Each problem is printed as ``file:line: message``; exit 1 if any.
"""

from __future__ import annotations

import argparse
import bisect
import enum
import importlib
import inspect
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tools.check_infra import INFRA, ROOT, block_at, skip_expression, skip_string, strip_comments


@dataclass(frozen=True)
class Model:
    module: str  # the package's module of the API version
    model: str | dict[str, str]  # the PUT body's model; by resource name for types whose body depends on it
    # For a package that ships one API version: the operations module whose default api-version must match.
    operations: str | None = None
    # Set when no package ships this exact version: what it is checked against instead, and what that misses.
    approximate: str = ""


def _storage(model: str) -> Model:
    return Model("azure.mgmt.storage.v2023_05_01.models", model)


def _web(model: str | dict[str, str]) -> Model:
    return Model("azure.mgmt.web.v2023_12_01.models", model)


# Each Microsoft.* type and API version declared in infra/ -> the package module of that version and the model
# its body is PUT with. Every property path a resource sets must be in that model, not read-only, and typed as
# the model types it (literals, and parameters of a declared type; expressions are not typed).
MODELS: dict[tuple[str, str], Model] = {
    ("Microsoft.Storage/storageAccounts", "2023-05-01"): _storage("StorageAccountCreateParameters"),
    ("Microsoft.Storage/storageAccounts/blobServices", "2023-05-01"): _storage("BlobServiceProperties"),
    ("Microsoft.Storage/storageAccounts/blobServices/containers", "2023-05-01"): _storage("BlobContainer"),
    ("Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies", "2023-05-01"): _storage(
        "ImmutabilityPolicy"
    ),
    ("Microsoft.Storage/storageAccounts/tableServices", "2023-05-01"): _storage("TableServiceProperties"),
    ("Microsoft.Storage/storageAccounts/tableServices/tables", "2023-05-01"): _storage("Table"),
    ("Microsoft.Storage/storageAccounts/queueServices", "2023-05-01"): _storage("QueueServiceProperties"),
    ("Microsoft.Storage/storageAccounts/queueServices/queues", "2023-05-01"): _storage("StorageQueue"),
    ("Microsoft.Storage/storageAccounts/managementPolicies", "2023-05-01"): _storage("ManagementPolicy"),
    ("Microsoft.Web/serverfarms", "2023-12-01"): _web("AppServicePlan"),
    ("Microsoft.Web/sites", "2023-12-01"): _web("Site"),
    ("Microsoft.Web/sites/basicPublishingCredentialsPolicies", "2023-12-01"): _web(
        "CsmPublishingCredentialsPoliciesEntity"
    ),
    ("Microsoft.Web/sites/config", "2023-12-01"): _web(
        {
            "authsettingsV2": "SiteAuthSettingsV2",
            "web": "SiteConfigResource",
            "appsettings": "StringDictionary",
            "logs": "SiteLogsConfig",
        }
    ),
    ("Microsoft.KeyVault/vaults", "2023-07-01"): Model(
        "azure.mgmt.keyvault.v2023_07_01.models", "VaultCreateOrUpdateParameters"
    ),
    ("Microsoft.ContainerRegistry/registries", "2023-07-01"): Model(
        "azure.mgmt.containerregistry.v2023_07_01.models", "Registry"
    ),
    ("Microsoft.ManagedIdentity/userAssignedIdentities", "2023-01-31"): Model(
        "azure.mgmt.msi.v2023_01_31.models", "Identity"
    ),
    ("Microsoft.Authorization/roleAssignments", "2022-04-01"): Model(
        "azure.mgmt.authorization.v2022_04_01.models", "RoleAssignmentCreateParameters"
    ),
    ("Microsoft.Authorization/roleDefinitions", "2022-04-01"): Model(
        "azure.mgmt.authorization.v2022_04_01.models", "RoleDefinition"
    ),
    ("Microsoft.Insights/components", "2020-02-02"): Model(
        "azure.mgmt.applicationinsights.v2020_02_02.models", "ApplicationInsightsComponent"
    ),
    ("Microsoft.Insights/workbooks", "2023-06-01"): Model(
        "azure.mgmt.applicationinsights.v2023_06_01.models", "Workbook"
    ),
    ("Microsoft.Insights/diagnosticSettings", "2021-05-01-preview"): Model(
        "azure.mgmt.monitor.v2021_05_01_preview.models", "DiagnosticSettingsResource"
    ),
    ("Microsoft.Insights/actionGroups", "2023-01-01"): Model(
        "azure.mgmt.monitor.v2023_01_01.models", "ActionGroupResource"
    ),
    ("Microsoft.Insights/scheduledQueryRules", "2022-06-15"): Model(
        "azure.mgmt.monitor.v2022_08_01_preview.models",
        "ScheduledQueryRuleResource",
        approximate=(
            "no azure-mgmt-monitor release ships 2022-06-15; checked against 2022-08-01-preview, the version "
            "after it, so a property only that preview has would pass"
        ),
    ),
    ("Microsoft.OperationalInsights/workspaces", "2025-07-01"): Model(
        "azure.mgmt.loganalytics.models",
        "Workspace",
        operations="azure.mgmt.loganalytics.operations._workspaces_operations",
    ),
    ("Microsoft.EventGrid/topics", "2025-02-15"): Model(
        "azure.mgmt.eventgrid.models", "Topic", operations="azure.mgmt.eventgrid.operations._topics_operations"
    ),
    ("Microsoft.EventGrid/topics/eventSubscriptions", "2025-02-15"): Model(
        "azure.mgmt.eventgrid.models",
        "EventSubscription",
        operations="azure.mgmt.eventgrid.operations._topic_event_subscriptions_operations",
    ),
}

# Types and versions declared in infra/ that no installed package has models of, each with why it is
# acceptable to leave them unchecked. Empty: every resource is checked.
UNCHECKED: dict[tuple[str, str], str] = {}

# Built-in role definitions (name -> id), from the Azure built-in roles reference. The one table the
# templates' role ids are held against.
ROLE_DEFINITIONS = {
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
}

# Keys of a resource body that are Bicep's, not the resource type's.
BICEP_KEYWORDS = {"parent", "scope", "dependsOn", "name"}

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DECLARATION = re.compile(
    r"^resource (?P<symbol>\w+) '(?P<type>[^'@]+)@(?P<version>[^']+)'(?P<existing> existing)? = ", re.M
)
_PARAM = re.compile(r"^param (?P<name>\w+) (?P<type>\w+)", re.M)
_LOADED = re.compile(r"loadTextContent\('(?P<path>[^']+)'\)")
_WORKBOOK_PARAMETER = re.compile(r"\{(?P<name>[A-Za-z]\w*)(?::[\w-]+)?\}")
_VISUALIZATIONS = {"table", "tiles", "timechart", "barchart", "piechart", "areachart", "linechart", "scatterchart"}
_KEY = re.compile(r"\s*(?P<key>'(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$]*)\s*:")
# Functions whose result type is known whatever their arguments.
_FUNCTION_TYPES = {
    "guid": "string",
    "uniqueString": "string",
    "subscriptionResourceId": "string",
    "resourceId": "string",
    "tenantResourceId": "string",
    "extensionResourceId": "string",
    "loadTextContent": "string",
    "join": "string",
    "format": "string",
    "toLower": "string",
    "toUpper": "string",
    "string": "string",
    "empty": "bool",
    "contains": "bool",
    "length": "int",
    "int": "int",
    "bool": "bool",
    "union": "object",
    "items": "array",
}


# -- a Bicep value tree with offsets -----------------------------------------------------------------


@dataclass
class Node:
    kind: str  # object | array | for | string | int | bool | null | expression
    start: int
    text: str
    entries: list[tuple[str, int, Node]] = field(default_factory=list)  # objects: (key, offset, value)
    items: list[Node] = field(default_factory=list)  # arrays; a for-expression's one item is its body


def _value_end(code: str, index: int, end: int) -> int:
    """Where the value that starts at ``index`` ends: a newline or comma at depth 0 (or ``end``)."""
    while index < end:
        char = code[index]
        if char == "'":
            index = skip_string(code, index)
            continue
        if char in "{[(":
            index = skip_expression(code, index + 1, {"{": "}", "[": "]", "(": ")"}[char])
            continue
        if char in "\n,":
            return index
        index += 1
    return end


def parse_value(code: str, start: int, end: int) -> Node:
    while start < end and code[start] in " \t\r\n":
        start += 1
    text = code[start:end].strip()
    if text.startswith("{") and len(block_at(code, start)) == len(text):
        return _parse_object(code, start)
    if text.startswith("[") and len(block_at(code, start)) == len(text):
        inner = text[1:-1].lstrip()
        if inner.startswith("for "):
            colon = _for_colon(code, start)
            return Node("for", start, text, items=[parse_value(code, colon + 1, start + len(text) - 1)])
        return Node("array", start, text, items=list(_items(code, start + 1, start + len(text) - 1)))
    if text.startswith("'") and skip_string(code, start) == start + len(text):
        return Node("string", start, text)
    if re.fullmatch(r"-?\d+", text):
        return Node("int", start, text)
    if text in ("true", "false"):
        return Node("bool", start, text)
    if text == "null":
        return Node("null", start, text)
    return Node("expression", start, text)


def _for_colon(code: str, start: int) -> int:
    """The colon after ``[for x in y`` (the loop's header may hold brackets and strings)."""
    index = start + 1
    while True:
        char = code[index]
        if char == "'":
            index = skip_string(code, index)
        elif char in "{[(":
            index = skip_expression(code, index + 1, {"{": "}", "[": "]", "(": ")"}[char])
        elif char == ":":
            return index
        else:
            index += 1


def _items(code: str, start: int, end: int) -> Iterator[Node]:
    index = start
    while index < end:
        while index < end and code[index] in " \t\r\n,":
            index += 1
        if index >= end:
            return
        value_end = _value_end(code, index, end)
        yield parse_value(code, index, value_end)
        index = value_end


def _parse_object(code: str, start: int) -> Node:
    end = start + len(block_at(code, start)) - 1
    node = Node("object", start, code[start : end + 1])
    index = start + 1
    while index < end:
        while index < end and code[index] in " \t\r\n,":
            index += 1
        if index >= end:
            break
        match = _KEY.match(code, index, end)
        if match is None:
            line_end = code.find("\n", index)
            raise ValueError(f"offset {index}: not a 'key: value' entry: {code[index:line_end].strip()!r}")
        key = match["key"]
        if key.startswith("'"):
            key = key[1:-1]
        value_end = _value_end(code, match.end(), end)
        node.entries.append((key, match.start("key"), parse_value(code, match.end(), value_end)))
        index = value_end
    return node


# -- the models --------------------------------------------------------------------------------------


@dataclass
class Trie:
    children: dict[str, Trie] = field(default_factory=dict)
    leaf: tuple[str, str, bool] | None = None  # (attribute, msrest type, read-only)


def _split_key(key: str) -> list[str]:
    return [part.replace("\\.", ".") for part in re.split(r"(?<!\\)\.", key)]


class Models:
    """The classes of one package module, as key-path tries."""

    def __init__(self, module_name: str) -> None:
        self.module = importlib.import_module(module_name)
        self._tries: dict[str, Trie] = {}

    def cls(self, name: str) -> type:
        found = getattr(self.module, name, None)
        if not isinstance(found, type):
            raise KeyError(name)
        return found

    def trie(self, name: str) -> Trie:
        if name not in self._tries:
            model = self.cls(name)
            validation = getattr(model, "_validation", {})
            root = Trie()
            for attribute, spec in model._attribute_map.items():  # type: ignore[attr-defined]
                node = root
                for part in _split_key(spec["key"]):
                    node = node.children.setdefault(part, Trie())
                node.leaf = (attribute, spec["type"], bool(validation.get(attribute, {}).get("readonly")))
            self._tries[name] = root
        return self._tries[name]

    def enum_values(self, model_name: str, attribute: str) -> set[str] | None:
        """The values of the enum a string attribute takes, when its annotation names one."""
        annotation = inspect.signature(self.cls(model_name).__init__).parameters.get(attribute)
        if annotation is None:
            return None
        for name in re.findall(r"_models\.(\w+)", str(annotation.annotation)):
            candidate = getattr(self.module, name, None)
            if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
                return {str(member.value).lower() for member in candidate}
        return None

    def subtype(self, model_name: str, node: Node) -> str:
        """A polymorphic model's subtype, chosen by the discriminator the object literal sets."""
        model = self.cls(model_name)
        subtypes = getattr(model, "_subtype_map", None)
        if not subtypes:
            return model_name
        attribute, mapping = next(iter(subtypes.items()))
        key = model._attribute_map[attribute]["key"]  # type: ignore[attr-defined]
        for entry_key, _, value in node.entries:
            if entry_key == key and value.kind == "string":
                return str(mapping.get(value.text[1:-1], model_name))
        return model_name


# -- checking ----------------------------------------------------------------------------------------


@dataclass
class Checked:
    problems: list[str] = field(default_factory=list)
    resources: int = 0
    properties: int = 0
    notes: list[str] = field(default_factory=list)


class FileChecker:
    def __init__(self, path: Path, result: Checked, modules: dict[str, Models]) -> None:
        self.path = path
        self.text = path.read_text(encoding="utf-8")
        self.code = strip_comments(self.text)
        self.result = result
        self.modules = modules
        self.params = {match["name"]: match["type"] for match in _PARAM.finditer(self.code)}
        self._lines = [index for index, char in enumerate(self.text) if char == "\n"]

    def where(self, offset: int) -> str:
        return f"{_shown(self.path)}:{bisect.bisect_left(self._lines, offset) + 1}"

    def problem(self, offset: int, message: str) -> None:
        self.result.problems.append(f"{self.where(offset)}: {message}")

    def check(self) -> None:
        for match in _DECLARATION.finditer(self.code):
            if not match["type"].startswith("Microsoft."):
                continue
            self.result.resources += 1
            self.check_resource(match)
        self.check_role_ids()
        self.check_loaded_files()

    def check_loaded_files(self) -> None:
        """Each file a template loads exists; a JSON one parses; a workbook's (``*.workbook.json``) is a workbook."""
        for match in _LOADED.finditer(self.code):
            target = (self.path.parent / match["path"]).resolve()
            if not target.is_file():
                self.problem(match.start(), f"loadTextContent: {match['path']} does not exist")
                continue
            if target.suffix != ".json":
                continue
            try:
                document = json.loads(target.read_text(encoding="utf-8"))
            except ValueError as error:
                self.problem(match.start(), f"{match['path']} is not JSON: {error}")
                continue
            if target.name.endswith(".workbook.json"):
                for message in workbook_problems(document):
                    self.problem(match.start(), f"{match['path']}: {message}")

    def check_resource(self, match: re.Match[str]) -> None:
        resource_type, version = match["type"], match["version"]
        key = next((k for k in MODELS if k[0].lower() == resource_type.lower() and k[1] == version), None)
        if key is None:
            reason = UNCHECKED.get((resource_type, version))
            if reason:
                self.result.notes.append(
                    f"{self.where(match.start())}: not checked: {resource_type}@{version}: {reason}"
                )
                return
            self.problem(match.start(), f"{resource_type}@{version}: no installed azure-mgmt-* package knows this "
                                        "type and API version (add it to tools/arm_check.py MODELS)")  # fmt: skip
            return
        spec = MODELS[key]
        if key[0] != resource_type:
            self.problem(match.start(), f"write the type as {key[0]} (ARM's casing)")
        models = self._models(spec, match.start(), f"{resource_type}@{version}")
        if models is None:
            return
        if spec.approximate:
            self.result.notes.append(f"{self.where(match.start())}: {resource_type}@{version}: {spec.approximate}")
        index = match.end()
        if self.code.startswith("if ", index):
            index += 3 + len(block_at(self.code, index + 3))
            while self.code[index] == " ":
                index += 1
        end = index + len(block_at(self.code, index))
        body = parse_value(self.code, index, end)
        if body.kind == "for":
            body = body.items[0]
        if body.kind != "object":
            self.problem(index, f"the body of {match['symbol']} is not an object literal")
            return
        if match["existing"]:
            return
        model_name = spec.model
        if isinstance(model_name, dict):
            name = next((value for key, _, value in body.entries if key == "name"), None)
            literal = name.text[1:-1] if name is not None and name.kind == "string" else None
            if literal not in model_name:
                self.problem(body.start, f"{resource_type}: name {literal!r} is none of {sorted(model_name)}, whose "
                                         "models the check knows")  # fmt: skip
                return
            model_name = model_name[literal]
        try:
            trie = models.trie(model_name)
        except KeyError:
            self.problem(match.start(), f"{spec.module} has no model {model_name}")
            return
        self.check_object(body, models, model_name, trie, "", top=True)

    def _models(self, spec: Model, offset: int, what: str) -> Models | None:
        if spec.module not in self.modules:
            try:
                self.modules[spec.module] = Models(spec.module)
            except ImportError:
                self.problem(offset, f"{what}: the module {spec.module} is not installed (requirements-infra.txt)")
                return None
        if spec.operations:
            version = what.rsplit("@", 1)[1]
            source = inspect.getsource(importlib.import_module(spec.operations))
            if f'"api-version", "{version}"' not in source and f'api_version = "{version}"' not in source:
                self.problem(offset, f"{what}: {spec.operations} does not use API version {version}")
                return None
        return self.modules[spec.module]

    def check_object(
        self, node: Node, models: Models, model_name: str, trie: Trie, path: str, *, top: bool = False
    ) -> None:
        for key, offset, value in node.entries:
            if top and key in BICEP_KEYWORDS:
                continue
            if "${" in key:
                self.problem(offset, f"a computed key {key!r} where {model_name} has fixed property names")
                continue
            child = trie.children.get(key)
            if child is None:
                known = {name.lower(): name for name in trie.children}
                hint = f"; write it as {known[key.lower()]}" if key.lower() in known else ""
                writable = [name for name, sub in trie.children.items() if not (sub.leaf and sub.leaf[2])]
                names = ", ".join(sorted(writable)) or "none"
                self.problem(offset, f"{model_name} has no property {path}{key}{hint} (it has: {names})")
                continue
            self.result.properties += 1
            if child.leaf is None:
                if value.kind != "object":
                    self.problem(value.start, f"{path}{key} is an object in {model_name}, not {self.describe(value)}")
                    continue
                self.check_object(value, models, model_name, child, f"{path}{key}.")
                continue
            attribute, type_name, readonly = child.leaf
            if readonly:
                self.problem(offset, f"{path}{key} is read-only in {model_name}: ARM sets it")
                continue
            self.check_value(value, type_name, models, f"{model_name} {path}{key}", (model_name, attribute))

    def describe(self, node: Node) -> str:
        kind = self.type_of(node)
        return {"string": "a string", "int": "a number", "bool": "a boolean", "object": "an object",
                "array": "an array", "null": "null"}.get(kind or "", node.text[:40])  # fmt: skip

    def type_of(self, node: Node) -> str | None:
        """string | int | bool | object | array | null, or None when an expression's type is not known."""
        if node.kind in ("object", "array", "string", "int", "bool", "null"):
            return node.kind
        if node.kind == "for":
            return "array"
        text = node.text
        if re.fullmatch(r"\w+", text) and text in self.params:
            return {"string": "string", "int": "int", "bool": "bool", "object": "object", "array": "array"}.get(
                self.params[text]
            )
        call = re.fullmatch(r"(\w+)\(.*\)", text, re.S)
        if call and call[1] in _FUNCTION_TYPES and _closes_at_end(text):
            return _FUNCTION_TYPES[call[1]]
        if re.fullmatch(r"\w+(\[\w+\])?\.(id|name)", text):
            return "string"
        return None

    def check_value(self, node: Node, type_name: str, models: Models, what: str, owner: tuple[str, str]) -> None:
        actual = self.type_of(node)
        if type_name.startswith("[") and type_name.endswith("]"):
            if actual not in (None, "array"):
                self.problem(node.start, f"{what} takes an array, not {self.describe(node)}")
            for item in node.items:
                self.check_value(item, type_name[1:-1], models, f"{what}[]", owner)
            return
        if type_name.startswith("{") and type_name.endswith("}"):
            if actual not in (None, "object"):
                self.problem(node.start, f"{what} takes an object (a dictionary), not {self.describe(node)}")
                return
            for key, _, value in node.entries:
                self.check_value(value, type_name[1:-1], models, f"{what}[{key}]", owner)
            return
        expected = _PRIMITIVES.get(type_name)
        if expected is not None:
            if actual is not None and actual != "null" and actual not in expected:
                self.problem(node.start, f"{what} takes {_NAMES[type_name]}, not {self.describe(node)}")
            elif node.kind == "string" and "${" not in node.text and type_name == "str":
                values = models.enum_values(*owner)
                if values is not None and node.text[1:-1].lower() not in values:
                    self.problem(node.start, f"{what}: {node.text} is not one of {', '.join(sorted(values))}")
            return
        if type_name == "object":
            return
        try:
            nested = models.subtype(type_name, node) if node.kind == "object" else type_name
            trie = models.trie(nested)
        except KeyError:
            self.problem(node.start, f"{what}: the check does not know the type {type_name!r}")
            return
        if actual not in (None, "object"):
            self.problem(node.start, f"{what} takes an object ({type_name}), not {self.describe(node)}")
            return
        if node.kind == "object":
            self.check_object(node, models, nested, trie, f"{what.split(' ', 1)[-1]}.")

    def check_role_ids(self) -> None:
        by_id = {value: name for name, value in ROLE_DEFINITIONS.items()}
        for match in GUID.finditer(self.code):
            line_start = self.text.rfind("\n", 0, match.start()) + 1
            line_end = self.text.find("\n", match.end())
            line = self.text[line_start : line_end if line_end >= 0 else len(self.text)]
            name = by_id.get(match[0].lower())
            if name is None:
                self.problem(match.start(), f"{match[0]} is not a built-in role of tools/arm_check.py ROLE_DEFINITIONS")
            elif not re.search(rf"//.*\b{re.escape(name)}\s*$", line):
                self.problem(match.start(), f"{match[0]} is {name}: name it in a comment beside the id (// {name})")
        for match in _DECLARATION.finditer(self.code):
            if match["type"].lower() != "microsoft.authorization/roleassignments" or match["existing"]:
                continue
            body = self.code[match.end() : match.end() + len(block_at(self.code, self.code.index("{", match.end())))]
            if "subscriptionResourceId('Microsoft.Authorization/roleDefinitions'" not in body:
                self.problem(match.start(), f"{match['symbol']}: name the role with subscriptionResourceId("
                                            "'Microsoft.Authorization/roleDefinitions', <id>)")  # fmt: skip


def workbook_problems(document: object) -> list[str]:
    """What keeps a workbook's serializedData from opening as a working workbook: not Notebook/1.0, no items, an
    item without a unique name, a query item without its KQL (Logs) or with an unknown visualization, a query
    naming a parameter the workbook does not declare."""
    if not isinstance(document, dict) or document.get("version") != "Notebook/1.0":
        return ['not a workbook: its "version" must be "Notebook/1.0"']
    items = document.get("items")
    if not isinstance(items, list) or not items:
        return ["the workbook has no items"]
    problems: list[str] = []
    declared = {
        parameter.get("name")
        for item in items
        if isinstance(item, dict) and item.get("type") == 9
        for parameter in item.get("content", {}).get("parameters", [])
    }
    names: set[str] = set()
    for number, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not name or name in names:
            problems.append(f"item {number} needs a name of its own")
        names.add(str(name))
        content = item.get("content", {}) if isinstance(item, dict) else {}
        queries = [content] if item.get("type") == 3 else list(content.get("parameters", []))
        for query in queries:
            if item.get("type") == 3 or "query" in query:
                text = query.get("query")
                if not isinstance(text, str) or not text.strip():
                    problems.append(f"{name}: a query item without its query")
                    continue
                if query.get("queryType") != 0:
                    problems.append(f"{name}: queryType {query.get('queryType')!r} is not 0 (Logs)")
                unknown = {found["name"] for found in _WORKBOOK_PARAMETER.finditer(text)} - declared
                if unknown:
                    problems.append(f"{name}: the query names parameters the workbook lacks: {sorted(unknown)}")
        if item.get("type") == 3 and content.get("visualization") not in _VISUALIZATIONS:
            problems.append(f"{name}: unknown visualization {content.get('visualization')!r}")
    return problems


_PRIMITIVES = {
    "str": {"string"},
    "int": {"int"},
    "long": {"int"},
    "float": {"int"},
    "bool": {"bool"},
    "iso-8601": {"string"},
    "duration": {"string"},
    "rfc-1123": {"string"},
    "date": {"string"},
    "time": {"string"},
    "bytearray": {"string"},
    "base64": {"string"},
}
_NAMES = {
    "str": "a string",
    "int": "a number",
    "long": "a number",
    "float": "a number",
    "bool": "a boolean",
    "iso-8601": "a date-time string",
    "duration": "an ISO 8601 duration string",
    "rfc-1123": "a date string",
    "date": "a date string",
    "time": "a time string",
    "bytearray": "a base64 string",
    "base64": "a base64 string",
}


def _closes_at_end(text: str) -> bool:
    """Whether the call's opening parenthesis closes at the end of ``text`` (``f(a).b`` is not a call of f)."""
    opening = text.index("(")
    return len(block_at(text, opening)) == len(text) - opening


def _shown(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def check(infra: Path) -> Checked:
    result = Checked()
    modules: dict[str, Models] = {}
    for path in sorted(infra.rglob("*.bicep")):
        try:
            FileChecker(path, result, modules).check()
        except ValueError as error:
            result.problems.append(f"{_shown(path)}: cannot read the file: {error}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--infra", type=Path, default=INFRA, help="folder with the Bicep files (default: infra)")
    options = parser.parse_args(argv)
    result = check(options.infra.resolve())
    for note in result.notes:
        print(f"note: {note}")
    print(
        f"ARM models: {result.resources} Microsoft.* resources, {result.properties} properties checked, "
        f"{len(result.problems)} problems"
    )
    for problem in result.problems:
        print(problem, file=sys.stderr)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
