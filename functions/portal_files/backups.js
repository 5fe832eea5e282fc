// @ts-check
// The list of backups of the selected environment: Create Backup, the Status column that follows the work
// while it runs, "Show more backups", and each row's More Options menu.

import { api, describeError, firstPages, route } from "./api.js";
import { cancelBackup, showDetails, confirmDelete, showPin, verifyBackup } from "./backup-actions.js";
import { byId, fill, h, say } from "./dom.js";
import { backupRefusal, formatBytes, formatCount, filesText, formatDateTime, statusBadge, tierLabel, time, verificationBadge } from "./format.js";
import { menuButton } from "./menu.js";
import { Poller, isAbort } from "./poller.js";
import { startRestore } from "./restore.js";
import { changed, holds, on, selectedEnvironment, state } from "./state.js";
import { BackupStatus, Permission, VerificationStatus } from "./statuses.js";
import { showDownload } from "./transfers.js";

/** @import { Answer } from "./api.js" */
/** @import { MenuItem } from "./menu.js" */
/** @import { BackupView, Page } from "./types/schemas" */

const PAGE_SIZE = 20;
const POLL_MS = 1500;

const table = byId("backups-table", HTMLTableElement);
const body = table.tBodies[0];
const caption = byId("backups-caption");
const empty = byId("backups-empty");
const moreButton = byId("more-backups", HTMLButtonElement);
const message = byId("backups-message");
const form = byId("create-backup-form", HTMLFormElement);
const commentInput = byId("backup-comment", HTMLInputElement);
const createButton = byId("create-backup");
const refusalText = byId("create-backup-reason");

/** @type {{ environmentId: string, items: BackupView[], pages: number, token: string | null, generation: number }} */
const list = { environmentId: "", items: [], pages: 0, token: null, generation: 0 };
/** @type {{ id: string, environmentName: string } | null} */
let requested = null; // the backup this page asked for last, until it has ended
/** @type {Map<string, HTMLTableRowElement>} */
const rows = new Map();
const follower = new Poller(); // while a backup shown is being made or verified

/** @param {string} id */
function backupById(id) {
  return list.items.find((item) => item.id === id) ?? null;
}

/**
 * Whether a backup is still changing by itself: being made, or a restore drill of it running.
 * @param {BackupView} backup
 */
function going(backup) {
  return backup.status === BackupStatus.Processing || backup.verification?.status === VerificationStatus.Running;
}

/**
 * Load (or reload) the list; `keepPages` keeps as many pages as are shown. While any backup shown is being
 * made or verified, the list is read again shortly: the Status column updates by itself.
 * @param {{ keepPages?: boolean }} [options]
 */
async function load({ keepPages = false } = {}) {
  follower.stop();
  const environmentId = state.selectedId;
  if (list.environmentId !== environmentId) {
    list.environmentId = environmentId;
    list.items = [];
    list.pages = 0;
    list.token = null;
    render();
  }
  if (!environmentId) {
    ++list.generation;
    return;
  }
  if (!(await refresh(keepPages ? Math.max(1, list.pages) : 1))) return; // another load began meanwhile
  if (!list.items.some(going)) return;
  follower.start({
    initial: list.items,
    intervalMs: POLL_MS,
    going: (items) => items.some(going),
    read: async (signal) => {
      await refresh(Math.max(1, list.pages), signal);
      return list.items;
    },
  });
}

/**
 * Read the first `pages` pages afresh and show them; a failure is said and the list stays. False when another
 * load began meanwhile (another environment chosen), whose answer counts instead.
 * @param {number} pages
 * @param {AbortSignal} [signal]
 */
async function refresh(pages, signal) {
  const environmentId = list.environmentId;
  const generation = ++list.generation;
  table.setAttribute("aria-busy", "true");
  try {
    /** @type {{ items: BackupView[], token: string | null, pages: number }} */
    const result = await firstPages(route`environments/${environmentId}/backups`, PAGE_SIZE, pages, signal);
    if (generation !== list.generation) return false;
    const wasProcessing = new Set(list.items.filter((item) => item.status === BackupStatus.Processing).map((item) => item.id));
    Object.assign(list, result);
    render();
    const ended = result.items.filter((item) => wasProcessing.has(item.id) && item.status !== BackupStatus.Processing);
    if (ended.length) changed(environmentId, "activity");
    announceRequested();
  } catch (error) {
    if (generation === list.generation && !isAbort(error)) say(message, describeError(error), "error");
  } finally {
    if (generation === list.generation) table.removeAttribute("aria-busy");
  }
  return generation === list.generation;
}

