"""Storage errors in the project's own terms. The adapters translate the Azure SDK's exceptions into
these at the seam, so no code outside ``shared/adapters/`` (and ``shared/clients.py``) catches an SDK
exception; the in-memory twins raise the same ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import AzureError, ResourceNotFoundError

from shared.faults import Fault


class StorageFault(Fault):
    """Storage did not answer as expected: unreachable, throttled, refusing. Trying again may help,
    unless the fault says otherwise. The HTTP layer answers it with a 503."""

    transient = True

    def __init__(self, message: str, *, transient: bool | None = None, error_type: str | None = None) -> None:
        super().__init__(message, transient=transient)
        self.error_type = error_type or type(self).__name__  # what went wrong, for the log and the 503


class StorageNotFound(StorageFault):
    """A container, blob, table or queue that is needed does not exist: trying again will not help."""

    transient = False


class BlobNotFound(StorageNotFound):
    """The blob (or its container) does not exist."""


class BlobExists(StorageFault):
    """A write that must not overwrite found the blob already there."""

    transient = False


class SourceChanged(Fault):
    """The source blob changed (or vanished) while we were reading or copying it."""

    transient = True


class BlobCopyFailed(Fault):
    """The service reported a failed or aborted copy."""

    transient = True


def storage_fault(error: AzureError, not_found: type[StorageNotFound] = StorageNotFound) -> StorageFault:
    """The project's error for an SDK exception (with the message a person is shown for it)."""
    name = type(error).__name__
    if isinstance(error, ResourceNotFoundError):
        reason = getattr(error, "reason", None) or "not found"
        return not_found(f"A storage container or blob that is needed does not exist ({reason}).", error_type=name)
    first = str(error).splitlines()[0] if str(error) else ""
    return StorageFault(f"Storage failed: {name}: {first}".strip(), error_type=name)


@contextmanager
def translated(not_found: type[StorageNotFound] = StorageNotFound) -> Iterator[None]:
    """Re-raise an SDK exception from the block as the project's storage error (the cause kept)."""
    try:
        yield
    except AzureError as error:
        raise storage_fault(error, not_found) from error
