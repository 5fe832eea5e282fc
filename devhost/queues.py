"""Queue triggers with the Functions host's semantics, polling Azure Storage queues (or Azurite).

For each queue-triggered function a poller thread receives up to ``batchSize`` messages under an
invisibility lease, fetching a new batch once no more than ``newBatchThreshold`` are still running. Each
message runs on a worker thread while its lease is renewed in the background, so a long invocation is not
delivered twice. Success deletes the message. Failure makes it visible again after ``visibilityTimeout``,
or, once its dequeue count has reached ``maxDequeueCount``, moves it (content unchanged) to
``<queue>-poison``. A message received with a dequeue count already above ``maxDequeueCount`` (a worker
died while holding it) and a message that cannot be decoded go to the poison queue without running.
Empty polls back off exponentially from 100 ms to ``maxPollingInterval``; a message resets the back-off.
Storage errors are logged and retried with the same back-off; they never stop the host.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import contextlib
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions.queue as func_queue
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import LinearRetry, QueueClient, QueueMessage, QueueServiceClient

from devhost.hostconfig import QueueOptions
from devhost.invoker import Invoker
from devhost.loader import FunctionInfo
from devhost.settings import resolve_references

log = logging.getLogger("devhost.queues")

MIN_POLLING_INTERVAL = 0.1
MIN_ERROR_BACKOFF_CAP = 2.0  # storage errors back off to max(maxPollingInterval, this)
DEFAULT_LEASE_SECONDS = 300
POISON_SUFFIX = "-poison"


# ---------------------------------------------------------------------------------------------- connections


@dataclass(frozen=True)
class ConnectionInfo:
    """How to reach a storage account: a connection string, or an account URL with Entra ID credentials."""

    setting: str
    connection_string: str | None = None
    account_url: str | None = None
    client_id: str | None = None
    credential_kind: str | None = None

    def describe(self) -> str:
        if self.connection_string is not None:
            return f"connection string from '{self.setting}'"
        return f"{self.account_url} with identity ('{self.setting}__*' settings)"


def resolve_connection(setting: str, environ: Mapping[str, str] | None = None) -> ConnectionInfo:
    """Find the storage connection named by a trigger's ``connection`` property.

    Like the host, ``NAME`` may be a connection string or the prefix of identity-based settings
    (``NAME__queueServiceUri``, ``NAME__serviceUri`` or ``NAME__accountName``, optional ``NAME__clientId``
    and ``NAME__credential``); ``AzureWebJobsNAME`` is tried too. An empty name means ``AzureWebJobsStorage``.
    """
    source = os.environ if environ is None else environ
    setting = setting or "AzureWebJobsStorage"
    names = [setting] if setting.lower().startswith("azurewebjobs") else [setting, f"AzureWebJobs{setting}"]
    for name in names:
        value = source.get(name, "").strip()
        if value:
            return ConnectionInfo(setting=name, connection_string=value)
        url = source.get(f"{name}__queueServiceUri") or source.get(f"{name}__serviceUri")
        account = source.get(f"{name}__accountName")
        if not url and account:
            url = f"https://{account}.queue.core.windows.net"
        if url:
            return ConnectionInfo(
                setting=name,
                account_url=url.rstrip("/"),
                client_id=source.get(f"{name}__clientId") or None,
                credential_kind=(source.get(f"{name}__credential") or "").lower() or None,
            )
    raise ValueError(
        f"storage connection '{setting}' is not configured: set {setting} to a connection string, or "
        f"{setting}__queueServiceUri (or {setting}__accountName) for identity-based access"
    )


def _credential(info: ConnectionInfo) -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if info.credential_kind == "managedidentity":
        return ManagedIdentityCredential(client_id=info.client_id) if info.client_id else ManagedIdentityCredential()
    return DefaultAzureCredential(managed_identity_client_id=info.client_id)


def encode_body(body: bytes, encoding: str) -> str:
    """Message text for ``body`` under host.json ``messageEncoding``."""
    if encoding == "base64":
        return base64.b64encode(body).decode("ascii")
    return body.decode("utf-8")


def decode_content(content: str, encoding: str) -> bytes:
    """The body bytes of a message's text; raises ``ValueError`` for text that is not valid base64."""
    if encoding == "base64":
        try:
            return base64.b64decode(content.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as error:
            raise ValueError(f"message is not valid base64 (host.json messageEncoding is 'base64'): {error}") from error
    return content.encode("utf-8")


class QueueConnections:
    """Storage clients, one per connection setting and queue, created once and reused."""

    def __init__(
        self,
        encoding: str = "base64",
        environ: Mapping[str, str] | None = None,
        credential_factory: Callable[[ConnectionInfo], Any] = _credential,
    ) -> None:
        self.encoding = encoding
        self._environ = environ
        self._credential_factory = credential_factory
        self._services: dict[str, QueueServiceClient] = {}
        self._queues: dict[tuple[str, str], QueueClient] = {}
        self._created: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def service(self, setting: str) -> QueueServiceClient:
        with self._lock:
            if setting not in self._services:
                info = resolve_connection(setting, self._environ)
                # Fail fast and let the poller's back-off retry: the SDK's default retry waits 15 s and more.
                options: dict[str, Any] = {
                    "retry_policy": LinearRetry(backoff=1, retry_total=2, random_jitter_range=1),
                    "connection_timeout": 5,
                }
                if info.connection_string is not None:
                    client = QueueServiceClient.from_connection_string(info.connection_string, **options)
                else:
                    assert info.account_url is not None
                    credential = self._credential_factory(info)
                    client = QueueServiceClient(info.account_url, credential=credential, **options)
                self._services[setting] = client
            return self._services[setting]

    def queue(self, setting: str, queue_name: str) -> QueueClient:
        service = self.service(setting)
        key = (setting, queue_name)
        with self._lock:
            if key not in self._queues:
                # No encode/decode policies: messageEncoding is applied here, so poison copies stay byte-exact.
                self._queues[key] = service.get_queue_client(queue_name)
            return self._queues[key]

    def ensure(self, setting: str, queue_name: str) -> QueueClient:
        """The queue's client, creating the queue on first use if it does not exist."""
        client = self.queue(setting, queue_name)
        key = (setting, queue_name)
        if key not in self._created:
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            self._created.add(key)
        return client

    def send(self, connection: str, queue_name: str, bodies: list[bytes]) -> None:
        """Queue output bindings: send each body, encoded per ``messageEncoding``."""
        client = self.ensure(connection, normalize_queue_name(queue_name))
        for body in bodies:
            client.send_message(encode_body(body, self.encoding))

    def close(self) -> None:
        with self._lock:
            for client in self._services.values():
                client.close()
            self._services.clear()
            self._queues.clear()


def normalize_queue_name(name: str, environ: Mapping[str, str] | None = None) -> str:
    """Resolve ``%Setting%`` references and lower-case, as the host does for queue names."""
    return resolve_references(name, environ, what="queue name").strip().lower()


# ---------------------------------------------------------------------------------------------- poller


class _LeaseRenewer:
    """Keeps a received message invisible while its function runs, tracking the latest pop receipt."""

    def __init__(self, client: QueueClient, message: QueueMessage, lease_seconds: int, function_name: str) -> None:
        self._client = client
        self._message_id = message.id
        self.pop_receipt: str = message.pop_receipt or ""
        self._lease = lease_seconds
        self._function = function_name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"devhost-lease-{message.id[:8]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        interval = max(self._lease / 2.0, 0.5)
        while not self._stop.wait(interval):
            try:
                updated = self._client.update_message(
                    self._message_id, self.pop_receipt, visibility_timeout=self._lease
                )
            except Exception as error:
                log.warning("Could not renew the lease of message %s (%s): %s", self._message_id, self._function, error)
                continue
            if updated.pop_receipt:
                self.pop_receipt = updated.pop_receipt

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        return self.pop_receipt


class QueuePoller:
    """Delivers one queue trigger's messages to its function."""

    def __init__(
        self,
        function: FunctionInfo,
        connections: QueueConnections,
        options: QueueOptions,
        invoker: Invoker,
        *,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        environ: Mapping[str, str] | None = None,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        """``wait(seconds)`` is the back-off sleep (a seam for tests); it returns True when stopping."""
        self.function = function
        self.options = options
        self.queue_name = normalize_queue_name(function.queue_name, environ)
        self.poison_queue_name = self.queue_name + POISON_SUFFIX
        self.connection = function.connection
        self._connections = connections
        self._invoker = invoker
        self._lease = max(int(lease_seconds), 1)
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._capacity = threading.Condition()
        self._running = 0
        workers = options.batch_size + options.new_batch_threshold
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix=f"devhost-{function.name}")
        self._thread = threading.Thread(target=self._poll_loop, name=f"devhost-poll-{function.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop receiving; running invocations are left to finish (the host waits for them)."""
        self._stop.set()
        with self._capacity:
            self._capacity.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        # Messages received but not started yet are released (made visible) by _process when it sees the stop.
        self._pool.shutdown(wait=False)

    # -- receiving

    def _poll_loop(self) -> None:
        delay = MIN_POLLING_INTERVAL
        failing = False
        while not self._stop.is_set():
            with self._capacity:
                self._capacity.wait_for(
                    lambda: self._stop.is_set() or self._running <= self.options.new_batch_threshold
                )
            if self._stop.is_set():
                return
            try:
                client = self._connections.ensure(self.connection, self.queue_name)
                messages = self._receive(client)
            except Exception as error:
                log.warning(
                    "Queue '%s' (function %s): storage error, retrying in %.1fs: %s",
                    self.queue_name,
                    self.function.name,
                    delay,
                    str(error).splitlines()[0] if str(error) else type(error).__name__,
                    exc_info=not failing,
                )
                failing = True
                self._wait(delay)
                delay = min(delay * 2, max(self.options.max_polling_interval, MIN_ERROR_BACKOFF_CAP))
                continue
            if failing:
                log.info("Queue '%s' (function %s): storage reachable again", self.queue_name, self.function.name)
                failing = False
                delay = MIN_POLLING_INTERVAL
            if not messages:
                self._wait(delay)
                delay = min(delay * 2, self.options.max_polling_interval)
                continue
            delay = MIN_POLLING_INTERVAL
            for message in messages:
                with self._capacity:
                    self._running += 1
                try:
                    self._pool.submit(self._process, client, message)
                except RuntimeError:  # the pool is shutting down: let the message become visible again
                    self._done()
                    self._release(client, message)

    def _receive(self, client: QueueClient) -> list[QueueMessage]:
        size = self.options.batch_size
        pages = client.receive_messages(
            messages_per_page=size, max_messages=size, visibility_timeout=self._lease
        ).by_page()
        page = next(pages, None)
        return list(page) if page is not None else []

    def _done(self) -> None:
        with self._capacity:
            self._running -= 1
            self._capacity.notify_all()

    # -- processing

    def _process(self, client: QueueClient, message: QueueMessage) -> None:
        try:
            if self._stop.is_set():
                self._release(client, message)
                return
            self._handle(client, message)
        except Exception:
            log.exception("Queue '%s': error handling message %s", self.queue_name, message.id)
        finally:
            self._done()

    def _handle(self, client: QueueClient, message: QueueMessage) -> None:
        dequeue_count = int(message.dequeue_count or 1)
        if dequeue_count > self.options.max_dequeue_count:
            log.warning(
                "Message %s on '%s' was dequeued %d times (maxDequeueCount %d) without completing; moving it to '%s'",
                message.id,
                self.queue_name,
                dequeue_count,
                self.options.max_dequeue_count,
                self.poison_queue_name,
            )
            self._to_poison(client, message, message.pop_receipt or "")
            return
        try:
            body = decode_content(message.content or "", self.options.message_encoding)
        except ValueError as error:
            log.error(
                "Message %s on '%s' cannot be decoded (%s); moving it to '%s'",
                message.id,
                self.queue_name,
                error,
                self.poison_queue_name,
            )
            self._to_poison(client, message, message.pop_receipt or "")
            return
        renewer = _LeaseRenewer(client, message, self._lease, self.function.name)
        renewer.start()
        try:
            result = self._invoker.invoke(
                self.function,
                func_queue.QueueMessage(
                    id=message.id,
                    body=body,
                    dequeue_count=dequeue_count,
                    insertion_time=message.inserted_on,
                    expiration_time=message.expires_on,
                    time_next_visible=message.next_visible_on,
                    pop_receipt=message.pop_receipt,
                ),
                details=f", DequeueCount={dequeue_count}",
            )
        finally:
            pop_receipt = renewer.stop()
        if result.succeeded:
            client.delete_message(message.id, pop_receipt)
        elif dequeue_count >= self.options.max_dequeue_count:
            log.warning(
                "Message %s on '%s' failed %d times (maxDequeueCount); moving it to '%s'",
                message.id,
                self.queue_name,
                dequeue_count,
                self.poison_queue_name,
            )
            self._to_poison(client, message, pop_receipt)
        else:
            client.update_message(
                message.id, pop_receipt, visibility_timeout=math.ceil(self.options.visibility_timeout)
            )

    def _to_poison(self, client: QueueClient, message: QueueMessage, pop_receipt: str) -> None:
        poison = self._connections.ensure(self.connection, self.poison_queue_name)
        poison.send_message(message.content)
        client.delete_message(message.id, pop_receipt)

    def _release(self, client: QueueClient, message: QueueMessage) -> None:
        try:
            client.update_message(message.id, message.pop_receipt, visibility_timeout=0)
        except Exception as error:
            log.warning("Could not release message %s on '%s': %s", message.id, self.queue_name, error)
