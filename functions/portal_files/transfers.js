// @ts-check
// Archives in and out: More Options → Download (Start → preparing → Download / Show URL), and Upload Backup
// (the file goes straight to storage through its SAS URL, then becomes a backup item or is refused).

import { ApiError, api, describeError, route } from "./api.js";
import { uploadBlob } from "./blob-upload.js";
import { openDialog } from "./dialogs.js";
import { byId, fill, h, say } from "./dom.js";
import { formatBytes, formatCount, formatDateTime, percentOf, progressBar, progressText, tierLabel, time } from "./format.js";
import { isAbort, poll } from "./poller.js";
import { changed, environmentById, selectedEnvironment } from "./state.js";
import { BackupStatus, DownloadStatus } from "./statuses.js";

/** @import { Answer } from "./api.js" */
/** @import { BackupView, DataType, DownloadView, UploadAccepted, UploadStarted } from "./types/schemas" */

const POLL_MS = 1000;

// ---- Download --------------------------------------------------------------------------------------------

const downloadSource = byId("download-source");
const downloadStatus = byId("download-status");
const downloadMessage = byId("download-message");
const startButton = byId("download-start", HTMLButtonElement);
const cancelDownloadButton = byId("download-cancel", HTMLButtonElement);
const readyBox = byId("download-ready");
const downloadLink = byId("download-link", HTMLAnchorElement);
const showUrlButton = byId("download-show-url", HTMLButtonElement);
const urlBox = byId("download-url-box");
const urlField = byId("download-url", HTMLInputElement);
const copyButton = byId("download-copy", HTMLButtonElement);
const copyMessage = byId("download-copy-message");

/** @type {BackupView | null} */
let downloadBackup = null;
/** @type {AbortSignal | null} */
let downloadSignal = null;
/** @type {AbortController | null} */
let watching = null; // of the current status poll

/** @returns {DataType} */
function dataType() {
  const checked = document.querySelector('input[name="download-type"]:checked');
  return /** @type {DataType} */ ((checked instanceof HTMLInputElement && checked.value) || "files_and_database");
}

/** @param {BackupView} backup */
function downloadRoute(backup) {
  return route`environments/${backup.environmentId}/backups/${backup.id}/download`;
}

/**
 * The archive's size before it is prepared ({size, estimate}): exact for the database alone, an estimate with the files.
 * @param {{ size: number | null, estimate: boolean } | null | undefined} expected
 */
function expectedSizeText(expected) {
  if (!expected || expected.size === null || expected.size === undefined) return "";
  return expected.estimate ? `The archive will be about ${formatBytes(expected.size)} (an estimate).` : `The archive will be ${formatBytes(expected.size)}.`;
}

/** @param {DownloadView | null} view */
function renderDownload(view) {
  readyBox.hidden = true;
  startButton.hidden = false;
  cancelDownloadButton.hidden = !(view?.status === DownloadStatus.Processing && view.cancellable);
  cancelDownloadButton.disabled = false;
  fill(startButton, "Start");
  if (!view) {
    fill(
      downloadStatus,
      h("p", {}, "No download of this kind has been prepared yet. Start prepares the archive; its link then works for 8 hours."),
      h("p", { class: "cell-note" }, expectedSizeText(downloadBackup?.downloadSizes?.[dataType()])),
    );
    return;
  }
  switch (view.status) {
    case DownloadStatus.Processing: {
      startButton.hidden = true;
      const percent = percentOf(view.progress);
      fill(
        downloadStatus,
        h("span", {}, "Preparing the archive…"),
        progressBar(percent, "Preparing the archive"),
        h("span", { class: "cell-note" }, progressText(view.progress)),
        h("span", { class: "cell-note" }, expectedSizeText({ size: view.expectedSize, estimate: view.expectedSizeIsEstimate })),
      );
      break;
    }
    case DownloadStatus.Ready:
      startButton.hidden = true;
      readyBox.hidden = false;
      fill(downloadStatus, h("p", {}, `Ready: ${view.fileName} (${formatBytes(view.size)}). The link works until `, time(view.expiresOn), "."));
      downloadLink.href = view.url ?? "";
      downloadLink.setAttribute("download", view.fileName ?? "");
      urlField.value = view.url ?? "";
      break;
    case DownloadStatus.Expired:
      fill(downloadStatus, h("p", {}, "The archive prepared before has expired. Start prepares a new one."));
      break;
    case DownloadStatus.Cancelled:
      fill(startButton, "Start again");
      fill(downloadStatus, h("p", {}, "Preparing the archive was cancelled; nothing was kept. Start prepares a new one."));
      break;
    default:
      fill(startButton, "Start again");
      fill(downloadStatus, h("p", {}, `The archive could not be prepared: ${view.error?.message ?? "no reason was given"}.`));
  }
}

