"""The code against the Bicep: every container, table and queue the code uses is created by the storage
module, and every app setting the code reads is set by the function app module or documented as
optional in infra/README.md. No Bicep compiler here: the templates are read as text
(tools/check_infra.py has the small Bicep model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.config import DEFAULT_SCHEDULES, STORAGE_CONNECTION, Containers, Queues, Tables
from tools.check_infra import BicepFile, array_items, call_arguments, object_entries, objects_in, unquote

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
RUNTIME_CODE = [
    ROOT / "function_app.py",
    *sorted((ROOT / "functions").rglob("*.py")),
    *sorted((ROOT / "shared").rglob("*.py")),
]

_SETTING_LITERAL = re.compile(r"[\"'](APPBACKUPS_[A-Z0-9_]+)[\"']")
_SETTING_REFERENCE = re.compile(r"[\"']%([A-Za-z_][A-Za-z0-9_]*)%[\"']")  # a binding expression, "%SETTING%"


@pytest.fixture(scope="module")
def storage() -> BicepFile:
    return BicepFile(INFRA / "modules" / "storage.bicep")


@pytest.fixture(scope="module")
def functionapp() -> BicepFile:
    return BicepFile(INFRA / "modules" / "functionapp.bicep")


def _names(bicep: BicepFile, var: str) -> list[str]:
    names = [unquote(item) for item in array_items(bicep.var(var))]
    assert all(names), f"{var} holds something else than plain strings: {names}"
    return [name for name in names if name]


def _looped_names(bicep: BicepFile, resource_type: str) -> list[str]:
    """The names a resource loop creates: the resource must loop over a var of plain names."""
    [resource] = bicep.resources_of_type(resource_type)
    assert resource.loop, f"{resource_type} is expected to be a loop over a list of names"
    return _names(bicep, resource.loop)


def test_storage_creates_every_container_the_code_uses(storage: BicepFile) -> None:
    created = _looped_names(storage, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert set(Containers.ALL) <= set(created), f"missing containers: {set(Containers.ALL) - set(created)}"


def test_storage_creates_every_table_the_code_uses(storage: BicepFile) -> None:
    created = _looped_names(storage, "Microsoft.Storage/storageAccounts/tableServices/tables")
    assert set(Tables.ALL) <= set(created), f"missing tables: {set(Tables.ALL) - set(created)}"


def test_storage_creates_every_queue_and_its_poison_queue(storage: BicepFile) -> None:
    created = set(_looped_names(storage, "Microsoft.Storage/storageAccounts/queueServices/queues"))
    needed = {*Queues.ALL, *(Queues.poison(queue) for queue in Queues.ALL)}
    assert needed <= created, f"missing queues: {needed - created}"


def test_storage_creates_nothing_the_code_does_not_know(storage: BicepFile) -> None:
    """A name in the Bicep that the code no longer uses is a renamed or removed resource left behind."""
    containers = _looped_names(storage, "Microsoft.Storage/storageAccounts/blobServices/containers")
    tables = _looped_names(storage, "Microsoft.Storage/storageAccounts/tableServices/tables")
    queues = _looped_names(storage, "Microsoft.Storage/storageAccounts/queueServices/queues")
    assert set(containers) == set(Containers.ALL)
    assert set(tables) == set(Tables.ALL)
    assert set(queues) == {*Queues.ALL, *(Queues.poison(queue) for queue in Queues.ALL)}


def test_the_immutability_policy_protects_the_snapshots_container(storage: BicepFile) -> None:
    [policy] = storage.resources_of_type(
        "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies"
    )
    parent = object_entries(policy.body)["parent"]
    match = re.fullmatch(r"containers\[(\d+)\]", parent)
    assert match, f"the policy's parent should be one of the containers, not {parent}"
    containers = _looped_names(storage, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert containers[int(match[1])] == Containers.BACKUPS
    assert policy.condition == "snapshotImmutabilityDays > 0", "the policy must stay optional (off by default)"


def test_lifecycle_rules_expire_archives_and_abandoned_uploads(storage: BicepFile) -> None:
    [policy] = storage.resources_of_type("Microsoft.Storage/storageAccounts/managementPolicies")
    rules = array_items(object_entries(object_entries(object_entries(policy.body)["properties"])["policy"])["rules"])
    deleting_base_blobs: set[str] = set()
    for rule in rules:
        definition = object_entries(object_entries(rule)["definition"])
        prefixes = [unquote(item) or "" for item in array_items(object_entries(definition["filters"])["prefixMatch"])]
        containers = {prefix.split("/")[0] for prefix in prefixes}
        assert containers <= set(Containers.ALL), f"a lifecycle rule reaches outside the app's containers: {prefixes}"
        if "baseBlob" in object_entries(definition["actions"]):
            deleting_base_blobs |= containers
    assert deleting_base_blobs == {Containers.ARCHIVES, Containers.UPLOADS}, (
        "only download archives and abandoned uploads expire by lifecycle; snapshots and content are pruned by the app"
    )


# -- app settings -----------------------------------------------------------------------------------


def _settings_groups(functionapp: BicepFile) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The union() arguments of allSettings in order, and the settings of each var among them."""
    arguments = call_arguments(functionapp.var("allSettings"))
    groups: dict[str, dict[str, str]] = {}
    for argument in arguments:
        if argument in functionapp.params():
            continue
        groups[argument] = {
            key: value for entries in objects_in(functionapp.var(argument)) for key, value in entries.items()
        }
    return arguments, groups


