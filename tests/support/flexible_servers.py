"""A fake of Azure's management API for PostgreSQL flexible servers, at the seam FlexibleServerPointInTime uses
(``.servers``, ``.databases`` and ``.firewall_rules`` of ``PostgreSQLManagementClient``): the SDK's own models
in and out, its own exceptions built from ARM error bodies, and a server's life as Azure leads it — a restore
Provisioning for a while, then Ready (or failed, the failed server left behind and billed); a deletion refused
while a restore runs, then Dropping, then gone (404). No emulator of Azure Resource Manager exists, so this is
where the tests hold point-in-time restore on flexible servers (as tests/unit/test_events.py holds Event Grid
at its client). Azure's time is ticks: every call advances it one, and so does each wait of a poller."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.core.rest._requests_basic import RestRequestsTransportResponse
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.postgresqlflexibleservers.models import CreateMode, Database, FirewallRule, Server
from urllib3.response import HTTPResponse

SUBSCRIPTION = "00000000-0000-0000-0000-00000000cafe"
_ERRORS: dict[int, type[HttpResponseError]] = {404: ResourceNotFoundError, 409: ResourceExistsError}


def azure_error(status: int, code: str, message: str, method: str = "PUT") -> HttpResponseError:
    """The exception the SDK raises for an ARM error response: its status, and the body's code and message."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    raw = requests.Response()
    raw.status_code = status
    raw.reason = {404: "Not Found", 409: "Conflict", 400: "Bad Request"}.get(status, "Error")
    raw.raw = HTTPResponse(body=io.BytesIO(body), status=status, preload_content=False)
    raw.headers["Content-Type"] = "application/json"
    request = HttpRequest(method, "https://management.azure.com/fake")
    response = RestRequestsTransportResponse(request=request, internal_response=raw)
    response.read()
    return _ERRORS.get(status, HttpResponseError)(response=response, error_format=ARMErrorFormat)


@dataclass
class FakeServer:
    resource_group: str
    name: str
    location: str
    subscription: str
    state: str = "Ready"
    tags: dict[str, str] = field(default_factory=dict)
    earliest_restore: datetime | None = None
    delegated_subnet: str | None = None
    private_dns_zone: str | None = None
    databases: set[str] = field(default_factory=lambda: {"postgres"})
    firewall_rules: dict[str, tuple[str, str]] = field(default_factory=dict)
    administrator_login: str = "appadmin"
    host: str | None = None
    source_server_resource_id: str | None = None
    point_in_time_utc: datetime | None = None
    ready_at: int | None = None  # the tick its restore ends
    failure: tuple[str, str] | None = None  # (code, message) its restore ends with
    gone_at: int | None = None  # the tick its deletion ends

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{self.name}"
        )

    def model(self) -> Server:
        """As the SDK deserializes a GET of it."""
        properties: dict[str, Any] = {
            "state": self.state,
            "administratorLogin": self.administrator_login,
            "fullyQualifiedDomainName": self.host or f"{self.name}.postgres.database.azure.com",
            "version": "16",
            "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"},
            "network": {"publicNetworkAccess": "Disabled" if self.delegated_subnet else "Enabled"},
        }
        if self.earliest_restore is not None:
            properties["backup"]["earliestRestoreDate"] = self.earliest_restore.isoformat()
        if self.delegated_subnet:
            properties["network"]["delegatedSubnetResourceId"] = self.delegated_subnet
            properties["network"]["privateDnsZoneArmResourceId"] = self.private_dns_zone
        if self.source_server_resource_id:
            properties["sourceServerResourceId"] = self.source_server_resource_id
        return Server(
            {
                "id": self.id,
                "name": self.name,
                "type": "Microsoft.DBforPostgreSQL/flexibleServers",
                "location": self.location,
                "tags": dict(self.tags),
                "properties": properties,
            }
        )


class FakePoller:
    """An ``LROPoller`` of the fake: done when ``finished`` says so; each wait is a tick of Azure's time."""

    def __init__(self, fake: FakeFlexibleServers, finished: Callable[[], bool], outcome: Callable[[], Any]) -> None:
        self._fake = fake
        self._finished = finished
        self._outcome = outcome

    def done(self) -> bool:
        with self._fake.lock:
            return self._finished()

    def wait(self, timeout: float | None = None) -> None:
        self._fake.tick()

    def result(self, timeout: float | None = None) -> Any:
        while not self.done():
            self._fake.tick()
        with self._fake.lock:
            return self._outcome()


