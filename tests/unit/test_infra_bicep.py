"""The Bicep in infra/ read as text (no compiler here): secure by default, modules wired the way they
declare, the parameters file and README true to main.bicep, and an image that holds what runs."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest

from tools.check_infra import (
    MIN_REASON_LENGTH,
    BicepFile,
    array_items,
    bicep_files,
    call_arguments,
    object_entries,
    objects_in,
    path_value,
    unquote,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MODULES = INFRA / "modules"

ROLE_IDS = {
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "EventGrid Data Sender": "d5a91429-5739-47e2-a06b-3470a27159e7",
}


def module(name: str) -> BicepFile:
    return BicepFile(MODULES / f"{name}.bicep")


def only(bicep: BicepFile, resource_type: str) -> str:
    [resource] = bicep.resources_of_type(resource_type)
    return resource.body


def app_settings() -> dict[str, str]:
    functionapp = module("functionapp")
    settings: dict[str, str] = {}
    for argument in call_arguments(functionapp.var("allSettings")):
        if argument not in functionapp.params():
            for entries in objects_in(functionapp.var(argument)):
                settings.update(entries)
    return settings


# -- no keys, identity everywhere -------------------------------------------------------------------


@pytest.mark.parametrize(
    "forbidden",
    ["listKeys", "AccountKey=", "DefaultEndpointsProtocol", "SharedAccessKey", "DOCKER_REGISTRY_SERVER_PASSWORD"],
)
def test_no_keys_or_connection_strings_anywhere_in_infra(forbidden: str) -> None:
    for path in [*INFRA.rglob("*.bicep"), *INFRA.rglob("*.json")]:
        code = BicepFile(path).code if path.suffix == ".bicep" else path.read_text(encoding="utf-8")
        assert forbidden.lower() not in code.lower(), f"{path.relative_to(ROOT)} contains {forbidden}"


def test_app_settings_hold_no_secret_and_sign_in_with_the_identity() -> None:
    settings = app_settings()
    assert settings, "no app settings found; the reading is broken"
    for name, value in settings.items():
        assert "CONNECTION_STRING" not in name or name == "APPLICATIONINSIGHTS_CONNECTION_STRING", name
        assert not re.search(r"password|secret|key=", value, re.I), f"{name} looks like a secret: {value}"
        if name.endswith("__credential"):
            assert unquote(value) == "managedidentity", name
        if name.endswith("__clientId"):
            assert value == "identityClientId", name
    assert "Authorization=AAD" in settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]


def test_storage_account_allows_no_shared_key_and_no_public_blobs() -> None:
    properties = object_entries(path_value(only(module("storage"), "Microsoft.Storage/storageAccounts"), "properties"))
    assert properties["allowSharedKeyAccess"] == "false"
    assert properties["allowBlobPublicAccess"] == "false"
    assert properties["minimumTlsVersion"] == "'TLS1_2'"
    assert properties["supportsHttpsTrafficOnly"] == "true"
    assert properties["defaultToOAuthAuthentication"] == "true"
    containers = only(module("storage"), "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert path_value(containers, "properties", "publicAccess") == "'None'"


def test_blob_versioning_and_soft_delete_are_on() -> None:
    properties = path_value(only(module("storage"), "Microsoft.Storage/storageAccounts/blobServices"), "properties")
    assert path_value(properties, "isVersioningEnabled") == "true"
    assert path_value(properties, "deleteRetentionPolicy", "enabled") == "true"
    assert path_value(properties, "containerDeleteRetentionPolicy", "enabled") == "true"


def test_only_the_function_app_origin_may_use_sas_urls_from_a_browser() -> None:
    properties = path_value(only(module("storage"), "Microsoft.Storage/storageAccounts/blobServices"), "properties")
    [rule] = array_items(path_value(properties, "cors", "corsRules"))
    assert path_value(rule, "allowedOrigins") == "browserOrigins"
    assert {unquote(method) for method in array_items(path_value(rule, "allowedMethods"))} == {
        "GET",
        "HEAD",
        "PUT",
        "OPTIONS",
    }
    [storage] = [used for used in BicepFile(INFRA / "main.bicep").modules() if Path(used.path).stem == "storage"]
    origins = array_items(object_entries(object_entries(storage.body)["params"])["browserOrigins"])
    assert origins == ["'https://${names.functionApp}.azurewebsites.net'"]


def test_role_assignments_are_named_guid_of_scope_principal_and_role() -> None:
    assignments = [
        (bicep, resource)
        for bicep in bicep_files(INFRA)
        for resource in bicep.resources_of_type("Microsoft.Authorization/roleAssignments")
    ]
    assert len(assignments) >= 5
    for bicep, resource in assignments:
        entries = object_entries(resource.body)
        assert entries["name"].startswith("guid("), f"{bicep.path.name} {resource.symbol}: {entries['name']}"
        scope, principal, role = call_arguments(entries["name"])
        own_scope = f"{entries['scope']}.id" if "scope" in entries else "resourceGroup().id"  # none: the deployment's
        assert scope == own_scope, f"{resource.symbol}: the guid must start with its scope"
        assert principal == path_value(resource.body, "properties", "principalId"), resource.symbol
        assert role in path_value(resource.body, "properties", "roleDefinitionId"), resource.symbol


def test_the_identity_gets_exactly_the_roles_it_needs() -> None:
    roles = module("roles")
    role_ids = {key: unquote(value) for key, value in object_entries(roles.var("roles")).items()}
    granted: dict[str, str] = {}  # role id -> scope
    for resource in roles.resources_of_type("Microsoft.Authorization/roleAssignments"):
        entries = object_entries(resource.body)
        if path_value(resource.body, "properties", "principalId") != "principalId":
            continue  # the operators' Key Vault Secrets Officer
        role = call_arguments(entries["name"])[2]
        ids = (
            [role_ids[item.split(".")[1]] for item in array_items(roles.var(resource.loop))]
            if resource.loop
            else [role_ids[role.split(".")[1]]]
        )
        for role_id in ids:
            granted[str(role_id)] = entries["scope"]
    assert granted == {
        ROLE_IDS["Storage Blob Data Contributor"]: "storage",
        ROLE_IDS["Storage Queue Data Contributor"]: "storage",
        ROLE_IDS["Storage Table Data Contributor"]: "storage",
        ROLE_IDS["Key Vault Secrets Officer"]: "vault",  # it writes the webhook signing secrets
        ROLE_IDS["AcrPull"]: "registry",
        ROLE_IDS["Monitoring Metrics Publisher"]: "appInsights",
        ROLE_IDS["EventGrid Data Sender"]: "eventGridTopic",
    }


def test_function_app_is_locked_down() -> None:
    functionapp = module("functionapp")
    site = only(functionapp, "Microsoft.Web/sites")
    assert "container" in unquote(object_entries(site)["kind"] or "")
    assert path_value(site, "identity", "type") == "'UserAssigned'"
    properties = path_value(site, "properties")
    assert path_value(properties, "httpsOnly") == "true"
    assert path_value(properties, "keyVaultReferenceIdentity") == "identityId"
    config = path_value(properties, "siteConfig")
    assert path_value(config, "ftpsState") == "'Disabled'"
    assert path_value(config, "minTlsVersion") == "'1.2'"
    assert path_value(config, "remoteDebuggingEnabled") == "false"
    assert path_value(config, "acrUseManagedIdentityCreds") == "true"
    assert path_value(config, "linuxFxVersion").startswith("'DOCKER|")
    policies = functionapp.resources_of_type("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {unquote(object_entries(policy.body)["name"]) for policy in policies} == {"ftp", "scm"}
    assert all(path_value(policy.body, "properties", "allow") == "false" for policy in policies)


def test_app_service_authentication_uses_entra_id_without_a_client_secret() -> None:
    functionapp = module("functionapp")
    [auth] = [
        resource
        for resource in functionapp.resources_of_type("Microsoft.Web/sites/config")
        if unquote(object_entries(resource.body)["name"]) == "authsettingsV2"
    ]
    properties = path_value(auth.body, "properties")
    assert path_value(properties, "platform", "enabled") == "true"
    assert path_value(properties, "globalValidation", "requireAuthentication") == "true"
    entra = path_value(properties, "identityProviders", "azureActiveDirectory")
    assert path_value(entra, "enabled") == "true"
    registration = path_value(entra, "registration")
    assert path_value(registration, "clientId") == "authClientId"
    assert "tenant().tenantId" in path_value(registration, "openIdIssuer")
    secret_setting = unquote(path_value(registration, "clientSecretSettingName"))
    assert secret_setting == "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID", "a federated credential, not a secret"
    assert app_settings()[secret_setting] == "identityClientId"
    assert "'api://${authClientId}'" in array_items(path_value(entra, "validation", "allowedAudiences"))
    assert "authClientId" in BicepFile(INFRA / "main.bicep").params()


def test_application_insights_accepts_only_entra_id_telemetry() -> None:
    monitoring = module("monitoring")
    assert path_value(only(monitoring, "Microsoft.Insights/components"), "properties", "DisableLocalAuth") == "true"
    workspace = only(monitoring, "Microsoft.OperationalInsights/workspaces")
    assert path_value(workspace, "properties", "features", "disableLocalAuth") == "true"


def test_key_vault_uses_rbac_with_purge_protection() -> None:
    properties = path_value(only(module("keyvault"), "Microsoft.KeyVault/vaults"), "properties")
    assert path_value(properties, "enableRbacAuthorization") == "true"
    assert path_value(properties, "enablePurgeProtection") == "true"
    assert path_value(properties, "enableSoftDelete") == "true"


def test_registry_has_no_admin_user_and_no_anonymous_pull() -> None:
    properties = path_value(only(module("registry"), "Microsoft.ContainerRegistry/registries"), "properties")
    assert path_value(properties, "adminUserEnabled") == "false"
    # Anonymous pull is off unless turned on, and 2023-07-01 cannot turn it on: only preview API versions
    # have anonymousPullEnabled (tools/arm_check.py refuses the property here).
    assert "anonymousPullEnabled" not in object_entries(properties)


def test_every_checkov_skip_says_why() -> None:
    skips = [
        (bicep.path.name, line, check, reason)
        for bicep in bicep_files(INFRA)
        for line, check, reason in bicep.skip_comments()
    ]
    assert skips, "no skip comments found; the reading is broken"
    for name, line, check, reason in skips:
        assert len(reason) >= MIN_REASON_LENGTH, f"{name}:{line} skips {check} without a reason"


# -- modules, parameters, outputs -------------------------------------------------------------------


def test_main_passes_every_module_the_parameters_it_declares() -> None:
    main = BicepFile(INFRA / "main.bicep")
    modules = main.modules()
    assert {Path(m.path).stem for m in modules} == {path.stem for path in MODULES.glob("*.bicep")}
    for used in modules:
        declared = BicepFile(INFRA / used.path).params()
        passed = set(object_entries(object_entries(used.body)["params"]))
        assert passed <= set(declared), f"{used.path} has no parameter {sorted(passed - set(declared))}"
        required = {name for name, has_default in declared.items() if not has_default}
        assert required <= passed, f"{used.path} needs {sorted(required - passed)}"


def test_every_module_output_main_uses_exists() -> None:
    main = BicepFile(INFRA / "main.bicep")
    paths = {used.symbol: used.path for used in main.modules()}
    references = set(re.findall(r"\b(\w+)\.outputs\.(\w+)", main.code))
    assert references
    for symbol, output in references:
        assert output in BicepFile(INFRA / paths[symbol]).outputs(), f"{paths[symbol]} has no output {output}"


def test_outputs_of_the_optional_function_app_are_empty_without_it() -> None:
    main = BicepFile(INFRA / "main.bicep")
    [app] = [used for used in main.modules() if used.path == "modules/functionapp.bicep"]
    assert app.condition == "deployFunctionApp"
    assert main.var("deployFunctionApp") == "!empty(imageName) || !empty(imageTag) || placeholderImage"
    for line in main.code.splitlines():
        if line.startswith("output ") and f"{app.symbol}.outputs." in line:
            assert "deployFunctionApp ? " in line, f"an output that would lie without the function app: {line}"
            assert line.endswith(": ''"), f"an output that would lie without the function app: {line}"


def test_the_parameters_file_and_readme_match_main() -> None:
    main = BicepFile(INFRA / "main.bicep").params()
    in_file = set(json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"])
    assert in_file <= set(main), f"unknown parameters in main.parameters.json: {in_file - set(main)}"
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    for name, has_default in main.items():
        assert f"| `{name}` |" in readme, f"infra/README.md does not describe the parameter {name}"
        if not has_default and name not in in_file:
            assert f"{name}=" in readme, f"the deploy commands in infra/README.md must pass {name}"


# -- the image --------------------------------------------------------------------------------------


def test_the_image_is_the_functions_python_image_of_the_project_python() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    version = re.fullmatch(r">=(\d+\.\d+)", requires)
    assert version
    assert f"FROM mcr.microsoft.com/azure-functions/python:4-python{version[1]}\n" in dockerfile
    assert "pip install -r /requirements.txt" in dockerfile


def test_the_image_has_a_postgresql_client_new_enough_for_current_servers() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    majors = re.search(r'^ARG PG_MAJORS="([\d ]+)"$', dockerfile, re.M)
    default = re.search(r"^ARG PG_DEFAULT=(\d+)$", dockerfile, re.M)
    assert majors
    assert default
    installed = [int(major) for major in majors[1].split()]
    assert int(default[1]) == max(installed), "pg_dump on PATH must be the newest installed major"
    assert int(default[1]) >= 17, "pg_dump must be at least as new as the PostgreSQL 16/17 servers it backs up"
    assert "postgresql-client-${major}" in dockerfile
    assert "PATH=/usr/lib/postgresql/${PG_DEFAULT}/bin:${PATH}" in dockerfile


def test_the_image_gets_every_local_package_the_app_imports_and_nothing_else() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", ".dockerignore must be an allow-list"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    # What an import could name: the top-level modules and packages (azure.yaml is neither).
    local = {
        path.stem if path.is_file() else path.name
        for path in ROOT.iterdir()
        if not path.name.startswith(".") and (path.is_dir() or path.suffix == ".py")
    }
    imported: set[str] = set()
    for path in [ROOT / "function_app.py", *(ROOT / "functions").rglob("*.py"), *(ROOT / "shared").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    needed = {name for name in imported & local} | {"function_app.py", "host.json", "requirements.txt"}
    assert {name.removesuffix(".py") for name in needed} <= {name.removesuffix(".py") for name in allowed}
    assert "local.settings.json" not in allowed
