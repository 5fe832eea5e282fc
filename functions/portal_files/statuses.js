// @ts-check
// The API's statuses and states by name. Each set is typed against its enum in the API's OpenAPI document
// (types/api.d.ts, generated), so a misspelt, missing or unknown value fails `tsc` instead of the page.

/** @import * as Api from "./types/schemas" */

/**
 * Every value of the string union T, named by itself.
 * @template {string} T
 * @typedef {{ readonly [K in T]: K }} Names
 */

/** A backup's status (BackupView.status). */
export const BackupStatus = Object.freeze(
  /** @satisfies {Names<Api.BackupStatus>} */ ({ Processing: "Processing", Finished: "Finished", Failed: "Failed", Cancelled: "Cancelled" }),
);

/** A restore drill's status (BackupView.verification.status). */
export const VerificationStatus = Object.freeze(
  /** @satisfies {Names<Api.VerificationStatus>} */ ({ Running: "Running", Passed: "Passed", Failed: "Failed" }),
);

/** One check of a restore drill (VerificationView.checks[].status). */
export const CheckStatus = Object.freeze(
  /** @satisfies {Names<Api.CheckStatus>} */ ({ Passed: "Passed", Warning: "Warning", Failed: "Failed", Skipped: "Skipped" }),
);

/** A restore's status (OperationView.status). */
export const JobStatus = Object.freeze(
  /** @satisfies {Names<Api.JobStatus>} */ ({ Running: "Running", Stalled: "Stalled", Finished: "Finished", Failed: "Failed", Cancelled: "Cancelled" }),
);

/** What a restore that is being undone will end as (OperationView.undoing). */
export const OperationStatus = Object.freeze(
  /** @satisfies {Names<Api.OperationStatus>} */ ({ Running: "Running", Finished: "Finished", Failed: "Failed", Cancelled: "Cancelled" }),
);

/** One step of a restore (StepView.status). */
export const StepState = Object.freeze(
  /** @satisfies {Names<Api.StepState>} */ ({
    Pending: "Pending",
    Running: "Running",
    Stalled: "Stalled",
    Finished: "Finished",
    Failed: "Failed",
    Cancelled: "Cancelled",
  }),
);

/** A download's archive (DownloadView.status). */
export const DownloadStatus = Object.freeze(
  /** @satisfies {Names<Api.DownloadStatus>} */ ({ Processing: "Processing", Ready: "Ready", Failed: "Failed", Cancelled: "Cancelled", Expired: "Expired" }),
);

/** An environment's state (EnvironmentView.state). */
export const EnvironmentState = Object.freeze(
  /** @satisfies {Names<Api.EnvironmentState>} */ ({
    Creating: "Creating",
    CreationFailed: "CreationFailed",
    Deploying: "Deploying",
    Starting: "Starting",
    Running: "Running",
    Stopping: "Stopping",
    Stopped: "Stopped",
    Restoring: "Restoring",
    Deregistered: "Deregistered",
  }),
);

/** How an entry of the activity log ended (ActivityEntryView.outcome). */
export const Outcome = Object.freeze(/** @satisfies {Names<Api.Outcome>} */ ({ FINISHED: "FINISHED", FAILED: "FAILED", CANCELLED: "CANCELLED" }));

/** A webhook delivery (DeliveryView.status). */
export const DeliveryStatus = Object.freeze(
  /** @satisfies {Names<Api.DeliveryStatus>} */ ({ Pending: "Pending", Delivered: "Delivered", Failed: "Failed" }),
);

/** A restore plan and each of its checks (RestorePlanView.outcome, PreflightCheckView.status). */
export const PlanOutcome = Object.freeze(/** @satisfies {Names<Api.PlanOutcome>} */ ({ pass: "pass", warn: "warn", fail: "fail" }));

/** A permission in a namespace (MembershipView.permissions). */
export const Permission = Object.freeze(
  /** @satisfies {Names<Api.Permission>} */ ({ ManageAppsBackups: "ManageAppsBackups", StopApps: "StopApps", NamespaceAdmin: "NamespaceAdmin" }),
);