class FakeFlexibleServers:
    """One subscription's flexible servers. The tests add sources (``add_server``) and set how Azure behaves:
    ``restore_ticks`` and ``delete_ticks`` (how long a restore and a deletion take), ``busy_while_restoring``
    (a deletion of a server being restored is refused with 409, as Azure may), ``fail_next_restore`` (code and
    message the next restore fails with; its server is left behind, billed), ``restored_host`` (the address a
    restored server reports: a local PostgreSQL in an end-to-end test), ``on_restored`` (called with each
    restored server as it turns Ready: the test gives the copy its data) and ``on_tick``."""

    def __init__(self, subscription: str = SUBSCRIPTION) -> None:
        self.subscription = subscription
        self.servers = _Servers(self)
        self.databases = _Databases(self)
        self.firewall_rules = _FirewallRules(self)
        self.restore_ticks = 3
        self.delete_ticks = 2
        self.busy_while_restoring = True
        self.fail_next_restore: tuple[str, str] | None = None
        self.restored_host: str | None = None
        self.on_restored: Callable[[FakeServer], None] | None = None
        self.on_tick: Callable[[int], None] | None = None
        self.restore_requests: list[Server] = []  # each restore's body, as sent
        self.calls: list[str] = []  # each call, "servers.get rg/name"
        self.ticks = 0
        self.lock = threading.RLock()
        self._servers: dict[tuple[str, str], FakeServer] = {}

    # -- what the tests set up and look at ---------------------------------------------------------
    def add_server(
        self,
        resource_group: str,
        name: str,
        *,
        earliest_restore: datetime | None,
        location: str = "westeurope",
        databases: Iterable[str] = ("postgres",),
        delegated_subnet: str | None = None,
        private_dns_zone: str | None = None,
        firewall_rules: dict[str, tuple[str, str]] | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """A source server; its resource id."""
        server = FakeServer(
            resource_group,
            name,
            location,
            self.subscription,
            tags=dict(tags or {}),
            earliest_restore=earliest_restore,
            delegated_subnet=delegated_subnet,
            private_dns_zone=private_dns_zone,
            databases={"postgres", *databases},
            firewall_rules=dict(firewall_rules or {}),
        )
        with self.lock:
            self._servers[(resource_group.lower(), name)] = server
        return server.id

    def server(self, name: str) -> FakeServer:
        with self.lock:
            [found] = [server for server in self._servers.values() if server.name == name]
            return found

    def existing(self) -> list[FakeServer]:
        """Every server that exists, in any state: what is billed."""
        with self.lock:
            return list(self._servers.values())

    def temporary(self) -> list[FakeServer]:
        """The servers that exist and were restored from another."""
        return [server for server in self.existing() if server.source_server_resource_id]

    def tick(self) -> None:
        """Azure's time moves on: restores end, deletions end."""
        with self.lock:
            self.ticks += 1
            for key, server in list(self._servers.items()):
                if server.state == "Provisioning" and server.ready_at is not None and self.ticks >= server.ready_at:
                    server.state = "Disabled" if server.failure else "Ready"
                    if server.failure is None and self.on_restored is not None:
                        self.on_restored(server)
                if server.gone_at is not None and self.ticks >= server.gone_at:
                    del self._servers[key]
            on_tick = self.on_tick
        if on_tick is not None:
            on_tick(self.ticks)

    def _call(self, what: str) -> None:
        self.calls.append(what)
        self.tick()

    def _find(self, resource_group: str, name: str) -> FakeServer:
        server = self._servers.get((resource_group.lower(), name))
        if server is None:
            raise azure_error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.DBforPostgreSQL/flexibleServers/{name}' under resource group "
                f"'{resource_group}' was not found.",
                "GET",
            )
        return server