/**
 * The download of this kind as it is now.
 * @param {BackupView} backup
 * @param {DataType} kind
 * @param {AbortSignal} [signal]
 * @returns {Promise<DownloadView>}
 */
async function readDownload(backup, kind, signal) {
  /** @type {Answer<DownloadView>} */
  const { data } = await api(downloadRoute(backup), { query: { dataType: kind }, signal });
  return data;
}

/**
 * Show the download of the chosen kind as it is now, and follow it while it is being prepared. `initial` is
 * the download as a POST answered it; without it, it is read (null: none was requested).
 * @param {DownloadView} [initial]
 */
async function followDownload(initial) {
  watching?.abort();
  const controller = new AbortController();
  watching = controller;
  downloadSignal?.addEventListener("abort", () => controller.abort(), { once: true });
  const signal = controller.signal;
  const backup = downloadBackup;
  if (!backup) return;
  const kind = dataType();
  try {
    /** @type {DownloadView | null} */
    let view = initial ?? null;
    if (initial === undefined) {
      try {
        view = await readDownload(backup, kind, signal);
      } catch (error) {
        if (!(error instanceof ApiError && error.code === "download_not_requested")) throw error;
      }
    }
    const last = await poll({
      initial: view,
      read: (signal) => readDownload(backup, kind, signal),
      show: renderDownload,
      going: (current) => current?.status === DownloadStatus.Processing,
      intervalMs: POLL_MS,
      signal,
    });
    if (last?.status === DownloadStatus.Ready && initial?.status === DownloadStatus.Processing) changed(backup.environmentId, "activity", "backups");
  } catch (error) {
    if (!isAbort(error)) say(downloadMessage, describeError(error), "error");
  }
}

/**
 * @param {BackupView} backup
 * @param {HTMLElement} opener
 */
export function showDownload(backup, opener) {
  downloadBackup = backup;
  const environment = environmentById(backup.environmentId);
  fill(downloadSource, `The ${tierLabel(backup.tier).toLowerCase()} backup of ${environment?.displayName ?? backup.environmentId} made on `, time(backup.createdOn), ".");
  say(downloadMessage, "");
  say(copyMessage, "");
  urlBox.hidden = true;
  showUrlButton.setAttribute("aria-expanded", "false");
  fill(showUrlButton, "Show URL");
  fill(downloadStatus, "Looking for a prepared archive…");
  readyBox.hidden = true;
  startButton.hidden = true;
  downloadSignal = openDialog("download-dialog", { returnFocus: opener });
  followDownload();
}

for (const radio of document.querySelectorAll('input[name="download-type"]')) {
  radio.addEventListener("change", () => {
    say(downloadMessage, "");
    urlBox.hidden = true;
    showUrlButton.setAttribute("aria-expanded", "false");
    fill(showUrlButton, "Show URL");
    followDownload();
  });
}

cancelDownloadButton.addEventListener("click", async () => {
  if (!downloadBackup) return;
  cancelDownloadButton.disabled = true;
  try {
    await api(`${downloadRoute(downloadBackup)}/cancel`, { method: "POST", query: { dataType: dataType() } });
    changed(downloadBackup.environmentId, "backups", "activity");
  } catch (error) {
    say(downloadMessage, describeError(error), "error");
  }
});

startButton.addEventListener("click", async () => {
  if (!downloadBackup) return;
  say(downloadMessage, "");
  startButton.hidden = true;
  fill(downloadStatus, "Requesting the archive…");
  try {
    /** @type {Answer<DownloadView>} */
    const { data } = await api(downloadRoute(downloadBackup), { method: "POST", body: { dataType: dataType() } });
    changed(downloadBackup.environmentId, "backups");
    followDownload(data);
  } catch (error) {
    startButton.hidden = false;
    say(downloadMessage, describeError(error), "error");
  }
});

showUrlButton.addEventListener("click", () => {
  const show = urlBox.hidden;
  urlBox.hidden = !show;
  showUrlButton.setAttribute("aria-expanded", String(show));
  fill(showUrlButton, show ? "Hide URL" : "Show URL");
  if (show) {
    urlField.focus();
    urlField.select();
  }
});

copyButton.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(urlField.value);
  } catch {
    urlField.select();
    document.execCommand("copy");
  }
  say(copyMessage, "The link was copied.", "success");
});

// ---- Upload ----------------------------------------------------------------------------------------------

const uploadForm = byId("upload-form", HTMLFormElement);
const uploadTarget = byId("upload-target");
const fileInput = byId("upload-file", HTMLInputElement);
const uploadProgress = byId("upload-progress", HTMLProgressElement);
const uploadStatus = byId("upload-status");
const uploadButton = byId("upload-start", HTMLButtonElement);
const cancelButton = byId("upload-cancel", HTMLButtonElement);

