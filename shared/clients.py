"""The one place that builds Azure SDK clients. Each client is built once and reused."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from azure.core.credentials import TokenCredential
from azure.core.pipeline.transport import HttpTransport, RequestsTransport
from azure.data.tables import TableServiceClient
from azure.eventgrid import EventGridPublisherClient
from azure.keyvault.secrets import SecretClient
from azure.storage.blob import BlobServiceClient, ExponentialRetry
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient, QueueServiceClient
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from shared.adapters.errors import translated
from shared.adapters.metering import MeteringTransport, StorageMeter
from shared.config import StorageConnection


# Storage's default back-off starts at 15 s; an API call should give up on a dead endpoint much sooner.
def _storage_retry() -> dict[str, Any]:
    return {"retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=4)}


# Reads come in chunks of at most 4 MiB (the SDK's first read is 32 MiB otherwise): bounded memory.
_BLOB_CHUNKS: dict[str, Any] = {"max_single_get_size": 4 * 1024 * 1024, "max_chunk_get_size": 4 * 1024 * 1024}


def _proxy_configured() -> bool:
    """A session that trusts the environment looks for ~/.netrc and the proxy variables on every
    request — file-system calls in every thread of the copy pools. Only a proxy needs them."""
    return any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"))


def _pooled_transport() -> RequestsTransport:
    """The SDK's default connection pool keeps 10 connections; the copy and staging pools run more
    requests than that at once, and every extra one would open (and drop) a new connection."""
    session = requests.Session()
    session.trust_env = _proxy_configured()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=Retry(total=False, redirect=False))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False)


_TABLE_RETRY: dict[str, Any] = {"retry_total": 4, "retry_backoff_factor": 0.5, "retry_backoff_max": 10}

# Functions' queue trigger expects base64 messages by default (host.json messageEncoding).
_QUEUE_CODEC: dict[str, Any] = {
    "message_encode_policy": BinaryBase64EncodePolicy(),
    "message_decode_policy": BinaryBase64DecodePolicy(),
}


# Wraps the HTTP transport of one storage service ("blob", "table", "queue"): the seam through which tests
# make storage answer errors, as httpx's transports are swapped (never set in production).
TransportWrapper = Callable[[HttpTransport, str], HttpTransport]


class StorageClients:
    """``meter``, when given, counts every request the clients send (the benchmarks and the tests that
    hold what a job touches); ``wrap_transport`` puts a transport of the caller's between the clients and
    the wire. Without them the transports are the plain ones."""

    def __init__(
        self,
        connection: StorageConnection,
        credential: TokenCredential | None = None,
        *,
        meter: StorageMeter | None = None,
        wrap_transport: TransportWrapper | None = None,
    ) -> None:
        self.connection = connection
        self.meter = meter
        self._wrap_transport = wrap_transport
        self._credential = credential
        self._lock = threading.RLock()
        self._queues: dict[str, QueueClient] = {}
        self._foreign_blob_services: dict[str, BlobServiceClient] = {}

    def _transport(self, service: str) -> Any:
        transport: HttpTransport = _pooled_transport() if service == "blob" else RequestsTransport()
        if self.meter is not None:
            transport = MeteringTransport(transport, self.meter, service)
        if self._wrap_transport is not None:
            transport = self._wrap_transport(transport, service)
        return transport

    def _other_transport(self, service: str) -> dict[str, Any]:
        """Tables and queues keep the SDK's own transport unless metered or wrapped."""
        if self.meter is None and self._wrap_transport is None:
            return {}
        return {"transport": self._transport(service)}

    @property
    def credential(self) -> TokenCredential:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential(managed_identity_client_id=self.connection.client_id)
            return self._credential

    @cached_property
    def blob_service(self) -> BlobServiceClient:
        if self.connection.connection_string:
            return BlobServiceClient.from_connection_string(
                self.connection.connection_string, transport=self._transport("blob"), **_storage_retry(), **_BLOB_CHUNKS
            )
        return BlobServiceClient(
            str(self.connection.blob_uri),
            credential=self.credential,
            transport=self._transport("blob"),
            **_storage_retry(),
            **_BLOB_CHUNKS,
        )

    @cached_property
    def table_service(self) -> TableServiceClient:
        if self.connection.connection_string:
            return TableServiceClient.from_connection_string(
                self.connection.connection_string, **_TABLE_RETRY, **self._other_transport("table")
            )
        return TableServiceClient(
            str(self.connection.table_uri), credential=self.credential, **_TABLE_RETRY, **self._other_transport("table")
        )

    @cached_property
    def queue_service(self) -> QueueServiceClient:
        if self.connection.connection_string:
            return QueueServiceClient.from_connection_string(
                self.connection.connection_string, **_QUEUE_CODEC, **_storage_retry(), **self._other_transport("queue")
            )
        return QueueServiceClient(
            str(self.connection.queue_uri),
            credential=self.credential,
            **_QUEUE_CODEC,
            **_storage_retry(),
            **self._other_transport("queue"),
        )

    def queue(self, name: str) -> QueueClient:
        with self._lock:
            client = self._queues.get(name)
            if client is None:
                client = self.queue_service.get_queue_client(name, **_QUEUE_CODEC)
                self._queues[name] = client
            return client

    def blob_service_for(self, account_url: str | None) -> BlobServiceClient:
        """The client for an environment's file store: our own account when no URL is given."""
        if not account_url or account_url.rstrip("/") == self.blob_service.url.rstrip("/"):
            return self.blob_service
        key = account_url.rstrip("/")
        with self._lock:
            client = self._foreign_blob_services.get(key)
        if client is None:
            client = BlobServiceClient(
                key, credential=self.credential, transport=self._transport("blob"), **_storage_retry(), **_BLOB_CHUNKS
            )
            with self._lock:
                client = self._foreign_blob_services.setdefault(key, client)
        return client

    def health_probes(self, container: str, table: str, queue: str) -> dict[str, Callable[[], object]]:
        """One cheap request per storage service, without retries: a health probe reports, it does not
        wait out back-offs. Each raises StorageFault when its service cannot be reached."""
        once = {"retry_total": 0, "timeout": 5}
        probes: dict[str, Callable[[], object]] = {
            "blob": lambda: self.blob_service.get_container_client(container).get_container_properties(**once),
            "table": lambda: next(
                self.table_service.get_table_client(table).list_entities(results_per_page=1, retry_total=0).by_page()
            ),
            "queue": lambda: self.queue(queue).get_queue_properties(**once),
        }
        return {name: _translating(probe) for name, probe in probes.items()}


