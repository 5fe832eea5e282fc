// @ts-check
// A file to Azure Blob Storage through a SAS URL, the page's one upload: a single Put Blob up to one block,
// above that blocks in parallel (Put Block) and then Put Block List; progress as it goes, abort on a signal.

/** Files up to one block go up in a single Put Blob; bigger ones as blocks. A test may set a smaller size. */
const BLOCK_BYTES = Number(window.APPBACKUPS_UPLOAD_BLOCK_BYTES) || 8 * 1024 * 1024;
const PARALLEL_BLOCKS = 4;

/** @typedef {(bytesSent: number) => void} OnProgress */

/**
 * Storage's own words for a refusal (the <Message> of its XML error), or the HTTP status.
 * @param {XMLHttpRequest} xhr
 */
function storageMessage(xhr) {
  const text = xhr.responseText ?? "";
  const parsed = new DOMParser().parseFromString(text, "application/xml");
  const found = parsed.querySelector("Message")?.textContent?.trim();
  return found ? found.split("\n")[0] : `${xhr.status} ${xhr.statusText}`.trim();
}

/**
 * One request to storage with upload progress; resolves when it is stored (2xx).
 * @param {string} url
 * @param {Blob | string} body
 * @param {Record<string, string>} headers
 * @param {OnProgress | null} onProgress
 * @param {AbortSignal} signal
 * @returns {Promise<XMLHttpRequest>}
 */
function put(url, body, headers, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
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

/**
 * @param {string} url
 * @param {string} extra
 */
function withQuery(url, extra) {
  return `${url}${url.includes("?") ? "&" : "?"}${extra}`;
}

/**
 * PUT the file to the blob's SAS URL; onProgress(bytesSent) as it goes. Rejects with storage's reason, or an
 * AbortError when the signal aborts.
 * @param {File} file
 * @param {string} sasUrl
 * @param {OnProgress} onProgress
 * @param {AbortSignal} signal
 */
export async function uploadBlob(file, sasUrl, onProgress, signal) {
  const type = { "x-ms-blob-content-type": file.type || "application/octet-stream" };
  if (file.size <= BLOCK_BYTES) {
    await put(sasUrl, file, { "x-ms-blob-type": "BlockBlob", ...type }, onProgress, signal);
    return;
  }
  const count = Math.ceil(file.size / BLOCK_BYTES);
  const ids = Array.from({ length: count }, (_, index) => btoa(`block-${String(index).padStart(8, "0")}`));
  /** @type {number[]} */
  const sent = new Array(count).fill(0);
  let next = 0;
  async function worker() {
    while (next < count) {
      const index = next++;
      const chunk = file.slice(index * BLOCK_BYTES, Math.min(file.size, (index + 1) * BLOCK_BYTES));
      const url = withQuery(sasUrl, `comp=block&blockid=${encodeURIComponent(ids[index])}`);
      /** @param {number} loaded */
      const progress = (loaded) => {
        sent[index] = loaded;
        onProgress(sent.reduce((sum, value) => sum + value, 0));
      };
      await put(url, chunk, {}, progress, signal);
      sent[index] = chunk.size;
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL_BLOCKS, count) }, worker));
  const list = `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join("")}</BlockList>`;
  await put(withQuery(sasUrl, "comp=blocklist"), list, { "Content-Type": "application/xml", ...type }, null, signal);
  onProgress(file.size);
}