/** @type {AbortController | null} */
let uploading = null; // of the upload in progress
let uploadEnvironmentId = "";

/** @param {boolean} active */
function setUploading(active) {
  uploadButton.hidden = active;
  cancelButton.hidden = !active;
  fileInput.disabled = active;
}

/** @param {number | null} percent */
function showUploadProgress(percent) {
  uploadProgress.hidden = false;
  if (percent === null) uploadProgress.removeAttribute("value");
  else uploadProgress.value = Math.round(percent);
}

/**
 * The backup an upload became, as it is now.
 * @param {string} location
 * @param {AbortSignal} [signal]
 * @returns {Promise<BackupView>}
 */
async function readBackup(location, signal) {
  /** @type {Answer<BackupView>} */
  const { data } = await api(location, { signal });
  return data;
}

/**
 * @param {File} file
 * @param {string} environmentId
 * @param {AbortSignal} signal
 */
async function upload(file, environmentId, signal) {
  const environment = environmentById(environmentId);
  say(uploadStatus, "Asking for an upload URL…", "info");
  /** @type {Answer<UploadStarted>} */
  const { data: started } = await api(route`environments/${environmentId}/uploads`, {
    method: "POST",
    body: { fileName: file.name },
    signal,
  });
  showUploadProgress(0);
  await uploadBlob(
    file,
    started.uploadUrl,
    (bytes) => {
      const percent = file.size ? (100 * bytes) / file.size : 100;
      showUploadProgress(percent);
      say(uploadStatus, `Uploading ${file.name}: ${formatBytes(bytes)} of ${formatBytes(file.size)} (${Math.round(percent)}%).`, "info");
    },
    signal,
  );
  showUploadProgress(100);
  say(uploadStatus, "Uploaded. Asking the service to check the archive…", "info");
  /** @type {Answer<UploadAccepted>} */
  const { data: accepted, headers } = await api(started.completeUrl, { method: "POST", signal });
  changed(environmentId, "backups", "activity");
  const location = headers.get("Location") ?? route`environments/${environmentId}/backups/${accepted.backupId}`;
  showUploadProgress(null);
  const backup = await poll({
    initial: accepted.backup,
    read: (signal) => readBackup(location, signal),
    show: (current) => {
      if (current.status !== BackupStatus.Processing) return;
      say(uploadStatus, `Checking the archive and adding it as a backup of ${environment?.displayName ?? environmentId}… ${current.progress || ""}`.trim(), "info");
    },
    going: (current) => current.status === BackupStatus.Processing,
    intervalMs: POLL_MS,
    signal,
  });
  changed(environmentId, "backups", "activity");
  uploadProgress.hidden = true;
  if (backup.status === BackupStatus.Finished) {
    say(
      uploadStatus,
      `Added: a new uploaded backup of ${environment?.displayName ?? environmentId} (${formatBytes(backup.dumpSize)} database dump, ${formatCount(backup.fileCount, "file document", "file documents")}), made on ${formatDateTime(backup.createdOn)}. It is in the list and can be restored like any other.`,
      "success",
    );
  } else {
    say(uploadStatus, `The archive was refused: ${backup.statusMessage || "no reason was given"}`, "error");
  }
}

/** @param {HTMLElement} opener */
function showUpload(opener) {
  const environment = selectedEnvironment();
  if (!environment) return;
  uploadEnvironmentId = environment.id;
  fill(uploadTarget, `The archive becomes a new backup of ${environment.displayName} (${environment.id}).`);
  fileInput.value = "";
  uploadProgress.hidden = true;
  say(uploadStatus, "");
  setUploading(false);
  openDialog("upload-dialog", { returnFocus: opener, onClose: () => uploading?.abort() });
}

uploadForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = fileInput.files?.[0];
  if (!file) {
    say(uploadStatus, "Choose the archive to upload: a Full Snapshot (.tar.gz) or a database dump (.backup).", "error");
    fileInput.focus();
    return;
  }
  uploading = new AbortController();
  setUploading(true);
  try {
    await upload(file, uploadEnvironmentId, uploading.signal);
  } catch (error) {
    uploadProgress.hidden = true;
    say(uploadStatus, isAbort(error) ? "The upload was cancelled." : describeError(error), "error");
  } finally {
    uploading = null;
    setUploading(false);
  }
});

cancelButton.addEventListener("click", () => uploading?.abort());
const uploadOpener = byId("upload-button");
uploadOpener.addEventListener("click", () => showUpload(uploadOpener));
