"""What the CLI sends and reads, field by field, as TypedDicts named after the OpenAPI schema each one is
checked against (tests/unit/test_cli_contract.py): only the fields the CLI uses. ``NotRequired`` where the
API may leave a field out, ``| None`` where it may send null, ``Literal`` for the values the CLI compares to."""

# No `from __future__ import annotations`: Python 3.11's TypedDict reads NotRequired only from real annotations.

from typing import Literal, NotRequired, TypedDict

BackupStatus = Literal["Processing", "Finished", "Failed", "Cancelled"]
JobStatus = Literal["Running", "Stalled", "Finished", "Failed", "Cancelled"]
StepState = Literal["Pending", "Running", "Stalled", "Finished", "Failed", "Cancelled"]
VerificationStatus = Literal["Running", "Passed", "Failed"]
DataType = Literal["files_and_database", "database_only"]


# -- environments --------------------------------------------------------------------------------------


class DatabaseConnectionBody(TypedDict):
    host: str
    port: NotRequired[int]
    database: str
    user: str


class FileLocationBody(TypedDict):
    container: str
    prefix: NotRequired[str]


class LastScheduledBackupView(TypedDict):
    night: str
    snapshotId: str | None
    status: BackupStatus | None
    tier: str | None


class ScheduleView(TypedDict):
    nightlySchedule: str
    nextRun: str | None
    lastScheduledBackup: LastScheduledBackupView | None


class LastDrillView(TypedDict):
    snapshotId: str
    status: str
    verifiedOn: str
    restoreSeconds: float | None


class EnvironmentView(TypedDict):
    id: str
    namespace: str
    appName: str
    displayName: str
    state: str
    database: DatabaseConnectionBody
    files: FileLocationBody
    modelVersion: str | None
    deploymentPackage: str | None
    activeRestoreId: str | None
    lastDrill: NotRequired[LastDrillView | None]
    deregisteredOn: NotRequired[str | None]
    schedule: NotRequired[ScheduleView | None]


class Page_EnvironmentView_(TypedDict):  # noqa: N801 (the schema's name)
    items: list[EnvironmentView]
    continuationToken: NotRequired[str | None]


# -- backups -------------------------------------------------------------------------------------------


class PrincipalView(TypedDict):
    id: str
    name: str


class CheckView(TypedDict):
    name: str
    status: str
    detail: str


class VerificationView(TypedDict):
    status: VerificationStatus
    startedOn: str
    verifiedOn: str | None
    restoreSeconds: float | None
    checks: list[CheckView]


class FileProgressView(TypedDict):
    done: int
    total: int | None
    bytesDone: int
    bytesTotal: int | None
    percent: float | None
    etaSeconds: float | None


class MissingFilesView(TypedDict):
    count: int
    uuids: list[str]


class DownloadSizeView(TypedDict):
    size: int
    estimate: bool


class BackupView(TypedDict):
    id: str
    environmentId: str
    namespace: str
    status: BackupStatus
    statusMessage: str
    tier: str
    pointInTime: NotRequired[str | None]
    createdOn: str
    finishedOn: str | None
    expiresOn: str
    keepUntil: str | None
    retainedUntil: str
    deploymentPackage: str | None
    modelVersion: str | None
    comment: str
    dumpSize: int | None
    dumpSha256: str | None
    databaseSize: int | None
    fileCount: int | None
    filesSize: int | None
    filesCopied: int | None
    serverVersion: NotRequired[int | None]
    tableCount: NotRequired[int | None]
    rowCount: NotRequired[int | None]
    filesReconciled: NotRequired[bool | None]
    filesReconciledOn: NotRequired[str | None]
    warnings: NotRequired[list[str]]
    missingFiles: NotRequired[MissingFilesView | None]
    downloadSizes: NotRequired[dict[str, DownloadSizeView] | None]
    verification: NotRequired[VerificationView | None]
    createdBy: PrincipalView
    progress: str
    fileProgress: NotRequired[FileProgressView | None]
    attempts: int
    inUseBy: list[str]
    stalledSince: NotRequired[str | None]


class Page_BackupView_(TypedDict):  # noqa: N801
    items: list[BackupView]
    continuationToken: NotRequired[str | None]


class CreateBackupBody(TypedDict):
    comment: str
    pointInTime: NotRequired[str]
    reconcile: NotRequired[bool]


class EditBackupBody(TypedDict):
    comment: NotRequired[str]
    keepUntil: NotRequired[str | None]


# -- restores, drills: the operation engine's view -----------------------------------------------------


class ProgressView(TypedDict):
    percent: float | None
    detail: str
    bytesDone: int
    bytesTotal: int | None
    files: NotRequired[FileProgressView | None]
    tablesDone: NotRequired[int]
    tablesTotal: NotRequired[int | None]


