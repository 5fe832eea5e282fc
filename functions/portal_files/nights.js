// @ts-check
// A night of scheduled backups (tonight's, or a chosen one): per environment you can see, not due, waiting,
// running, done or failed, with the counts; it looks again while anything waits or runs.

import { api, describeError, route } from "./api.js";
import { byId, fill, h, say } from "./dom.js";
import { statusBadge } from "./format.js";
import { on } from "./state.js";

/** @import { Answer } from "./api.js" */
/** @import { EnvironmentNightView, NightView } from "./types/schemas" */

const LOOK_AGAIN_MS = 10000;
const BADGE = { done: "finished", failed: "failed", running: "running", waiting: "processing", notDue: "cancelled" };
const WORD = { done: "done", failed: "failed", running: "running", waiting: "waiting", notDue: "not due" };

const picker = byId("night-date", HTMLInputElement);
const table = byId("nights-table", HTMLTableElement);
const body = table.tBodies[0];
const counts = byId("nights-counts");
const message = byId("nights-message");

/** @type {{ generation: number, timer: number | undefined }} */
const view = { generation: 0, timer: undefined };

/** @param {EnvironmentNightView} entry */
function renderRow(entry) {
  return h(
    "tr",
    {},
    h("td", { class: "nowrap" }, entry.environmentId),
    h("td", { class: "nowrap" }, entry.namespace),
    h("td", {}, statusBadge(BADGE[entry.state], WORD[entry.state])),
    h("td", { class: "nowrap" }, entry.snapshotId ?? "-"),
    h("td", { class: "message-cell" }, entry.detail ?? ""),
  );
}

/** @param {NightView} night */
function render(night) {
  const c = night.counts;
  fill(counts, `${c.done} done, ${c.failed} failed, ${c.running} running, ${c.waiting} waiting, ${c.notDue} not due (${c.total} environments)`);
  fill(body, night.environments.map(renderRow));
}

async function load() {
  const generation = ++view.generation;
  window.clearTimeout(view.timer);
  const night = picker.value || new Date().toISOString().slice(0, 10);
  table.setAttribute("aria-busy", "true");
  try {
    /** @type {Answer<NightView>} */
    const { data } = await api(route`schedules/nights/${night}`);
    if (generation !== view.generation) return;
    say(message, "");
    render(data);
    if (data.counts.waiting + data.counts.running > 0) view.timer = window.setTimeout(load, LOOK_AGAIN_MS);
  } catch (error) {
    if (generation === view.generation) say(message, describeError(error), "error");
  } finally {
    if (generation === view.generation) table.removeAttribute("aria-busy");
  }
}

picker.value = new Date().toISOString().slice(0, 10);
picker.addEventListener("change", () => load());
on("environments", () => load()); // once the caller's environments are known (signed in), and when they change
on("changed", ({ what }) => {
  if (what.has("backups")) load();
});