def _translating(probe: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with translated():
            return probe()

    return run


if TYPE_CHECKING:
    from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient


class FlexibleServerClients:
    """The management clients of Azure Database for PostgreSQL flexible servers, one per subscription, built on
    first use and reused, signed in with the app's managed identity (the role infra/modules/flexibleservers.bicep
    grants it in the servers' resource groups). The SDK is imported only by a service that reads such servers."""

    def __init__(self, credential: Callable[[], TokenCredential]) -> None:
        self._credential = credential
        self._lock = threading.Lock()
        self._clients: dict[str, PostgreSQLManagementClient] = {}

    def __call__(self, subscription_id: str) -> PostgreSQLManagementClient:
        from azure.mgmt.postgresqlflexibleservers import PostgreSQLManagementClient

        with self._lock:
            client = self._clients.get(subscription_id)
            if client is None:
                client = PostgreSQLManagementClient(self._credential(), subscription_id)
                self._clients[subscription_id] = client
            return client


def event_grid_publisher(endpoint: str, credential: TokenCredential) -> EventGridPublisherClient:
    """The client of the Event Grid topic, signed in with the app's managed identity (EventGrid Data Sender
    on the topic; the topic allows no access keys). Built once per process, by the bootstrap. Its own
    retries are the SDK's defaults (azure-eventgrid 4.22 passes no options to a basic topic's pipeline);
    a publish that still fails is retried by the delivery's schedule."""
    return EventGridPublisherClient(endpoint, credential)


# A delivery waits for the vault: a few quick retries, then the delivery's own schedule tries again later.
_KEY_VAULT_RETRY: dict[str, Any] = {"retry_total": 3, "retry_backoff_factor": 0.5, "retry_backoff_max": 8}


def key_vault_secrets(
    vault_url: str, credential: TokenCredential, *, transport: HttpTransport | None = None
) -> SecretClient:
    """The client of the Key Vault that keeps the webhooks' signing secrets, signed in with the app's managed
    identity (Key Vault Secrets Officer on the vault). Built once per process, by the bootstrap. ``transport``
    replaces the wire (tests: a fake of the vault's REST API; never set in production)."""
    options: dict[str, Any] = {"transport": transport} if transport is not None else {}
    return SecretClient(vault_url, credential, **_KEY_VAULT_RETRY, **options)


# The distro's instrumentations of the HTTP and storage libraries would add a span per storage request (a backup makes
# thousands): only the service's own spans, metrics and logs are exported (docs/decisions/0015).
_NOT_INSTRUMENTED = ("azure_sdk", "requests", "urllib", "urllib3", "psycopg2", "django", "fastapi", "flask")


def export_to_azure_monitor(connection_string: str, logger_name: str) -> None:
    """Spans, metrics and the records of ``logger_name``'s loggers to Application Insights, through Azure Monitor's
    OpenTelemetry distro, as the process's global providers. Ingestion signs in with the managed identity that
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING names (the exporter reads it; the Bicep sets it). Once per process."""
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(
        connection_string=connection_string,
        logger_name=logger_name,
        instrumentation_options={name: {"enabled": False} for name in _NOT_INSTRUMENTED},
    )