class StepView(TypedDict):
    name: str
    title: str
    status: StepState
    attempts: int
    startedOn: str | None
    finishedOn: str | None
    progress: ProgressView


class ErrorView(TypedDict):
    step: str | None
    message: str


class OperationView(TypedDict):
    id: str
    status: JobStatus
    environmentId: str
    snapshotId: str | None
    createdOn: str
    finishedOn: str | None
    stalledSince: str | None
    undoing: str | None
    steps: list[StepView]
    warnings: list[str]
    error: ErrorView | None


class RestoreBody(TypedDict):
    targetEnvironment: str
    dryRun: bool


class PreflightCheckView(TypedDict):
    name: str
    status: str
    reason: str


class PlanSizesView(TypedDict):
    dumpSize: int | None
    databaseSize: int | None
    filesToCopy: int | None
    bytesToCopy: int | None


class RestorePlanView(TypedDict):
    outcome: Literal["pass", "warn", "fail"]
    targetEnvironmentId: str
    stopNeeded: bool
    checks: list[PreflightCheckView]
    sizes: PlanSizesView
    estimatedSeconds: float | None
    estimateBasis: str
    warnings: list[str]


# -- point-in-time recovery ---------------------------------------------------------------------------


class GapView(TypedDict):
    start: str
    end: str
    reason: str


class RecoveryWindowView(TypedDict):
    environmentId: str
    server: str
    earliest: str | None
    latest: str | None
    gaps: list[GapView]
    recoveryPointSeconds: float | None


class RestoreToTimeBody(TypedDict):
    pointInTime: str
    targetEnvironment: str
    dryRun: bool


class PointInTimePlanView(TypedDict):
    outcome: Literal["pass", "warn", "fail"]
    pointInTime: str
    sourceEnvironmentId: str
    targetEnvironmentId: str
    stopNeeded: bool
    checks: list[PreflightCheckView]
    earliest: str | None
    latest: str | None
    gaps: list[GapView]
    estimatedSeconds: float | None
    estimateBasis: str
    warnings: list[str]


# -- downloads and uploads -----------------------------------------------------------------------------


class DownloadBody(TypedDict):
    dataType: DataType


class DownloadView(TypedDict):
    status: Literal["Processing", "Ready", "Failed", "Cancelled", "Expired"]
    dataType: DataType
    expiresOn: NotRequired[str | None]
    url: NotRequired[str | None]
    fileName: NotRequired[str | None]
    size: NotRequired[int | None]
    sha256: NotRequired[str | None]
    expectedSize: NotRequired[int | None]
    expectedSizeIsEstimate: NotRequired[bool]
    progress: NotRequired[ProgressView | None]
    error: NotRequired[ErrorView | None]


class StartUploadBody(TypedDict):
    fileName: str | None
    comment: str


class UploadStarted(TypedDict):
    uploadId: str
    uploadUrl: str
    expiresOn: str


class UploadAccepted(TypedDict):
    backupId: str
    backup: BackupView


# -- webhooks ------------------------------------------------------------------------------------------


class AttemptView(TypedDict):
    on: str
    statusCode: int | None
    error: NotRequired[str]


class DeliveryView(TypedDict):
    eventId: str
    eventType: str
    status: str
    attempts: list[AttemptView]
    nextAttemptOn: NotRequired[str | None]


class Page_DeliveryView_(TypedDict):  # noqa: N801
    items: list[DeliveryView]
    continuationToken: NotRequired[str | None]


class WebhookView(TypedDict):
    id: str
    url: str
    events: list[str]
    secretSet: bool
    lastDelivery: NotRequired[DeliveryView | None]


class Page_WebhookView_(TypedDict):  # noqa: N801
    items: list[WebhookView]
    continuationToken: NotRequired[str | None]


class WebhookBody(TypedDict):
    url: str
    events: list[str]
    description: str
    secret: NotRequired[str | None]


# -- problems (RFC 9457); NotRequired throughout, as a proxy in front of the API answers without them ------


class FieldError(TypedDict):
    field: NotRequired[str]
    message: NotRequired[str]


class Problem(TypedDict):
    detail: NotRequired[str]
    code: NotRequired[str]
    errors: NotRequired[list[FieldError] | None]


# -- schedules -----------------------------------------------------------------------------------------

NightState = Literal["notDue", "waiting", "running", "done", "failed"]


class NightCountsView(TypedDict):
    notDue: int
    waiting: int
    running: int
    done: int
    failed: int
    total: int


class EnvironmentNightView(TypedDict):
    environmentId: str
    namespace: str
    displayName: str
    state: NightState
    snapshotId: NotRequired[str | None]
    detail: NotRequired[str]


class NightView(TypedDict):
    night: str
    counts: NightCountsView
    environments: list[EnvironmentNightView]