class _Servers:
    def __init__(self, fake: FakeFlexibleServers) -> None:
        self._fake = fake

    def get(self, resource_group_name: str, server_name: str, **kwargs: Any) -> Server:
        fake = self._fake
        fake._call(f"servers.get {resource_group_name}/{server_name}")
        with fake.lock:
            return fake._find(resource_group_name, server_name).model()

    def begin_create_or_update(
        self, resource_group_name: str, server_name: str, parameters: Server, **kwargs: Any
    ) -> FakePoller:
        fake = self._fake
        fake._call(f"servers.begin_create_or_update {resource_group_name}/{server_name}")
        with fake.lock:
            fake.restore_requests.append(parameters)
            if parameters.create_mode != CreateMode.POINT_IN_TIME_RESTORE:
                raise azure_error(400, "UnsupportedCreateMode", "This fake restores servers; it creates none.")
            if (resource_group_name.lower(), server_name) in fake._servers:
                raise azure_error(409, "ServerNameAlreadyExists", f"Server name '{server_name}' is already in use.")
            wanted = str(parameters.source_server_resource_id).lower()
            source = next((each for each in fake._servers.values() if each.id.lower() == wanted), None)
            if source is None:
                raise azure_error(404, "SourceServerNotFound", f"{parameters.source_server_resource_id} not found.")
            instant = parameters.point_in_time_utc
            if instant is None or source.earliest_restore is None or instant < source.earliest_restore:
                raise azure_error(
                    400, "InvalidPointInTimeRestore", f"The point in time {instant} is before the earliest restore."
                )
            if parameters.location != source.location:
                raise azure_error(400, "InvalidLocation", "A point-in-time restore stays in the source's region.")
            network = parameters.network
            subnet = network.delegated_subnet_resource_id if network is not None else None
            if bool(subnet) != bool(source.delegated_subnet):
                raise azure_error(
                    400,
                    "InvalidNetworkForRestore",
                    "A point-in-time restore cannot cross public and private access.",
                )
            failure, fake.fail_next_restore = fake.fail_next_restore, None
            server = FakeServer(
                resource_group_name,
                server_name,
                source.location,
                fake.subscription,
                state="Provisioning",
                tags=dict(parameters.tags or {}),
                delegated_subnet=subnet,
                private_dns_zone=network.private_dns_zone_arm_resource_id if network is not None else None,
                databases=set(source.databases),
                administrator_login=source.administrator_login,
                host=fake.restored_host,
                source_server_resource_id=source.id,
                point_in_time_utc=instant,
                ready_at=fake.ticks + fake.restore_ticks,
                failure=failure,
            )  # no firewall rules: Azure says to put them in place after a restore
            fake._servers[(resource_group_name.lower(), server_name)] = server

        def outcome() -> Server:
            if server.failure is not None:
                raise azure_error(200, *server.failure)
            return server.model()

        return FakePoller(fake, lambda: server.state != "Provisioning", outcome)

    def begin_delete(self, resource_group_name: str, server_name: str, **kwargs: Any) -> FakePoller:
        fake = self._fake
        fake._call(f"servers.begin_delete {resource_group_name}/{server_name}")
        with fake.lock:
            server = fake._find(resource_group_name, server_name)
            if server.state == "Provisioning" and fake.busy_while_restoring:
                raise azure_error(
                    409,
                    "ServerBusy",
                    f"Server '{server_name}' is busy with another operation; try again later.",
                    "DELETE",
                )
            if server.gone_at is None:
                server.state = "Dropping"
                server.gone_at = fake.ticks + fake.delete_ticks
            key = (resource_group_name.lower(), server_name)
        return FakePoller(fake, lambda: key not in fake._servers, lambda: None)


class _Databases:
    def __init__(self, fake: FakeFlexibleServers) -> None:
        self._fake = fake

    def get(self, resource_group_name: str, server_name: str, database_name: str, **kwargs: Any) -> Database:
        fake = self._fake
        fake._call(f"databases.get {resource_group_name}/{server_name}/{database_name}")
        with fake.lock:
            server = fake._find(resource_group_name, server_name)
            if database_name not in server.databases:
                raise azure_error(404, "ResourceNotFound", f"Database '{database_name}' was not found.", "GET")
            return Database({"id": f"{server.id}/databases/{database_name}", "name": database_name})


class _FirewallRules:
    def __init__(self, fake: FakeFlexibleServers) -> None:
        self._fake = fake

    def list_by_server(self, resource_group_name: str, server_name: str, **kwargs: Any) -> list[FirewallRule]:
        fake = self._fake
        fake._call(f"firewall_rules.list_by_server {resource_group_name}/{server_name}")
        with fake.lock:
            server = fake._find(resource_group_name, server_name)
            return [
                FirewallRule(
                    {
                        "id": f"{server.id}/firewallRules/{name}",
                        "name": name,
                        "properties": {"startIpAddress": start, "endIpAddress": end},
                    }
                )
                for name, (start, end) in server.firewall_rules.items()
            ]

    def begin_create_or_update(
        self,
        resource_group_name: str,
        server_name: str,
        firewall_rule_name: str,
        parameters: FirewallRule,
        **kwargs: Any,
    ) -> FakePoller:
        fake = self._fake
        fake._call(f"firewall_rules.begin_create_or_update {resource_group_name}/{server_name}/{firewall_rule_name}")
        with fake.lock:
            server = fake._find(resource_group_name, server_name)
            server.firewall_rules[firewall_rule_name] = (parameters.start_ip_address, parameters.end_ip_address)
        return FakePoller(fake, lambda: True, lambda: parameters)