async function loadMore() {
  const environmentId = list.environmentId;
  const generation = list.generation;
  moreButton.disabled = true;
  try {
    /** @type {Answer<Page<BackupView>>} */
    const { data } = await api(route`environments/${environmentId}/backups`, { query: { limit: PAGE_SIZE, continuationToken: list.token } });
    if (generation !== list.generation) return;
    const known = new Set(list.items.map((item) => item.id));
    list.items.push(...data.items.filter((item) => !known.has(item.id)));
    list.token = data.continuationToken ?? null;
    list.pages += 1;
    render();
  } catch (error) {
    say(message, describeError(error), "error");
  } finally {
    moreButton.disabled = false;
  }
}

/** Say how the backup asked for on this page ended, once it has. */
function announceRequested() {
  const backup = requested && backupById(requested.id);
  if (!requested || !backup || backup.status === BackupStatus.Processing) return;
  const name = requested.environmentName;
  requested = null;
  if (backup.status === BackupStatus.Finished) say(message, `The backup of ${name} is Finished (${formatCount(backup.fileCount, "file document", "file documents")}).`, "success");
  else if (backup.status === BackupStatus.Cancelled) say(message, `The backup of ${name} was cancelled: ${backup.statusMessage}`, "info");
  else say(message, `The backup of ${name} Failed: ${backup.statusMessage || "no reason was given"}`, "error");
}

/**
 * @param {string} id
 * @returns {MenuItem[]}
 */
function menuItems(id) {
  const backup = backupById(id);
  if (!backup) return [];
  const processing = backup.status === BackupStatus.Processing;
  const finished = backup.status === BackupStatus.Finished;
  const notFinished = processing ? "it is still being made" : `it ${backup.status.toLowerCase()}`;
  const namespace = selectedEnvironment()?.namespace ?? "";
  let restoreRefusal = finished ? "" : notFinished;
  if (finished && !holds(namespace, Permission.ManageAppsBackups, Permission.StopApps)) {
    restoreRefusal = `restoring needs the Manage Apps Backups and Stop Apps permissions in namespace ${namespace}`;
  }
  let deleteRefusal = "";
  if (processing) deleteRefusal = "it is still being made";
  else if (backup.inUseBy?.length) deleteRefusal = "a restore or download is using it";
  let cancelRefusal = "";
  if (!processing) cancelRefusal = "only a backup being made can be cancelled";
  else if (!backup.cancellable) cancelRefusal = "it is being cancelled, or finishing, already";
  return [
    { label: "Details", onSelect: (opener) => showDetails(backup, opener) },
    ...(processing ? [{ label: "Cancel", onSelect: () => cancelBackup(backup), disabledReason: cancelRefusal }] : []),
    { label: "Restore", onSelect: (opener) => startRestore(backup, opener), disabledReason: restoreRefusal },
    { label: "Download", onSelect: (opener) => showDownload(backup, opener), disabledReason: finished ? "" : notFinished },
    {
      label: "Verify",
      onSelect: () => verifyBackup(backup, message),
      disabledReason: !finished ? notFinished : backup.verification?.status === VerificationStatus.Running ? "a restore drill of it is running" : "",
    },
    { label: "Pin", onSelect: (opener) => showPin(backup, opener), disabledReason: finished ? "" : notFinished },
    { label: "Delete", onSelect: (opener) => confirmDelete(backup, opener), disabledReason: deleteRefusal },
  ];
}

/** @param {BackupView} backup */
function statusCell(backup) {
  let note = "";
  if (backup.status === BackupStatus.Processing) note = [filesText(backup.fileProgress), backup.progress || "queued"].filter(Boolean).join(" · ");
  else if (backup.status === BackupStatus.Failed || backup.status === BackupStatus.Cancelled) note = backup.statusMessage;
  const badge = backup.stalledSince ? statusBadge("stalled", "Processing (stalled)") : statusBadge(backup.status);
  const warnings = backup.warnings?.length ? statusBadge("warning", "Warnings") : null;
  if (backup.warnings?.length) note = backup.warnings.join(" ");
  return [badge, warnings, verificationBadge(backup.verification), note ? h("span", { class: "cell-note" }, note) : null];
}

/** @param {BackupView} backup */
function expiryCell(backup) {
  if (backup.keepUntil) return [time(backup.retainedUntil), h("span", { class: "cell-note" }, "pinned")];
  return [time(backup.expiresOn)];
}

