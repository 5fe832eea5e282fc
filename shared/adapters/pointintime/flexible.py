"""The point-in-time seam on Azure Database for PostgreSQL flexible server (docs/decisions/0017): Azure's own
point-in-time restore through the management API. The window runs from the server's earliest restore date to
now less Azure's restore lag; "as of T" is a temporary server restored to T (create mode PointInTimeRestore)
beside the source — its resource group, location and network — read with the environment's login, then
deleted. The temporary server is recorded before it is asked for, so that no crash leaves one billed."""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.postgresqlflexibleservers.models import (
    CreateMode,
    FirewallRule,
    Network,
    Server,
    ServerProperties,
    ServerState,
)

from shared.adapters.pointintime import (
    ArchivePruned,
    InstantRefused,
    PointInTimeError,
    PointInTimeStopped,
    RecoveryWindow,
    TemporaryInstance,
)
from shared.clock import Clock, utc_now
from shared.domain.environments import DatabaseConnection

logger = logging.getLogger("appbackups.pointintime")

T = TypeVar("T", covariant=True)

RESTORE_LAG = timedelta(minutes=5)  # Azure: a restore to "now" gets about the last 5 minutes' recovery point
_RESOURCE_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"/providers/Microsoft\.DBforPostgreSQL/flexibleServers/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
_TEMPORARY_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*-pitr-\d{14}-[0-9a-f]{6}$")
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
TAG = "appbackups-temporary-of"  # on each temporary server: the server it is a copy of


@dataclass(frozen=True)
class FlexibleServerId:
    """A flexible server's Azure resource id, in its parts."""

    subscription: str
    resource_group: str
    name: str

    @classmethod
    def parse(cls, resource_id: str) -> FlexibleServerId:
        found = _RESOURCE_ID.match(resource_id.strip())
        if found is None:
            raise ValueError(
                f"{resource_id!r} is not a flexible server's resource id (/subscriptions/<id>/resourceGroups/<group>"
                "/providers/Microsoft.DBforPostgreSQL/flexibleServers/<name>)"
            )
        return cls(found["subscription"], found["group"], found["name"].lower())

    def __str__(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{self.name}"
        )

    def same_group(self, other: FlexibleServerId) -> bool:
        return (self.subscription.lower(), self.resource_group.lower()) == (
            other.subscription.lower(),
            other.resource_group.lower(),
        )


# -- the seam: what of azure-mgmt-postgresqlflexibleservers' PostgreSQLManagementClient this uses ----------


