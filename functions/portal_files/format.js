// @ts-check
// How values read on the page: dates, sizes, tiers, states, and why an environment cannot be backed up.

import { h } from "./dom.js";
import { EnvironmentState, VerificationStatus } from "./statuses.js";

/** @import { Action, EnvironmentState as State, EnvironmentView, FileProgressView, ProgressView, Tier, VerificationView } from "./types/schemas" */

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateTimeLong = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/**
 * A <time> element; `long` adds seconds. Empty values read as an en dash.
 * @param {string | null | undefined} iso
 * @param {{ long?: boolean }} [options]
 */
export function time(iso, { long = false } = {}) {
  if (!iso) return "–";
  const value = new Date(iso);
  return h("time", { datetime: iso, title: value.toISOString() }, (long ? dateTimeLong : dateTime).format(value));
}

/**
 * A date and time to the second, in local time.
 * @param {Date} date
 */
export function formatLocalSeconds(date) {
  return dateTimeLong.format(date);
}

/** @param {string | null | undefined} iso */
export function formatDateTime(iso) {
  return iso ? dateTime.format(new Date(iso)) : "–";
}

/**
 * An instant in UTC as the API writes it, to the second (milliseconds only when there are some):
 * "2026-12-07T10:41:00Z".
 * @param {Date} date
 */
export function utcText(date) {
  return date.toISOString().replace(/\.000Z$/, "Z");
}

/**
 * An instant to the second, in local time and in UTC: "Dec 7, 2026, 11:41:00 AM (2026-12-07T10:41:00Z)".
 * @param {string | null | undefined} iso
 */
export function formatInstant(iso) {
  if (!iso) return "–";
  const value = new Date(iso);
  return `${dateTimeLong.format(value)} (${utcText(value)})`;
}

/**
 * A span of seconds in words: "42 s", "3 min 5 s", "2 h 3 min".
 * @param {number} seconds
 */
export function formatSeconds(seconds) {
  const whole = Math.max(0, Math.round(seconds));
  if (whole < 60) return `${whole} s`;
  if (whole < 3600) return `${Math.floor(whole / 60)} min${whole % 60 ? ` ${whole % 60} s` : ""}`;
  const minutes = Math.floor((whole % 3600) / 60);
  return `${Math.floor(whole / 3600)} h${minutes ? ` ${minutes} min` : ""}`;
}