/** @param {BackupView} backup */
function filesCell(backup) {
  if (backup.fileCount === null || backup.fileCount === undefined) return "–";
  return `${formatCount(backup.fileCount, "file", "files")}, ${formatBytes(backup.filesSize)}`;
}

/**
 * @param {HTMLTableRowElement} row
 * @param {BackupView} backup
 */
function updateRow(row, backup) {
  const [created, status, tier, comment, packageCell, dump, files, expires] = row.cells;
  fill(created, time(backup.createdOn));
  fill(status, ...statusCell(backup));
  fill(tier, tierLabel(backup.tier));
  fill(comment, backup.comment || h("span", { class: "muted" }, "–"));
  fill(packageCell, backup.deploymentPackage ?? "–");
  fill(dump, formatBytes(backup.dumpSize));
  fill(files, filesCell(backup));
  fill(expires, ...expiryCell(backup));
  row.dataset.status = backup.status;
}

/** @param {BackupView} backup */
function newRow(backup) {
  const menu = menuButton(`More Options for the backup of ${formatDateTime(backup.createdOn)}`, () => menuItems(backup.id));
  const row = h(
    "tr",
    { dataset: { id: backup.id } },
    h("th", { scope: "row" }),
    h("td", { class: "status-cell" }),
    h("td", {}),
    h("td", { class: "comment-cell" }),
    h("td", { class: "package-cell" }),
    h("td", { class: "number" }),
    h("td", {}),
    h("td", {}),
    h("td", { class: "actions-cell" }, menu.element),
  );
  return row;
}

function render() {
  const environment = selectedEnvironment();
  fill(caption, environment ? `Backups of ${environment.displayName}` : "Backups");
  const wanted = new Set(list.items.map((item) => item.id));
  let focusLostAt = -1; // a row that had the focus went away (deleted): give it to its neighbour
  for (const [id, row] of rows) {
    if (!wanted.has(id)) {
      if (document.activeElement && row.contains(document.activeElement)) focusLostAt = row.sectionRowIndex;
      row.remove();
      rows.delete(id);
    }
  }
  list.items.forEach((backup, index) => {
    let row = rows.get(backup.id);
    if (!row) {
      row = newRow(backup);
      rows.set(backup.id, row);
    }
    updateRow(row, backup);
    // Move a row only when it is out of place, so a focused menu button keeps its focus.
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] ?? null);
  });
  if (focusLostAt >= 0) {
    const neighbour = body.rows[Math.min(focusLostAt, body.rows.length - 1)];
    const menu = neighbour?.querySelector(".menu-button");
    (menu instanceof HTMLElement ? menu : byId("backups-heading")).focus();
  }
  empty.hidden = list.items.length > 0 || !environment;
  if (environment) fill(empty, `No backups of ${environment.displayName} yet: create one, or upload an archive.`);
  moreButton.hidden = !list.token;
}

function renderEligibility() {
  const environment = selectedEnvironment();
  const refusal = backupRefusal(environment);
  createButton.setAttribute("aria-disabled", String(Boolean(refusal) || !environment));
  fill(refusalText, refusal);
  refusalText.hidden = !refusal;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const environment = selectedEnvironment();
  if (!environment) return;
  const refusal = backupRefusal(environment);
  if (refusal) {
    say(message, refusal, "error");
    return;
  }
  createButton.setAttribute("aria-disabled", "true");
  say(message, `Requesting a backup of ${environment.displayName}…`, "info");
  try {
    /** @type {Answer<BackupView>} */
    const { data } = await api(route`environments/${environment.id}/backups`, { method: "POST", body: { comment: commentInput.value.trim() } });
    commentInput.value = "";
    requested = { id: data.id, environmentName: environment.displayName };
    say(message, `Backup of ${environment.displayName} requested: it is ${data.status}.`, "info");
    changed(environment.id, "backups", "activity");
  } catch (error) {
    say(message, describeError(error), "error");
  } finally {
    renderEligibility();
  }
});

moreButton.addEventListener("click", loadMore);

on("selected", () => {
  say(message, "");
  renderEligibility();
  load();
});
on("environments", () => {
  renderEligibility();
  const environment = selectedEnvironment();
  fill(caption, environment ? `Backups of ${environment.displayName}` : "Backups");
});
on("changed", ({ environmentId, what }) => {
  if (environmentId === state.selectedId && what.has("backups")) load({ keepPages: true });
});
on("notice", ({ text, kind }) => say(message, text, kind));
