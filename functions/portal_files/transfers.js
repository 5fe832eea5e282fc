// Archives in and out: More Options → Download (Start → preparing → Download / Show URL), and Upload Backup
// (the file goes straight to storage through its SAS URL, then becomes a backup item or is refused).

import { api, describeError, pause, route } from "./api.js";
import { openDialog } from "./dialogs.js";
import { byId, fill, h, say } from "./dom.js";
import { formatBytes, formatCount, formatDateTime, percentOf, progressBar, progressText, tierLabel, time } from "./format.js";
import { changed, environmentById, selectedEnvironment } from "./state.js";

const POLL_MS = 1000;

// ---- Download --------------------------------------------------------------------------------------------

const downloadSource = byId("download-source");
const downloadStatus = byId("download-status");
const downloadMessage = byId("download-message");
const startButton = byId("download-start");
const cancelDownloadButton = byId("download-cancel");
const readyBox = byId("download-ready");
const downloadLink = byId("download-link");
const showUrlButton = byId("download-show-url");
const urlBox = byId("download-url-box");
const urlField = byId("download-url");
const copyButton = byId("download-copy");
const copyMessage = byId("download-copy-message");

let downloadBackup = null;
let downloadSignal = null;
let watching = null; // AbortController of the current status poll

function dataType() {
  return document.querySelector('input[name="download-type"]:checked')?.value ?? "files_and_database";
}

function downloadRoute(backup) {
  return route`environments/${backup.environmentId}/backups/${backup.id}/download`;
}

/** The archive's size before it is prepared ({size, estimate}): exact for the database alone, an estimate with the files. */
function expectedSizeText(expected) {
  if (!expected || expected.size === null || expected.size === undefined) return "";
  return expected.estimate ? `The archive will be about ${formatBytes(expected.size)} (an estimate).` : `The archive will be ${formatBytes(expected.size)}.`;
}

function renderDownload(view) {
  readyBox.hidden = true;
  startButton.hidden = false;
  cancelDownloadButton.hidden = !(view?.status === "Processing" && view.cancellable);
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
    case "Processing": {
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
    case "Ready":
      startButton.hidden = true;
      readyBox.hidden = false;
      fill(downloadStatus, h("p", {}, `Ready: ${view.fileName} (${formatBytes(view.size)}). The link works until `, time(view.expiresOn), "."));
      downloadLink.href = view.url;
      downloadLink.setAttribute("download", view.fileName ?? "");
      urlField.value = view.url;
      break;
    case "Expired":
      fill(downloadStatus, h("p", {}, "The archive prepared before has expired. Start prepares a new one."));
      break;
    case "Cancelled":
      fill(startButton, "Start again");
      fill(downloadStatus, h("p", {}, "Preparing the archive was cancelled; nothing was kept. Start prepares a new one."));
      break;
    default:
      fill(startButton, "Start again");
      fill(downloadStatus, h("p", {}, `The archive could not be prepared: ${view.error?.message ?? "no reason was given"}.`));
  }
}

/** Show the download of the chosen kind as it is now, and follow it while it is being prepared. */
async function followDownload(initial) {
  watching?.abort();
  const controller = new AbortController();
  watching = controller;
  downloadSignal.addEventListener("abort", () => controller.abort(), { once: true });
  const signal = controller.signal;
  const backup = downloadBackup;
  const kind = dataType();
  try {
    let view = initial;
    if (view === undefined) {
      try {
        ({ data: view } = await api(downloadRoute(backup), { query: { dataType: kind }, signal }));
      } catch (error) {
        if (error.code !== "download_not_requested") throw error;
        view = null;
      }
    }
    renderDownload(view);
    while (view?.status === "Processing") {
      await pause(POLL_MS, signal);
      ({ data: view } = await api(downloadRoute(backup), { query: { dataType: kind }, signal }));
      renderDownload(view);
    }
    if (view?.status === "Ready" && initial?.status === "Processing") changed(backup.environmentId, "activity", "backups");
  } catch (error) {
    if (error.name !== "AbortError") say(downloadMessage, describeError(error), "error");
  }
}

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
  cancelDownloadButton.disabled = true;
  try {
    await api(`${downloadRoute(downloadBackup)}/cancel`, { method: "POST", query: { dataType: dataType() } });
    changed(downloadBackup.environmentId, "backups", "activity");
  } catch (error) {
    say(downloadMessage, describeError(error), "error");
  }
});

