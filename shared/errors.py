"""The core's error hierarchy. Each error has a stable machine-readable code; the HTTP layer maps
the kind to a status once (functions/http.py), so the core never speaks HTTP."""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorKind(Enum):
    INVALID = "invalid"  # the request itself is malformed
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # the resource's current state forbids it
    UNPROCESSABLE = "unprocessable"  # well-formed, but not acceptable as asked
    PRECONDITION_FAILED = "precondition_failed"  # If-Match did not match
    UNAVAILABLE = "unavailable"  # a dependency is down or not configured


class AppError(Exception):
    kind: ErrorKind = ErrorKind.INVALID
    code: str = "error"
    title: str = "The request could not be completed"

    def __init__(self, detail: str, *, code: str | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extensions = extensions


class InvalidRequest(AppError):
    kind = ErrorKind.INVALID
    code = "invalid_request"
    title = "The request is not valid"


class Unauthenticated(AppError):
    kind = ErrorKind.UNAUTHENTICATED
    code = "unauthenticated"
    title = "Authentication is required"


class Forbidden(AppError):
    kind = ErrorKind.FORBIDDEN
    code = "forbidden"
    title = "Not allowed"


class NotFound(AppError):
    kind = ErrorKind.NOT_FOUND
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    kind = ErrorKind.CONFLICT
    code = "conflict"
    title = "Conflict with the current state"


class Unprocessable(AppError):
    kind = ErrorKind.UNPROCESSABLE
    code = "unprocessable"
    title = "The request cannot be carried out"


class StaleRecord(Conflict):
    """A write guarded by an ETag found the record changed since it was read: the writer lost a race.
    Workers treat only this as "someone else got there first"; every other error is what it says."""

    code = "concurrent_update"


class AlreadyExists(Conflict):
    """An insert found a record with the same key: somebody (or an earlier attempt) made it first."""


class PreconditionFailed(AppError):
    kind = ErrorKind.PRECONDITION_FAILED
    code = "precondition_failed"
    title = "The resource has changed"


class ServiceUnavailable(AppError):
    kind = ErrorKind.UNAVAILABLE
    code = "unavailable"
    title = "A dependency is unavailable"
