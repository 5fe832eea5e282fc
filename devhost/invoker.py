"""Run one user function the way the host does: arguments by binding name, timing, outcome log line."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import azure.functions as func
from azure.functions import _abc as func_abc

from devhost.loader import FunctionInfo

log = logging.getLogger("devhost")


class InFlight:
    """Counts work in progress so that shutdown can wait for it."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    def begin(self) -> None:
        with self._idle:
            self._count += 1

    def end(self) -> None:
        with self._idle:
            self._count -= 1
            if self._count == 0:
                self._idle.notify_all()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        finally:
            self.end()

    @property
    def count(self) -> int:
        with self._idle:
            return self._count

    def wait_idle(self, timeout: float | None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout=timeout)


class QueueSender(Protocol):
    """Where queue output bindings go (implemented by :class:`devhost.queues.QueueConnections`)."""

    def send(self, connection: str, queue_name: str, bodies: list[bytes]) -> None: ...


@dataclass
class InvocationResult:
    function: str
    invocation_id: str
    succeeded: bool
    duration_ms: float
    value: Any = None
    error: BaseException | None = None


class _TraceContext(func_abc.TraceContext):
    """The W3C trace context the host hands an invocation: for an HTTP request, the caller's ``traceparent``
    header (none without one: the function's span starts the trace); else a new one, as the host's own."""

    def __init__(self, parent: str | None = None) -> None:
        self._parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01" if parent is None else parent

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(func_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func_abc.Context):
    """The ``context`` argument a function may declare."""

    def __init__(
        self, invocation_id: str, function_name: str, function_directory: str, trace_parent: str | None = None
    ) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace = _TraceContext(trace_parent)
        self._retry = _RetryContext()
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> func_abc.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> func_abc.RetryContext:
        return self._retry


class Output(func.Out[Any]):
    """A ``func.Out`` for output bindings: holds what the function set."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


@dataclass
class Invoker:
    """Calls user functions; one per host. ``function_timeout`` (seconds) only warns, it does not cancel."""

    app_dir: Path
    function_timeout: float | None = None
    queue_sender: QueueSender | None = None
    inflight: InFlight = field(default_factory=InFlight)

    def invoke(self, function: FunctionInfo, trigger_value: Any, *, details: str = "") -> InvocationResult:
        """Run ``function`` with ``trigger_value`` as its trigger argument; never raises for user errors."""
        invocation_id = str(uuid.uuid4())
        with self.inflight.track():
            started = time.perf_counter()
            watchdog = self._watchdog(function, invocation_id)
            try:
                kwargs, outputs = self._arguments(function, trigger_value, invocation_id)
                value = function.func(**kwargs)
                if inspect.isawaitable(value):
                    value = asyncio.run(_await(value))
                self._flush_outputs(function, outputs, value)
            except Exception as error:
                duration = (time.perf_counter() - started) * 1000
                log.error(
                    "Executed 'Functions.%s' (Failed, %s, Trigger=%s, Id=%s, Duration=%dms%s)",
                    function.name,
                    type(error).__name__,
                    function.trigger_type,
                    invocation_id,
                    duration,
                    details,
                    exc_info=error,
                )
                return InvocationResult(function.name, invocation_id, False, duration, error=error)
            finally:
                if watchdog is not None:
                    watchdog.cancel()
            duration = (time.perf_counter() - started) * 1000
            log.info(
                "Executed 'Functions.%s' (Succeeded, Trigger=%s, Id=%s, Duration=%dms%s)",
                function.name,
                function.trigger_type,
                invocation_id,
                duration,
                details,
            )
            return InvocationResult(function.name, invocation_id, True, duration, value=value)

    def _watchdog(self, function: FunctionInfo, invocation_id: str) -> threading.Timer | None:
        if self.function_timeout is None:
            return None
        limit = self.function_timeout
        timer = threading.Timer(
            limit,
            lambda: log.warning(
                "Function 'Functions.%s' (Id=%s) has been running longer than functionTimeout (%gs); "
                "the Functions host would stop it now",
                function.name,
                invocation_id,
                limit,
            ),
        )
        timer.daemon = True
        timer.start()
        return timer

    def _arguments(
        self, function: FunctionInfo, trigger_value: Any, invocation_id: str
    ) -> tuple[dict[str, Any], dict[str, Output]]:
        kwargs: dict[str, Any] = {function.arg_name: trigger_value}
        outputs: dict[str, Output] = {}
        names = {str(binding.get("name")) for binding in function.bindings}
        for binding in function.bindings:
            name = str(binding.get("name"))
            if name in kwargs or name == "$return":
                continue
            if binding.get("type") == "queue":
                outputs[name] = kwargs[name] = Output()
            else:
                raise NotImplementedError(
                    f"devhost does not support the '{binding.get('type')}' binding '{name}' of '{function.name}'"
                )
        parameters = inspect.signature(function.func).parameters
        if "context" in parameters and "context" not in names:
            trace_parent = None
            if isinstance(trigger_value, func.HttpRequest):
                trace_parent = trigger_value.headers.get("traceparent") or ""
            kwargs["context"] = InvocationContext(invocation_id, function.name, str(self.app_dir), trace_parent)
        return kwargs, outputs

    def _flush_outputs(self, function: FunctionInfo, outputs: dict[str, Output], value: Any) -> None:
        for binding in function.output_bindings("queue"):
            name = str(binding.get("name"))
            produced = value if name == "$return" else outputs[name].get() if name in outputs else None
            if produced is None:
                continue
            if self.queue_sender is None:
                raise RuntimeError(f"queue output '{name}' of '{function.name}' needs queues, which are disabled")
            items = produced if isinstance(produced, list) else [produced]
            bodies = [_as_bytes(item) for item in items]
            connection = str(binding.get("connection") or "AzureWebJobsStorage")
            self.queue_sender.send(connection, str(binding["queueName"]), bodies)


def _as_bytes(item: Any) -> bytes:
    if isinstance(item, bytes | bytearray):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    return json.dumps(item).encode("utf-8")


async def _await(awaitable: Any) -> Any:
    return await awaitable
