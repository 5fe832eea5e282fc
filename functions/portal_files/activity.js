// @ts-check
// The selected environment's activity log: who did what, when, FINISHED or FAILED, and why.

import { api, describeError, firstPages, route } from "./api.js";
import { byId, fill, h, say } from "./dom.js";
import { actionLabel, statusBadge, time } from "./format.js";
import { on, selectedEnvironment, state } from "./state.js";
import { Outcome } from "./statuses.js";

/** @import { Answer } from "./api.js" */
/** @import { ActivityEntryView, Page } from "./types/schemas" */

const PAGE_SIZE = 15;

const table = byId("activity-table", HTMLTableElement);
const body = table.tBodies[0];
const caption = byId("activity-caption");
const empty = byId("activity-empty");
const moreButton = byId("more-activity", HTMLButtonElement);
const message = byId("activity-message");

/** @type {{ environmentId: string, items: ActivityEntryView[], token: string | null, pages: number, generation: number }} */
const log = { environmentId: "", items: [], token: null, pages: 0, generation: 0 };

/** @param {ActivityEntryView} entry */
function renderRow(entry) {
  return h(
    "tr",
    {},
    h("td", {}, time(entry.occurredOn, { long: true })),
    h("td", {}, actionLabel(entry.action)),
    h("td", {}, statusBadge(entry.outcome === Outcome.FINISHED ? "finished" : "failed", entry.outcome)),
    h("td", { class: "nowrap" }, entry.actorName),
    h("td", { class: "message-cell" }, entry.message),
  );
}

function render() {
  const environment = selectedEnvironment();
  fill(caption, environment ? `Activity of ${environment.displayName}` : "Activity");
  fill(body, log.items.map(renderRow));
  empty.hidden = log.items.length > 0 || !environment;
  moreButton.hidden = !log.token;
}

/** @param {{ keepPages?: boolean }} [options] */
async function load({ keepPages = false } = {}) {
  const environmentId = state.selectedId;
  const generation = ++log.generation;
  if (log.environmentId !== environmentId) {
    Object.assign(log, { environmentId, items: [], token: null, pages: 0 });
    render();
  }
  if (!environmentId) return;
  table.setAttribute("aria-busy", "true");
  try {
    const pages = keepPages ? Math.max(1, log.pages) : 1;
    /** @type {{ items: ActivityEntryView[], token: string | null, pages: number }} */
    const result = await firstPages(route`environments/${environmentId}/activity`, PAGE_SIZE, pages);
    if (generation !== log.generation) return;
    Object.assign(log, result);
    say(message, "");
    render();
  } catch (error) {
    if (generation === log.generation) say(message, describeError(error), "error");
  } finally {
    if (generation === log.generation) table.removeAttribute("aria-busy");
  }
}

moreButton.addEventListener("click", async () => {
  const { environmentId, generation } = log;
  moreButton.disabled = true;
  try {
    /** @type {Answer<Page<ActivityEntryView>>} */
    const { data } = await api(route`environments/${environmentId}/activity`, { query: { limit: PAGE_SIZE, continuationToken: log.token } });
    if (generation !== log.generation) return;
    log.items.push(...data.items);
    log.token = data.continuationToken ?? null;
    log.pages += 1;
    render();
  } catch (error) {
    say(message, describeError(error), "error");
  } finally {
    moreButton.disabled = false;
  }
});

on("selected", () => load());
on("changed", ({ environmentId, what }) => {
  if (environmentId === state.selectedId && what.has("activity")) load({ keepPages: true });
});