class Poller(Protocol[T]):
    """An ``LROPoller``."""

    def done(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> None: ...

    def result(self, timeout: float | None = None) -> T: ...


class ServersApi(Protocol):
    def get(self, resource_group_name: str, server_name: str) -> Server: ...

    def begin_create_or_update(
        self, resource_group_name: str, server_name: str, parameters: Server
    ) -> Poller[Server]: ...

    def begin_delete(self, resource_group_name: str, server_name: str) -> Poller[None]: ...


class DatabasesApi(Protocol):
    def get(self, resource_group_name: str, server_name: str, database_name: str) -> Any: ...


class FirewallRulesApi(Protocol):
    def list_by_server(self, resource_group_name: str, server_name: str) -> Iterable[FirewallRule]: ...

    def begin_create_or_update(
        self, resource_group_name: str, server_name: str, firewall_rule_name: str, parameters: FirewallRule
    ) -> Poller[FirewallRule]: ...


class FlexibleServerManagement(Protocol):
    """The management client of one subscription (``shared/clients.py`` builds the real one)."""

    servers: ServersApi
    databases: DatabasesApi
    firewall_rules: FirewallRulesApi


def azure_reason(error: HttpResponseError) -> str:
    """Azure's own words: the error's message and code, without the SDK's repetition of them."""
    body = error.error
    if body is not None and body.message:
        return f"{body.message} ({body.code})" if body.code else str(body.message)
    lines = [line for line in str(error.message or error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _is_busy(error: HttpResponseError) -> bool:
    return isinstance(error, ResourceExistsError) or error.status_code == 409


class FlexibleServerPointInTime:
    """``servers`` maps the archive names environments give (``pointInTime.server``) to flexible servers'
    resource ids; ``clients`` gives the management client of a subscription. ``restore_lag`` is how far behind
    now the window ends; ``poll`` how often a restore and a deletion are looked at; ``create_timeout`` and
    ``delete_timeout`` how long they may take."""

    def __init__(
        self,
        servers: Mapping[str, str],
        clients: Callable[[str], FlexibleServerManagement],
        *,
        clock: Clock = utc_now,
        restore_lag: timedelta = RESTORE_LAG,
        poll: float = 15.0,
        create_timeout: float = 6 * 3600.0,
        delete_timeout: float = 3600.0,
    ) -> None:
        self._servers = {name: FlexibleServerId.parse(resource_id) for name, resource_id in servers.items()}
        self._clients = clients
        self._clock = clock
        self._restore_lag = restore_lag
        self._poll = poll
        self._create_timeout = create_timeout
        self._delete_timeout = delete_timeout

    def serves(self, server: str) -> bool:
        return server in self._servers

    def _source(self, server: str) -> FlexibleServerId:
        source = self._servers.get(server)
        if source is None:
            raise PointInTimeError(
                f"{server} is not a flexible server of this service (APPBACKUPS_FLEXIBLE_SERVERS).", transient=False
            )
        return source

    def _read_source(self, source: FlexibleServerId) -> Server:
        try:
            return self._clients(source.subscription).servers.get(source.resource_group, source.name)
        except ResourceNotFoundError as error:
            raise PointInTimeError(
                f"The flexible server {source} does not exist (or the service's identity may not read it): "
                f"{azure_reason(error)}",
                transient=False,
            ) from error
        except HttpResponseError as error:
            raise PointInTimeError(
                f"The flexible server {source.name} could not be read: {azure_reason(error)}", transient=True
            ) from error

    def _window(self, found: Server) -> RecoveryWindow:
        earliest = found.backup.earliest_restore_date if found.backup is not None else None
        latest = self._clock() - self._restore_lag
        if earliest is None or latest < earliest:
            return RecoveryWindow(None, None)
        return RecoveryWindow(earliest.astimezone(UTC), latest)

    # -- PointInTimeSource ---------------------------------------------------------------------
    def window(self, server: str) -> RecoveryWindow:
        return self._window(self._read_source(self._source(server)))

    @contextlib.contextmanager
    def as_of(
        self,
        server: str,
        instant: datetime,
        database: str,
        *,
        on_started: Callable[[TemporaryInstance], None] = lambda instance: None,
        stop: threading.Event | None = None,
        login: DatabaseConnection | None = None,
    ) -> Iterator[DatabaseConnection]:
        if instant.tzinfo is None:
            raise ValueError("the instant must carry its time zone")
        if login is None:
            raise PointInTimeError(
                f"Reading {server} as of an instant needs the environment's login to its server.", transient=False
            )
        source_id = self._source(server)
        source = self._read_source(source_id)
        window = self._window(source)
        refusal = window.refusal(instant)
        if refusal is not None:
            raise InstantRefused(refusal)
        temporary = replace(source_id, name=_temporary_name(source_id, instant))
        instance = TemporaryInstance(server_resource_id=str(temporary))
        on_started(instance)  # recorded before Azure is asked: a crash from here on leaves a record to release
        try:
            _check(stop, server, instant)
            client = self._clients(source_id.subscription)
            restored = self._restore(client, source, source_id, temporary, instant, stop)
            if source.network is None or not source.network.delegated_subnet_resource_id:
                self._open_firewall(client, source_id, temporary)
            self._check_database(client, temporary, server, database, instant)
            host = restored.fully_qualified_domain_name or f"{temporary.name}.postgres.database.azure.com"
            yield replace(login, host=host, database=database)
        finally:
            self.release(instance)

    def prune(self, server: str, keep_from: datetime) -> ArchivePruned:
        """Nothing: Azure keeps and removes a flexible server's backups by its own backup retention."""
        return ArchivePruned()

    def release(self, instance: TemporaryInstance) -> None:
        if instance.server_resource_id is None:
            raise ValueError(f"{instance} is not a temporary flexible server")
        temporary = FlexibleServerId.parse(instance.server_resource_id)
        self._ensure_temporary(temporary)
        servers = self._clients(temporary.subscription).servers
        deadline = time.monotonic() + self._delete_timeout
        while True:
            try:
                deletion = servers.begin_delete(temporary.resource_group, temporary.name)
                break
            except ResourceNotFoundError:
                return
            except HttpResponseError as error:
                # A server still being restored may refuse its deletion until Azure has finished with it.
                if not _is_busy(error) or time.monotonic() > deadline:
                    raise PointInTimeError(
                        f"The temporary server {temporary.name} could not be deleted: {azure_reason(error)}",
                        transient=True,
                    ) from error
                logger.info("temporary server %s is busy; its deletion is asked again", temporary.name)
                time.sleep(self._poll)
        try:
            _wait(deletion, deadline, self._poll)
            deletion.result()
        except ResourceNotFoundError:
            return
        except HttpResponseError as error:
            raise PointInTimeError(
                f"The deletion of the temporary server {temporary.name} failed: {azure_reason(error)}", transient=True
            ) from error
        except TimeoutError as error:
            raise PointInTimeError(
                f"The temporary server {temporary.name} was not deleted in {self._delete_timeout:.0f} s.",
                transient=True,
            ) from error

    # -- the temporary server ----------------------------------------------------------------
    def _ensure_temporary(self, temporary: FlexibleServerId) -> None:
        """Only a server this adapter named, beside one of its sources, is ever deleted."""
        sources = self._servers.values()
        if (
            _TEMPORARY_NAME.match(temporary.name) is None
            or not any(temporary.same_group(source) for source in sources)
            or any(temporary.name == source.name and temporary.same_group(source) for source in sources)
        ):
            raise ValueError(f"{temporary} is not a temporary server of a flexible server this service reads")

    def _restore(
        self,
        client: FlexibleServerManagement,
        source: Server,
        source_id: FlexibleServerId,
        temporary: FlexibleServerId,
        instant: datetime,
        stop: threading.Event | None,
    ) -> Server:
        network = source.network
        properties = ServerProperties(
            create_mode=CreateMode.POINT_IN_TIME_RESTORE,
            source_server_resource_id=source.id or str(source_id),
            point_in_time_utc=instant.astimezone(UTC),
        )
        if network is not None and network.delegated_subnet_resource_id:
            properties.network = Network(
                delegated_subnet_resource_id=network.delegated_subnet_resource_id,
                private_dns_zone_arm_resource_id=network.private_dns_zone_arm_resource_id,
            )
        parameters = Server(
            location=source.location,
            tags={**(source.tags or {}), TAG: source_id.name},
            properties=properties,
        )
        what = f"Restoring {source_id.name} to {instant.isoformat()} (temporary server {temporary.name})"
        logger.info("%s", what)
        try:
            creation = client.servers.begin_create_or_update(temporary.resource_group, temporary.name, parameters)
            deadline = time.monotonic() + self._create_timeout
            while not creation.done():
                _check(stop, source_id.name, instant)
                if time.monotonic() > deadline:
                    raise PointInTimeError(f"{what} took longer than {self._create_timeout:.0f} s.", transient=True)
                creation.wait(self._poll)
            restored = creation.result()
        except HttpResponseError as error:
            raise PointInTimeError(
                f"Azure could not restore {source_id.name} to {instant.isoformat()}: {azure_reason(error)}",
                transient=error.status_code in _TRANSIENT_STATUS,
            ) from error
        if restored.state is not None and restored.state != ServerState.READY:
            raise PointInTimeError(f"{what} ended with the server {restored.state}, not Ready.", transient=True)
        return restored

    def _open_firewall(
        self, client: FlexibleServerManagement, source: FlexibleServerId, temporary: FlexibleServerId
    ) -> None:
        """A public-access server's firewall rules, on its copy where they are missing: the service reaches the
        copy from where it reaches the source."""
        rules = client.firewall_rules
        try:
            present = {rule.name for rule in rules.list_by_server(temporary.resource_group, temporary.name)}
            for rule in rules.list_by_server(source.resource_group, source.name):
                if rule.name is None or rule.name in present:
                    continue
                copy = FirewallRule(properties=rule.properties)
                rules.begin_create_or_update(temporary.resource_group, temporary.name, rule.name, copy).result()
        except HttpResponseError as error:
            raise PointInTimeError(
                f"The firewall rules of {source.name} could not be given to its temporary server {temporary.name}: "
                f"{azure_reason(error)}",
                transient=True,
            ) from error

    def _check_database(
        self, client: FlexibleServerManagement, temporary: FlexibleServerId, server: str, database: str, at: datetime
    ) -> None:
        try:
            client.databases.get(temporary.resource_group, temporary.name, database)
        except ResourceNotFoundError as error:
            raise PointInTimeError(
                f"Database {database} did not exist on {server} at {at.isoformat()}.", transient=False
            ) from error
        except HttpResponseError as error:
            raise PointInTimeError(
                f"The databases of the temporary server {temporary.name} could not be read: {azure_reason(error)}",
                transient=True,
            ) from error


def _temporary_name(source: FlexibleServerId, instant: datetime) -> str:
    """``<source>-pitr-<instant, UTC>-<random>``: at most 55 of the 63 characters a server name may have, unique
    however often the same instant is read."""
    stem = source.name[:28].rstrip("-")
    return f"{stem}-pitr-{instant.astimezone(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def _wait(poller: Poller[Any], deadline: float, poll: float) -> None:
    while not poller.done():
        if time.monotonic() > deadline:
            raise TimeoutError
        poller.wait(poll)


def _check(stop: threading.Event | None, server: str, instant: datetime) -> None:
    if stop is not None and stop.is_set():
        raise PointInTimeStopped(f"Reading {server} as of {instant.isoformat()} was stopped.")
