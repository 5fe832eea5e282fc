"""The names telemetry is queried by — span attributes and instruments — stated once: the workbook, the alerts
(infra/) and docs/operations/telemetry.md use the same."""

from __future__ import annotations

# -- span (and metric) attributes ----------------------------------------------------------------------
ENVIRONMENT = "appbackups.environment"
NAMESPACE = "appbackups.namespace"
OPERATION_KIND = "appbackups.operation.kind"
OPERATION_ID = "appbackups.operation.id"
STEP = "appbackups.step"
STEP_STATUS = "appbackups.step.status"
ATTEMPT = "appbackups.attempt"
BYTES = "appbackups.bytes"
FILES = "appbackups.files"
OPERATION_STATUS = "appbackups.operation.status"
ERROR_CODE = "appbackups.error.code"
RESTORE_KIND = "appbackups.restore.kind"  # restore or drill
OUTCOME = "appbackups.outcome"  # a drill's result: passed or failed
QUEUE = "appbackups.queue"
STORE = "appbackups.store"  # backups (dumps, manifests) or content (file documents)

# -- instruments ---------------------------------------------------------------------------------------
BACKUP_DURATION = "appbackups.backup.duration"
BACKUP_SIZE = "appbackups.backup.size"
RESTORE_DURATION = "appbackups.restore.duration"
RECOVERY_POINT_AGE = "appbackups.recovery_point.age"
OPERATIONS_FAILED = "appbackups.operations.failed"
OPERATIONS_STALLED = "appbackups.operations.stalled"
QUEUE_DEPTH = "appbackups.queue.depth"
QUEUE_OLDEST_MESSAGE_AGE = "appbackups.queue.oldest_message_age"
STORAGE_USED = "appbackups.storage.used"
INSTRUMENTS = (
    BACKUP_DURATION,
    BACKUP_SIZE,
    RESTORE_DURATION,
    RECOVERY_POINT_AGE,
    OPERATIONS_FAILED,
    OPERATIONS_STALLED,
    QUEUE_DEPTH,
    QUEUE_OLDEST_MESSAGE_AGE,
    STORAGE_USED,
)

# The operation kinds whose end gives a metric (shared/*/steps.py name them so).
BACKUP = "backup"
RESTORE = "restore"
DRILL = "verify"
