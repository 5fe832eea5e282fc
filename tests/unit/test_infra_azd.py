"""azd: azure.yaml, main.parameters.json (azd's environment variables) and the hooks, held against main.bicep,
the function app module and the Dockerfile. azd itself cannot run here (no Azure); the hooks run against
stand-ins for az and azd that record what they are asked."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import yaml

from tools.check_infra import BicepFile

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
# What azd itself sets in an environment (azd env get-values), as main.parameters.json may use them.
AZD_VARIABLES = {
    "AZURE_ENV_NAME",
    "AZURE_LOCATION",
    "AZURE_PRINCIPAL_ID",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_RESOURCE_GROUP",
}


def azure_yaml() -> dict:
    return yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))


def test_azure_yaml_provisions_main_bicep_and_deploys_the_image_as_a_function_container():
    document = azure_yaml()
    assert document["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert (ROOT / document["infra"]["path"] / f"{document['infra']['module']}.bicep").is_file()
    [(name, service)] = document["services"].items()
    assert (service["host"], service["language"], service["project"]) == ("function", "python", ".")
    assert (ROOT / service["docker"]["path"]).resolve() == ROOT / "Dockerfile"
    assert service["docker"]["remoteBuild"] is True  # built in the registry: no Docker engine needed
    # azd deploy finds the function app by its azd-service-name tag, and pushes to the registry azd is told.
    functionapp = (INFRA / "modules" / "functionapp.bicep").read_text(encoding="utf-8")
    assert f"'azd-service-name': '{name}'" in functionapp
    main = BicepFile(INFRA / "main.bicep")
    assert {
        "AZURE_CONTAINER_REGISTRY_ENDPOINT",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_IDENTITY_PRINCIPAL_ID",
    } <= main.outputs()
    for hook in document["hooks"].values():
        path = ROOT / hook["run"]
        assert path.is_file(), hook
        assert path.stat().st_mode & stat.S_IXUSR, f"{path} is not executable"


def test_main_parameters_take_azd_variables_for_parameters_main_bicep_has():
    main = BicepFile(INFRA / "main.bicep").params()
    text = (INFRA / "main.parameters.json").read_text(encoding="utf-8")
    parameters = json.loads(text)["parameters"]
    assert set(parameters) <= set(main)
    assert [name for name, has_default in main.items() if not has_default and name not in parameters] == []
    readme = (INFRA / "README.md").read_text(encoding="utf-8")
    for variable in set(re.findall(r"\$\{(\w+)(?:=[^}]*)?\}", text)):
        assert variable in AZD_VARIABLES or f"`{variable}`" in readme, f"infra/README.md does not explain {variable}"
    assert parameters["authClientId"]["value"] == "${APPBACKUPS_AUTH_CLIENT_ID}"
    assert parameters["imageName"]["value"] == "${SERVICE_API_IMAGE_NAME=}"  # what azd deployed, on re-provision
    assert parameters["placeholderImage"]["value"] is True  # the app exists before azd deploy's first image
    assert parameters["globalAdmins"]["value"] == ["${AZURE_PRINCIPAL_ID}"]  # whoever runs azd up


def fake_tools(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """az and azd stand-ins on PATH: each appends its arguments to calls.log; az answers the queries the hooks make."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "az").write_text(
        "#!/bin/sh\n"
        f'echo "az $*" >> "{log}"\n'
        'case "$*" in\n'
        '  "ad app create"*) echo 11111111-2222-3333-4444-555555555555 ;;\n'
        '  "account show"*) echo tenant-id ;;\n'
        '  "ad app federated-credential list"*) [ -n "${FEDERATED_EXISTS:-}" ] && echo appbackups-managed-identity ;;\n'
        "esac\n"
        "exit 0\n"
    )
    (bin_dir / "azd").write_text(f'#!/bin/sh\necho "azd $*" >> "{log}"\n')
    for tool in ("az", "azd"):
        (bin_dir / tool).chmod(0o755)
    environment = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "AZURE_ENV_NAME": "dev"}
    return environment, log


def run_hook(name: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(INFRA / "hooks" / name)], capture_output=True, text=True, env=environment,
                          timeout=30, check=False)  # fmt: skip


def test_preprovision_creates_the_app_registration_once(tmp_path):
    environment, log = fake_tools(tmp_path)
    result = run_hook("preprovision.sh", environment)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    client = "11111111-2222-3333-4444-555555555555"
    assert calls[0].startswith("az ad app create --display-name appbackups-dev --sign-in-audience AzureADMyOrg")
    assert f"az ad app update --id {client} --identifier-uris api://{client}" in calls
    assert calls[-1] == f"azd env set APPBACKUPS_AUTH_CLIENT_ID {client}"

    log.unlink()
    again = run_hook("preprovision.sh", {**environment, "APPBACKUPS_AUTH_CLIENT_ID": client})
    assert again.returncode == 0, again.stderr
    assert not log.exists(), "an existing registration is reused: no az call"


def test_postprovision_finishes_the_registration_and_is_safe_to_repeat(tmp_path):
    environment, log = fake_tools(tmp_path)
    environment.update({"APPBACKUPS_AUTH_CLIENT_ID": "client", "AZURE_FUNCTION_APP_NAME": "func-x",
                        "AZURE_IDENTITY_PRINCIPAL_ID": "principal"})  # fmt: skip
    result = run_hook("postprovision.sh", environment)
    assert result.returncode == 0, result.stderr
    text = log.read_text()
    assert (
        "az ad app update --id client --web-redirect-uris https://func-x.azurewebsites.net/.auth/login/aad/callback"
        in text
    )
    created = [line for line in text.splitlines() if line.startswith("az ad app federated-credential create")]
    assert len(created) == 1
    assert '"subject": "principal"' in text
    assert "login.microsoftonline.com/tenant-id/v2.0" in text

    log.unlink()
    result = run_hook("postprovision.sh", {**environment, "FEDERATED_EXISTS": "1"})
    assert result.returncode == 0, result.stderr
    assert "federated-credential create" not in log.read_text()

    without_app = run_hook("postprovision.sh", {**environment, "AZURE_FUNCTION_APP_NAME": ""})
    assert (without_app.returncode, "nothing to finish" in without_app.stdout) == (0, True)
