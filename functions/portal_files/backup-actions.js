// @ts-check
// More Options → Details (with the comment editable), Delete (after confirmation) and Pin (keep until a date).

import { api, describeError, route } from "./api.js";
import { closeDialog, openDialog } from "./dialogs.js";
import { byId, fill, h, say } from "./dom.js";
import { formatBytes, formatCount, filesText, formatDateTime, statusBadge, tierLabel, time, verificationBadge } from "./format.js";
import { isAbort, poll } from "./poller.js";
import { changed, emit, environmentById } from "./state.js";
import { BackupStatus, CheckStatus } from "./statuses.js";

/** @import { Answer } from "./api.js" */
/** @import { Child } from "./dom.js" */
/** @import { BackupView, CheckView, VerificationView } from "./types/schemas" */

const POLL_MS = 1500;

/** @param {BackupView} backup */
function backupRoute(backup) {
  return route`environments/${backup.environmentId}/backups/${backup.id}`;
}

/**
 * The backup as it is now.
 * @param {BackupView} backup
 * @param {AbortSignal} [signal]
 * @returns {Promise<BackupView>}
 */
async function readBackup(backup, signal) {
  /** @type {Answer<BackupView>} */
  const { data } = await api(backupRoute(backup), { signal });
  return data;
}

/** @param {BackupView} backup */
function describeBackup(backup) {
  const environment = environmentById(backup.environmentId);
  return `the ${tierLabel(backup.tier).toLowerCase()} backup of ${environment?.displayName ?? backup.environmentId} made on ${formatDateTime(backup.createdOn)}`;
}

// ---- Details ---------------------------------------------------------------------------------------------

const detailsList = byId("details-list");
const detailsMessage = byId("details-message");
const commentForm = byId("details-comment-form", HTMLFormElement);
const commentField = byId("details-comment", HTMLInputElement);
/** @type {BackupView | null} */
let detailsBackup = null;

/**
 * @param {string} name
 * @param {...Child} value
 */
function row(name, ...value) {
  return [h("dt", {}, name), h("dd", {}, ...value)];
}

/** @param {BackupView} backup */
function renderDetails(backup) {
  const pinned = backup.keepUntil ? [time(backup.keepUntil, { long: true })] : ["not pinned"];
  fill(
    detailsList,
    row("Status", statusBadge(backup.status)),
    row("Backup id", h("code", {}, backup.id)),
    row("Created on", time(backup.createdOn, { long: true })),
    row("Finished on", time(backup.finishedOn, { long: true })),
    row("Expires on", time(backup.expiresOn, { long: true })),
    row("Kept until (pinned)", ...pinned),
    row("Deployment package", backup.deploymentPackage ?? "–"),
    row("Model version", backup.modelVersion ?? "–"),
    row("Comment", backup.comment || "–"),
    row("Tier", tierLabel(backup.tier)),
    row("Database dump size", formatBytes(backup.dumpSize)),
    row("Database size", formatBytes(backup.databaseSize)),
    row("File documents", formatCount(backup.fileCount, "file", "files")),
    row("File documents size", formatBytes(backup.filesSize)),
    row("Files stored by this backup", backup.filesCopied === null || backup.filesCopied === undefined ? "–" : formatCount(backup.filesCopied, "file (the rest were shared)", "files (the rest were shared)")),
    row("Dump SHA-256", backup.dumpSha256 ? h("code", { class: "wrap" }, backup.dumpSha256) : "–"),
    row("Created by", backup.createdBy?.name ?? "–"),
    row("Status message", backup.statusMessage || "–"),
    backup.status === BackupStatus.Processing ? row("Progress", backup.progress || "queued") : null,
    backup.status === BackupStatus.Processing && backup.fileProgress ? row("File documents stored", filesText(backup.fileProgress) || "–") : null,
    backup.heartbeatOn ? row("Worker last checked in", time(backup.heartbeatOn, { long: true })) : null,
    backup.stalledSince ? row("Stalled since", time(backup.stalledSince, { long: true }), " — it resumes by itself") : null,
    backup.inUseBy?.length ? row("In use by", `${backup.inUseBy.length} restore or download operation(s)`) : null,
    backup.warnings?.length ? row("Warnings", h("ul", { class: "plain-list" }, ...backup.warnings.map((warning) => h("li", {}, warning)))) : null,
    row("Verification", ...verificationCell(backup.verification)),
    ...(backup.verification?.checks ?? []).map((check) => row(`Check: ${check.name}`, statusBadge(checkLook(check), check.status), " ", check.detail)),
  );
}

/** @param {CheckView} check */
function checkLook(check) {
  if (check.status === CheckStatus.Passed) return "finished";
  if (check.status === CheckStatus.Failed) return "failed";
  return "processing";
}

/** @param {VerificationView | null} verification */
function verificationCell(verification) {
  if (!verification) return ["not verified by a restore drill yet"];
  const when = verification.verifiedOn ? [" on ", time(verification.verifiedOn, { long: true })] : [];
  const took = verification.restoreSeconds == null ? "" : `; the dump loaded in ${verification.restoreSeconds.toFixed(1)} s`;
  return [verificationBadge(verification), ...when, took];
}

/**
 * Verify: a restore drill of the backup (POST …/verify); the list shows its badge as it runs and ends.
 * @param {BackupView} backup
 * @param {HTMLElement} message
 */
export async function verifyBackup(backup, message) {
  say(message, `Starting a restore drill of the backup of ${formatDateTime(backup.createdOn)}…`, "info");
  try {
    await api(route`environments/${backup.environmentId}/backups/${backup.id}/verify`, { method: "POST" });
    say(message, "A restore drill is verifying the backup: it restores it into a scratch database and checks it.", "success");
    changed(backup.environmentId, "backups", "activity");
  } catch (error) {
    say(message, describeError(error), "error");
  }
}

