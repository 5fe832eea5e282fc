// @ts-check
// The Backups page: who is signed in, the optional function key, and the first load. The parts of the page
// (environments, backups, activity, restore, restore to a point in time, transfers, webhooks) wire themselves
// up when imported.

import { api, describeError, functionKey, setFunctionKey } from "./api.js";
import "./activity.js";
import "./backups.js";
import "./nights.js";
import "./point-in-time.js";
import "./webhooks.js";
import { closeDialog, openDialog } from "./dialogs.js";
import { byId, fill, say } from "./dom.js";
import { loadEnvironments } from "./environments.js";
import { changed, setCaller, state } from "./state.js";

/** @import { Answer } from "./api.js" */
/** @import { CallerView } from "./types/schemas" */

const callerText = byId("caller");
const keyButton = byId("key-button");
const keyForm = byId("key-form", HTMLFormElement);
const keyInput = byId("key-input", HTMLInputElement);
const keyMessage = byId("key-message");
const pageMessage = byId("page-message");

function renderKeyButton() {
  fill(keyButton, functionKey() ? "Function key (set)" : "Function key");
}

async function loadCaller() {
  try {
    /** @type {Answer<CallerView>} */
    const { data } = await api("me");
    setCaller(data);
    const role = data.globalAdmin ? "global admin" : `member of ${data.memberships.length} namespace${data.memberships.length === 1 ? "" : "s"}`;
    const provider = data.identityProvider === "development" ? ", development mode" : "";
    fill(callerText, `Signed in as ${data.name} (${role}${provider})`);
  } catch (error) {
    fill(callerText, `Not signed in: ${describeError(error)}`);
  }
}

async function loadAll() {
  say(pageMessage, "");
  await Promise.all([
    loadCaller(),
    loadEnvironments().catch((error) => say(pageMessage, `The environments could not be loaded: ${describeError(error)}`, "error")),
  ]);
}

keyButton.addEventListener("click", () => {
  keyInput.value = functionKey();
  say(keyMessage, "");
  openDialog("key-dialog", { returnFocus: keyButton });
});

keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  setFunctionKey(keyInput.value.trim());
  renderKeyButton();
  closeDialog("key-dialog");
  loadAll();
});

byId("key-forget").addEventListener("click", () => {
  setFunctionKey("");
  keyInput.value = "";
  renderKeyButton();
  closeDialog("key-dialog");
  loadAll();
});

byId("refresh").addEventListener("click", async () => {
  await loadAll();
  if (state.selectedId) changed(state.selectedId, "backups", "activity");
});

renderKeyButton();
loadAll();