startButton.addEventListener("click", async () => {
  say(downloadMessage, "");
  startButton.hidden = true;
  fill(downloadStatus, "Requesting the archive…");
  try {
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

const uploadForm = byId("upload-form");
const uploadTarget = byId("upload-target");
const fileInput = byId("upload-file");
const uploadProgress = byId("upload-progress");
const uploadStatus = byId("upload-status");
const uploadButton = byId("upload-start");
const cancelButton = byId("upload-cancel");

/** Files up to one block go up in a single Put Blob; bigger ones as blocks (Put Block + Put Block List). */
const BLOCK_BYTES = Number(window.APPBACKUPS_UPLOAD_BLOCK_BYTES) || 8 * 1024 * 1024;
const PARALLEL_BLOCKS = 4;

let uploading = null; // AbortController of the upload in progress
let uploadEnvironmentId = "";

function storageMessage(xhr) {
  const text = xhr.responseText ?? "";
  const parsed = new DOMParser().parseFromString(text, "application/xml");
  const found = parsed.querySelector("Message")?.textContent?.trim();
  return found ? found.split("\n")[0] : `${xhr.status} ${xhr.statusText}`.trim();
}

/** One request to storage with upload progress; resolves when it is stored (2xx). */
function sendToStorage(method, url, body, headers, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => onProgress?.(event.loaded));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr);
      else reject(new Error(`Storage refused the upload: ${storageMessage(xhr)}`));
    });
    xhr.addEventListener("error", () =>
      reject(new Error("Storage could not be reached for the upload (the network failed, or the storage account's CORS rules do not allow this page).")),
    );
    xhr.addEventListener("abort", () => reject(new DOMException("The upload was cancelled.", "AbortError")));
    signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

function withQuery(url, extra) {
  return `${url}${url.includes("?") ? "&" : "?"}${extra}`;
}

/** PUT the file to the SAS URL; onProgress(bytesSent) as it goes. */
async function putFile(file, uploadUrl, onProgress, signal) {
  const type = { "x-ms-blob-content-type": file.type || "application/octet-stream" };
  if (file.size <= BLOCK_BYTES) {
    await sendToStorage("PUT", uploadUrl, file, { "x-ms-blob-type": "BlockBlob", ...type }, onProgress, signal);
    return;
  }
  const count = Math.ceil(file.size / BLOCK_BYTES);
  const ids = Array.from({ length: count }, (_, index) => btoa(`block-${String(index).padStart(8, "0")}`));
  const sent = new Array(count).fill(0);
  let next = 0;
  async function worker() {
    while (next < count) {
      const index = next++;
      const chunk = file.slice(index * BLOCK_BYTES, Math.min(file.size, (index + 1) * BLOCK_BYTES));
      const url = withQuery(uploadUrl, `comp=block&blockid=${encodeURIComponent(ids[index])}`);
      await sendToStorage("PUT", url, chunk, {}, (loaded) => {
        sent[index] = loaded;
        onProgress(sent.reduce((sum, value) => sum + value, 0));
      }, signal);
      sent[index] = chunk.size;
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL_BLOCKS, count) }, worker));
  const list = `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join("")}</BlockList>`;
  await sendToStorage("PUT", withQuery(uploadUrl, "comp=blocklist"), list, { "Content-Type": "application/xml", ...type }, null, signal);
  onProgress(file.size);
}

function setUploading(active) {
  uploadButton.hidden = active;
  cancelButton.hidden = !active;
  fileInput.disabled = active;
}

function showUploadProgress(percent) {
  uploadProgress.hidden = false;
  if (percent === null) uploadProgress.removeAttribute("value");
  else uploadProgress.value = Math.round(percent);
}

async function upload(file, environmentId, signal) {
  const environment = environmentById(environmentId);
  say(uploadStatus, "Asking for an upload URL…", "info");
  const { data: started } = await api(route`environments/${environmentId}/uploads`, {
    method: "POST",
    body: { fileName: file.name },
    signal,
  });
  showUploadProgress(0);
  await putFile(
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
  const { data: accepted, headers } = await api(started.completeUrl, { method: "POST", signal });
  changed(environmentId, "backups", "activity");
  const location = headers.get("Location") ?? route`environments/${environmentId}/backups/${accepted.backupId}`;
  let backup = accepted.backup;
  showUploadProgress(null);
  while (backup.status === "Processing") {
    say(uploadStatus, `Checking the archive and adding it as a backup of ${environment?.displayName ?? environmentId}… ${backup.progress || ""}`.trim(), "info");
    await pause(POLL_MS, signal);
    ({ data: backup } = await api(location, { signal }));
  }
  changed(environmentId, "backups", "activity");
  uploadProgress.hidden = true;
  if (backup.status === "Finished") {
    say(
      uploadStatus,
      `Added: a new uploaded backup of ${environment?.displayName ?? environmentId} (${formatBytes(backup.dumpSize)} database dump, ${formatCount(backup.fileCount, "file document", "file documents")}), made on ${formatDateTime(backup.createdOn)}. It is in the list and can be restored like any other.`,
      "success",
    );
  } else {
    say(uploadStatus, `The archive was refused: ${backup.statusMessage || "no reason was given"}`, "error");
  }
}

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
    say(uploadStatus, error.name === "AbortError" ? "The upload was cancelled." : describeError(error), "error");
  } finally {
    uploading = null;
    setUploading(false);
  }
});

cancelButton.addEventListener("click", () => uploading?.abort());
byId("upload-button").addEventListener("click", (event) => showUpload(event.currentTarget));