def _bicep_settings(functionapp: BicepFile) -> dict[str, str]:
    _, groups = _settings_groups(functionapp)
    return {key: value for group in groups.values() for key, value in group.items()}


def _code_settings() -> set[str]:
    found: set[str] = set()
    for path in RUNTIME_CODE:
        found |= set(_SETTING_LITERAL.findall(path.read_text(encoding="utf-8")))
    return found


def _trigger_setting_references() -> set[str]:
    """Settings the triggers name as %SETTING% (timer schedules): the host cannot start without them."""
    found: set[str] = set()
    for path in RUNTIME_CODE:
        found |= set(_SETTING_REFERENCE.findall(path.read_text(encoding="utf-8")))
    return found


def _documented_optional_settings() -> set[str]:
    text = (INFRA / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^### Optional app settings\n(?P<section>.*?)(?=^#)", text, re.M | re.S)
    assert match, "infra/README.md needs a '### Optional app settings' section"
    return set(re.findall(r"^\| `(APPBACKUPS_[A-Z0-9_]+)` \|", match["section"], re.M))


def test_documented_optional_defaults_are_the_codes() -> None:
    from shared.config import Settings

    text = (INFRA / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^### Optional app settings\n(?P<section>.*?)(?=^#)", text, re.M | re.S)
    assert section
    rows = re.findall(r"^\| `(APPBACKUPS_[A-Z0-9_]+)` \| ([^|]+) \|", section["section"], re.M)
    fields = {info.validation_alias: info for info in Settings.model_fields.values()}
    assert rows
    for name, documented in rows:
        default = fields[name].default
        if default in (None, frozenset(), ""):
            expected = "(none)"
        elif isinstance(default, tuple):
            expected = "`" + ",".join(str(item) for item in default) + "`"  # as the app setting is written
        else:
            expected = str(default)
        assert documented.strip() == expected, f"infra/README.md says {name} defaults to {documented.strip()!r}"


def test_the_code_reads_settings_from_config_py() -> None:
    """Guards the scan below: if it found nothing, the other tests would pass for the wrong reason."""
    config = (ROOT / "shared" / "config.py").read_text(encoding="utf-8")
    in_config = set(_SETTING_LITERAL.findall(config))
    assert {"APPBACKUPS_DEVELOPMENT_MODE", "APPBACKUPS_GLOBAL_ADMINS"} <= in_config
    assert in_config <= _code_settings()


def test_every_setting_the_code_reads_is_set_or_documented_optional(functionapp: BicepFile) -> None:
    set_by_bicep = set(_bicep_settings(functionapp))
    optional = _documented_optional_settings()
    missing = _code_settings() - set_by_bicep - optional
    assert not missing, (
        f"the code reads {sorted(missing)}: set them in infra/modules/functionapp.bicep or list them under "
        "'Optional app settings' in infra/README.md"
    )


def test_documented_optional_settings_are_read_by_the_code_and_really_optional(functionapp: BicepFile) -> None:
    optional = _documented_optional_settings()
    assert optional, "the optional settings table is empty or unreadable"
    assert optional <= _code_settings(), f"documented but never read: {sorted(optional - _code_settings())}"
    required = _trigger_setting_references()
    assert not optional & required, f"triggers need these, so they are not optional: {sorted(optional & required)}"
    assert not optional & set(_bicep_settings(functionapp)), "a setting is both set by Bicep and listed as optional"


def test_every_setting_a_trigger_names_is_set(functionapp: BicepFile) -> None:
    references = _trigger_setting_references()
    assert references, "no %SETTING% found: the timer schedules are expected to be app settings"
    missing = references - set(_bicep_settings(functionapp))
    assert not missing, f"the host cannot resolve {sorted(missing)}: set them in infra/modules/functionapp.bicep"


def test_schedule_defaults_match_the_code(functionapp: BicepFile) -> None:
    schedules = {key: unquote(value) for key, value in object_entries(functionapp.var("scheduleSettings")).items()}
    assert schedules == DEFAULT_SCHEDULES


def test_storage_connection_is_identity_based_in_a_form_the_code_reads(functionapp: BicepFile) -> None:
    config = (ROOT / "shared" / "config.py").read_text(encoding="utf-8")
    suffixes_read = set(re.findall(r"\{name\}__(\w+)", config))
    settings = _bicep_settings(functionapp)
    assert STORAGE_CONNECTION not in settings, "no connection string: the connection must be identity-based"
    suffixes_set = {key.split("__", 1)[1] for key in settings if key.startswith(f"{STORAGE_CONNECTION}__")}
    uris = {"blobServiceUri", "queueServiceUri", "tableServiceUri"}
    assert uris <= suffixes_set or "accountName" in suffixes_set, "the code needs accountName or all three URIs"
    assert suffixes_set - {"credential"} <= suffixes_read, f"set but never read: {suffixes_set - suffixes_read}"
    assert "clientId" in suffixes_read
    assert "clientId" in suffixes_set, "the user-assigned identity must be named (BackupStorage__clientId)"
    assert unquote(settings[f"{STORAGE_CONNECTION}__credential"]) == "managedidentity"


def test_every_trigger_connection_is_configured_with_the_identity(functionapp: BicepFile) -> None:
    settings = _bicep_settings(functionapp)
    connections: set[str] = set()
    for path in (ROOT / "functions").rglob("*.py"):
        for value in re.findall(r"connection=([\w\"']+)", path.read_text(encoding="utf-8")):
            connections.add(STORAGE_CONNECTION if value == "STORAGE_CONNECTION" else value.strip("\"'"))
    assert connections, "no queue trigger found; the scan is broken"
    for connection in connections:
        assert unquote(settings.get(f"{connection}__credential", "")) == "managedidentity", connection
        assert f"{connection}__clientId" in settings, connection
        assert f"{connection}__queueServiceUri" in settings or f"{connection}__accountName" in settings, connection


def test_host_storage_is_identity_based(functionapp: BicepFile) -> None:
    settings = _bicep_settings(functionapp)
    assert "AzureWebJobsStorage" not in settings
    assert "AzureWebJobsStorage__accountName" in settings
    assert unquote(settings["AzureWebJobsStorage__credential"]) == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"


def test_development_mode_is_off_and_cannot_be_overridden(functionapp: BicepFile) -> None:
    arguments, groups = _settings_groups(functionapp)
    holders = [name for name, group in groups.items() if "APPBACKUPS_DEVELOPMENT_MODE" in group]
    assert holders, "APPBACKUPS_DEVELOPMENT_MODE must be set explicitly"
    for holder in holders:
        assert unquote(groups[holder]["APPBACKUPS_DEVELOPMENT_MODE"]) == "false"
        assert arguments.index(holder) > arguments.index("appSettings"), "the appSettings parameter must not win"
    main = BicepFile(INFRA / "main.bicep")
    assert "APPBACKUPS_DEVELOPMENT_MODE" not in main.text
    assert "APPBACKUPS_DEVELOPMENT_MODE" not in (INFRA / "main.parameters.json").read_text(encoding="utf-8")


def test_global_admins_come_from_a_parameter(functionapp: BicepFile) -> None:
    settings = _bicep_settings(functionapp)
    assert settings["APPBACKUPS_GLOBAL_ADMINS"] == "join(globalAdmins, ',')"
    assert "globalAdmins" in functionapp.params()
    main = BicepFile(INFRA / "main.bicep")
    assert "globalAdmins" in main.params()
    [module] = [module for module in main.modules() if module.path == "modules/functionapp.bicep"]
    assert object_entries(object_entries(module.body)["params"])["globalAdmins"] == "globalAdmins"
