"""The role that lets the app restore flexible servers to a point in time (infra/modules/flexibleservers.bicep),
read as text: granted to the app's identity in each resource group of the servers when main.bicep's parameter
is on and nowhere when it is off, exactly the actions the adapter's management calls need (each call the
adapter makes against the fake of the management API is held against them) and no more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.adapters.pointintime.flexible import FlexibleServerPointInTime
from shared.domain.environments import DatabaseConnection
from tests.support.flexible_servers import SUBSCRIPTION, FakeFlexibleServers
from tools.check_infra import BicepFile, array_items, call_arguments, object_entries, path_value, unquote

INFRA = Path(__file__).resolve().parents[2] / "infra"
MODULE = BicepFile(INFRA / "modules" / "flexibleservers.bicep")
MAIN = BicepFile(INFRA / "main.bicep")

# What each management call of the adapter needs.
NEEDED_BY_CALL = {
    "servers.get": "Microsoft.DBforPostgreSQL/flexibleServers/read",
    "servers.begin_create_or_update": "Microsoft.DBforPostgreSQL/flexibleServers/write",
    "servers.begin_delete": "Microsoft.DBforPostgreSQL/flexibleServers/delete",
    "databases.get": "Microsoft.DBforPostgreSQL/flexibleServers/databases/read",
    "firewall_rules.list_by_server": "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/read",
    "firewall_rules.begin_create_or_update": "Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/write",
}
# What the calls need beyond themselves: the polling of their long-running operations, and a restore into the
# source's virtual network.
NEEDED_BESIDES = {
    "Microsoft.DBforPostgreSQL/locations/azureAsyncOperation/read",
    "Microsoft.DBforPostgreSQL/locations/operationResults/read",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/privateDnsZones/join/action",
}


def granted_actions() -> set[str]:
    [definition] = MODULE.resources_of_type("Microsoft.Authorization/roleDefinitions")
    [permission] = array_items(path_value(definition.body, "properties", "permissions"))
    actions = object_entries(permission)["actions"]
    return {str(unquote(item)) for item in array_items(MODULE.var(actions) if not actions.startswith("[") else actions)}


def test_the_role_is_granted_in_each_resource_group_of_the_servers_only_when_the_parameter_is_on() -> None:
    assert MAIN.params()["pointInTimeOnFlexibleServers"] is True  # has a default…
    assert "param pointInTimeOnFlexibleServers bool = false" in MAIN.code  # …which is off
    groups = MAIN.var("flexibleServerGroups")
    assert groups == (
        "pointInTimeOnFlexibleServers ? (empty(flexibleServerResourceGroups) ? [resourceGroup().name] : "
        "flexibleServerResourceGroups) : []"
    )
    [module] = [used for used in MAIN.modules() if used.path == "modules/flexibleservers.bicep"]
    declaration = MAIN.code[MAIN.code.index("module flexibleServers ") :]
    assert declaration.startswith("module flexibleServers 'modules/flexibleservers.bicep' = [for group in "
                                  "flexibleServerGroups: {")  # fmt: skip
    entries = object_entries(module.body)
    assert entries["scope"] == "resourceGroup(group)"
    assert object_entries(entries["params"])["principalId"] == "identity.outputs.principalId"

    [assignment] = MODULE.resources_of_type("Microsoft.Authorization/roleAssignments")
    assert "scope" not in object_entries(assignment.body)  # the resource group the module is deployed to
    assert path_value(assignment.body, "properties", "principalId") == "principalId"
    assert path_value(assignment.body, "properties", "roleDefinitionId") == (
        "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', restorer.name)"
    )
    assert call_arguments(object_entries(assignment.body)["name"])[2] == "restorer.name"


def test_the_role_is_assignable_only_where_it_is_defined_and_holds_no_wildcard() -> None:
    [definition] = MODULE.resources_of_type("Microsoft.Authorization/roleDefinitions")
    assert array_items(path_value(definition.body, "properties", "assignableScopes")) == ["resourceGroup().id"]
    assert unquote(path_value(definition.body, "properties", "type")) == "CustomRole"
    assert not any("*" in action for action in granted_actions())


def test_the_role_allows_exactly_what_the_adapters_calls_need() -> None:
    now = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    network = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-net/providers/Microsoft.Network"
    fake = FakeFlexibleServers()
    public = fake.add_server("rg-apps", "public-pg", earliest_restore=now - timedelta(days=1), databases=("app",))
    fake.server("public-pg").firewall_rules["office"] = ("198.51.100.7", "198.51.100.7")
    private = fake.add_server(
        "rg-apps",
        "private-pg",
        earliest_restore=now - timedelta(days=1),
        databases=("app",),
        delegated_subnet=f"{network}/virtualNetworks/vnet/subnets/pg",
        private_dns_zone=f"{network}/privateDnsZones/pg.private.postgres.database.azure.com",
    )
    source = FlexibleServerPointInTime(
        {"public": public, "private": private}, lambda subscription: fake, clock=lambda: now, poll=0
    )
    login = DatabaseConnection(host="x", database="app", user="app")
    for server in ("public", "private"):
        source.window(server)
        with source.as_of(server, now - timedelta(hours=1), "app", login=login):
            pass
    made = {call.split(" ")[0] for call in fake.calls}
    assert made == set(NEEDED_BY_CALL), "a call the role was not checked for"
    assert granted_actions() == {NEEDED_BY_CALL[call] for call in made} | NEEDED_BESIDES