/** @param {number | null | undefined} bytes */
export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} ${bytes === 1 ? "byte" : "bytes"}`;
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/**
 * @param {number | null | undefined} count
 * @param {string} one
 * @param {string} many
 */
export function formatCount(count, one, many) {
  if (count === null || count === undefined) return "–";
  return `${count.toLocaleString()} ${count === 1 ? one : many}`;
}

/** @type {Record<Tier, string>} */
const TIERS = {
  manual: "Manual",
  nightly: "Nightly",
  weekly: "Weekly",
  monthly: "Monthly",
  uploaded: "Uploaded",
  "pre-restore": "Pre-restore",
  "point-in-time": "Point in time",
};

/** @param {Tier} tier */
export function tierLabel(tier) {
  return TIERS[tier] ?? tier;
}

/** @type {Record<Action, string>} */
const ACTIONS = {
  register: "Register",
  update: "Update",
  deregister: "Deregister",
  stop: "Stop",
  start: "Start",
  backup: "Backup",
  edit: "Edit",
  delete: "Delete",
  restore: "Restore",
  download: "Download",
  upload: "Upload",
  prune: "Prune",
  verify: "Verify",
  grant: "Grant",
  revoke: "Revoke",
};

/** @param {Action} action */
export function actionLabel(action) {
  return ACTIONS[action] ?? action;
}

/**
 * Environment states in which a backup can be made (SPEC §1).
 * @type {ReadonlySet<State>}
 */
export const BACKUP_STATES = new Set([EnvironmentState.Running, EnvironmentState.Stopped]);

/** @type {Record<Exclude<State, typeof EnvironmentState.Running | typeof EnvironmentState.Stopped>, string>} */
const NOT_BACKED_UP_BECAUSE = {
  Creating: "its creation is in progress",
  CreationFailed: "its creation failed",
  Deploying: "a deployment package is being deployed",
  Starting: "it is starting",
  Stopping: "it is stopping",
  Restoring: "a restore into it is in progress",
  Deregistered: "it was deregistered (its app is gone); its backups stay until they expire",
};

/**
 * Why no backup can be made of the environment now, or "" when one can.
 * @param {EnvironmentView | null | undefined} environment
 */
export function backupRefusal(environment) {
  if (!environment || BACKUP_STATES.has(environment.state)) return "";
  const because = NOT_BACKED_UP_BECAUSE[/** @type {keyof NOT_BACKED_UP_BECAUSE} */ (environment.state)] ?? `it is ${environment.state}`;
  return `No backup can be made of ${environment.displayName} while it is ${environment.state}: ${because}. Backups need it Running or Stopped.`;
}

/** @param {EnvironmentView | null | undefined} environment */
export function environmentName(environment) {
  return environment ? `${environment.displayName} (${environment.id})` : "";
}

/**
 * A status badge: text first, the colour and icon only repeat it. `status` names its look (badge-<status>
 * in styles.css, lower case): a status of the API, or one of the page's (processing, stalled, warning, …).
 * @param {string} status
 * @param {string} [text]
 */
export function statusBadge(status, text = status) {
  return h("span", { class: `badge badge-${String(status).toLowerCase()}` }, h("span", { class: "badge-icon", "aria-hidden": "true" }), text);
}

/**
 * @param {ProgressView | null | undefined} progress
 * @returns {number | null}
 */
export function percentOf(progress) {
  if (!progress) return null;
  if (typeof progress.percent === "number") return Math.max(0, Math.min(100, progress.percent));
  if (progress.total) return Math.min(100, (100 * progress.done) / progress.total);
  if (progress.bytesTotal) return Math.min(100, (100 * progress.bytesDone) / progress.bytesTotal);
  return null;
}

/**
 * "about 1 min 20 s" from seconds.
 * @param {number} seconds
 */
export function formatDuration(seconds) {
  const total = Math.round(seconds);
  if (total < 60) return `${total} s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} min ${String(total % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/**
 * "1,200 of 20,000 files · 3.1 MB of 51.0 MB · about 1 min 20 s left" from a FileProgressView.
 * @param {FileProgressView | null | undefined} files
 */
export function filesText(files) {
  if (!files || files.total === null || files.total === undefined) return "";
  const parts = [`${files.done.toLocaleString()} of ${files.total.toLocaleString()} files`];
  if (files.bytesTotal !== null && files.bytesTotal !== undefined) parts.push(`${formatBytes(files.bytesDone)} of ${formatBytes(files.bytesTotal)}`);
  else if (files.bytesDone) parts.push(formatBytes(files.bytesDone));
  if (files.etaSeconds !== null && files.etaSeconds !== undefined && files.done !== files.total) parts.push(`about ${formatDuration(files.etaSeconds)} left`);
  return parts.join(" · ");
}

/** "3 of 10 · 1.2 MB of 4.0 MB · archiving …" from a ProgressView; a step with file documents shows them first,
 * and a restore's database load its tables: "… files · tables 3 of 12 · 40.0 MB of 121.0 MB · loading the database".
 * @param {ProgressView | null | undefined} progress
 */
export function progressText(progress) {
  if (!progress) return "";
  const parts = [];
  const files = progress.files;
  if (files) parts.push(filesText(files));
  const sameAsFiles = files && files.done === progress.done && files.total === progress.total;
  if (progress.total && !sameAsFiles) parts.push(`${progress.done.toLocaleString()} of ${progress.total.toLocaleString()}`);
  if (progress.tablesTotal !== null && progress.tablesTotal !== undefined) {
    parts.push(`tables ${(progress.tablesDone ?? 0).toLocaleString()} of ${progress.tablesTotal.toLocaleString()}`);
  }
  if (progress.bytesTotal) parts.push(`${formatBytes(progress.bytesDone)} of ${formatBytes(progress.bytesTotal)}`);
  else if (progress.bytesDone) parts.push(formatBytes(progress.bytesDone));
  if (progress.detail) parts.push(progress.detail);
  return parts.join(" · ");
}

/**
 * A <progress>: determinate when a percentage is known, indeterminate (still announced) otherwise.
 * @param {number | null | undefined} percent
 * @param {string} label
 */
export function progressBar(percent, label) {
  /** @type {Record<string, string>} */
  const attributes = { max: "100", "aria-label": label };
  if (percent !== null && percent !== undefined) attributes.value = String(Math.round(percent));
  return h("progress", attributes, percent === null || percent === undefined ? "working…" : `${Math.round(percent)}%`);
}

/** @type {Record<VerificationView["status"], { label: string, kind: string }>} */
const VERIFICATION_BADGES = {
  [VerificationStatus.Passed]: { label: "Verified", kind: "verified" },
  [VerificationStatus.Failed]: { label: "Verification failed", kind: "unverified" },
  [VerificationStatus.Running]: { label: "Verifying", kind: "processing" },
};

/**
 * A backup's last restore drill, as a badge: Verified, Verification failed, or Verifying.
 * @param {VerificationView | null | undefined} verification
 */
export function verificationBadge(verification) {
  if (!verification) return null;
  const badge = VERIFICATION_BADGES[verification.status] ?? { label: verification.status, kind: "processing" };
  return statusBadge(badge.kind, badge.label);
}