/**
 * @param {BackupView} backup
 * @param {HTMLElement} opener
 */
export async function showDetails(backup, opener) {
  detailsBackup = backup;
  renderDetails(backup);
  commentField.value = backup.comment ?? "";
  say(detailsMessage, "");
  const closed = openDialog("details-dialog", { returnFocus: opener });
  byId("details-close").focus();
  // Read it afresh, and follow it while it is being made.
  try {
    await poll({
      read: (signal) => readBackup(backup, signal),
      show: (data) => {
        detailsBackup = data;
        renderDetails(data);
      },
      going: (data) => data.status === BackupStatus.Processing,
      intervalMs: POLL_MS,
      signal: closed,
    });
  } catch (error) {
    if (!isAbort(error)) say(detailsMessage, describeError(error), "error");
  }
}

commentForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!detailsBackup) return;
  say(detailsMessage, "Saving the comment…", "info");
  try {
    /** @type {Answer<BackupView>} */
    const { data } = await api(backupRoute(detailsBackup), { method: "PATCH", body: { comment: commentField.value.trim() } });
    detailsBackup = data;
    renderDetails(data);
    say(detailsMessage, "Comment saved.", "success");
    changed(data.environmentId, "backups", "activity");
  } catch (error) {
    say(detailsMessage, describeError(error), "error");
  }
});

// ---- Delete ----------------------------------------------------------------------------------------------

const deleteText = byId("delete-text");
const deleteMessage = byId("delete-message");
const deleteButton = byId("delete-confirm", HTMLButtonElement);
/** @type {BackupView | null} */
let deleteBackup = null;

/**
 * @param {BackupView} backup
 * @param {HTMLElement} opener
 */
export function confirmDelete(backup, opener) {
  deleteBackup = backup;
  fill(deleteText, `Delete ${describeBackup(backup)}? Its database dump and file list are removed; this cannot be undone.`);
  say(deleteMessage, "");
  deleteButton.disabled = false;
  openDialog("delete-dialog", { returnFocus: opener });
  byId("delete-cancel").focus();
}

deleteButton.addEventListener("click", async () => {
  const backup = deleteBackup;
  if (!backup) return;
  deleteButton.disabled = true;
  say(deleteMessage, "Deleting…", "info");
  try {
    await api(backupRoute(backup), { method: "DELETE" });
    closeDialog("delete-dialog");
    emit("notice", { text: `Deleted ${describeBackup(backup)}.`, kind: "success" });
    changed(backup.environmentId, "backups", "activity");
  } catch (error) {
    say(deleteMessage, describeError(error), "error");
    deleteButton.disabled = false;
  }
});

// ---- Cancel (a backup being made) --------------------------------------------------------------------------

/** @param {BackupView} backup */
export async function cancelBackup(backup) {
  try {
    await api(`${backupRoute(backup)}/cancel`, { method: "POST" });
    emit("notice", { text: `Cancelling ${describeBackup(backup)}: it stops and its partial data is removed.`, kind: "info" });
  } catch (error) {
    emit("notice", { text: describeError(error), kind: "error" });
  }
  changed(backup.environmentId, "backups", "activity");
}

// ---- Pin -------------------------------------------------------------------------------------------------

const pinForm = byId("pin-form", HTMLFormElement);
const pinText = byId("pin-text");
const pinDate = byId("pin-date", HTMLInputElement);
const pinMessage = byId("pin-message");
const unpinButton = byId("pin-remove", HTMLButtonElement);
/** @type {BackupView | null} */
let pinBackup = null;

/** @param {Date} date */
function localDate(date) {
  /** @param {number} number */
  const pad = (number) => String(number).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/**
 * @param {BackupView} backup
 * @param {HTMLElement} opener
 */
export function showPin(backup, opener) {
  pinBackup = backup;
  const tomorrow = new Date();
  tomorrow.setDate(tomorrow.getDate() + 1);
  pinDate.min = localDate(tomorrow);
  pinDate.value = backup.keepUntil ? localDate(new Date(backup.keepUntil)) : "";
  fill(
    pinText,
    `Without a pin, ${describeBackup(backup)} expires on `,
    time(backup.expiresOn),
    backup.keepUntil ? [". It is pinned until ", time(backup.keepUntil), "."] : ". A pinned backup is kept until the date you choose, even after it expires.",
  );
  unpinButton.hidden = !backup.keepUntil;
  say(pinMessage, "");
  openDialog("pin-dialog", { returnFocus: opener });
}

/** @param {string | null} keepUntil */
async function savePin(keepUntil) {
  const backup = pinBackup;
  if (!backup) return;
  say(pinMessage, "Saving…", "info");
  try {
    /** @type {Answer<BackupView>} */
    const { data } = await api(backupRoute(backup), { method: "PATCH", body: { keepUntil } });
    closeDialog("pin-dialog");
    const text = data.keepUntil ? `Pinned ${describeBackup(data)} until ${formatDateTime(data.keepUntil)}.` : `Unpinned ${describeBackup(data)}: it expires on ${formatDateTime(data.expiresOn)}.`;
    emit("notice", { text, kind: "success" });
    changed(backup.environmentId, "backups", "activity");
  } catch (error) {
    say(pinMessage, describeError(error), "error");
  }
}

pinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!pinDate.value) {
    say(pinMessage, "Choose the date to keep the backup until.", "error");
    pinDate.focus();
    return;
  }
  const [year, month, day] = pinDate.value.split("-").map(Number);
  // The end of the chosen day, local time, sent as UTC (the API wants an offset).
  savePin(new Date(year, month - 1, day, 23, 59, 59).toISOString());
});
unpinButton.addEventListener("click", () => savePin(null));
