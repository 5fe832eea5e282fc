// @ts-check
// The environment selector, the selected environment's summary, Stop / Start Application, Restore to a point
// in time (environments with pointInTime; point-in-time.js) and Deregister (namespace admins). Deregistered
// environments stay in the selector while their backups stay.

import { allPages, api, describeError, route } from "./api.js";
import { confirmAction } from "./dialogs.js";
import { byId, fill, h, say } from "./dom.js";
import { BACKUP_STATES, backupRefusal, environmentName, statusBadge, time } from "./format.js";
import { Poller } from "./poller.js";
import { changed, emit, environmentById, holds, on, select, selectedEnvironment, setEnvironments, state, updateEnvironment } from "./state.js";
import { EnvironmentState, Permission } from "./statuses.js";

/** @import { Answer } from "./api.js" */
/** @import { EnvironmentView } from "./types/schemas" */

const selector = byId("environment", HTMLSelectElement);
const summary = byId("environment-summary");
const message = byId("environment-message");
const WATCH_INTERVAL_MS = 2000;
/** @type {ReadonlySet<EnvironmentView["state"]>} */
const RUN_STATES = new Set([EnvironmentState.Running, EnvironmentState.Stopped]);
const watcher = new Poller();
let watchedId = "";

/** @param {EnvironmentView} environment */
function optionText(environment) {
  const base = `${environmentName(environment)} — ${environment.state}`;
  return BACKUP_STATES.has(environment.state) ? base : `${base}, cannot be backed up`;
}

function renderSelector() {
  const namespaces = [...new Set(state.environments.map((environment) => environment.namespace))].sort();
  fill(
    selector,
    state.environments.length ? null : h("option", { value: "" }, "No environments you may see"),
    namespaces.map((namespace) =>
      h(
        "optgroup",
        { label: `Namespace ${namespace}` },
        state.environments
          .filter((environment) => environment.namespace === namespace)
          .map((environment) => h("option", { value: environment.id, selected: environment.id === state.selectedId }, optionText(environment))),
      ),
    ),
  );
  selector.value = state.selectedId;
  selector.disabled = state.environments.length === 0;
}

/**
 * @param {string} name
 * @param {...import("./dom.js").Child} value
 */
function term(name, ...value) {
  return h("div", { class: "summary-item" }, h("dt", {}, name), h("dd", {}, ...value));
}

function renderSummary() {
  const environment = selectedEnvironment();
  if (!environment) {
    fill(summary);
    return;
  }
  const schedule = environment.schedule;
  const refusal = backupRefusal(environment);
  const mayStop = holds(environment.namespace, Permission.StopApps);
  const mayDeregister = holds(environment.namespace, Permission.NamespaceAdmin);
  const mayRestore = holds(environment.namespace, Permission.ManageAppsBackups, Permission.StopApps);
  const deregistered = environment.state === EnvironmentState.Deregistered;
  const focused = document.activeElement && summary.contains(document.activeElement) ? document.activeElement.id : "";
  fill(
    summary,
    h(
      "dl",
      { class: "summary-list" },
      term("State", statusBadge(environment.state)),
      term("Namespace", environment.namespace),
      term("Model version", environment.modelVersion ?? "–"),
      term("Deployment package", environment.deploymentPackage ?? "–"),
      schedule ? term("Next nightly backup", time(schedule.nextRun)) : null,
    ),
    h(
      "div",
      { class: "summary-actions" },
      environment.state === EnvironmentState.Running && mayStop
        ? h("button", { type: "button", class: "secondary", id: "environment-stop", onclick: () => changeRunState(environment.id, "stop") }, "Stop Application")
        : null,
      environment.state === EnvironmentState.Stopped && mayStop
        ? h("button", { type: "button", class: "secondary", id: "environment-start", onclick: () => changeRunState(environment.id, "start") }, "Start Application")
        : null,
      RUN_STATES.has(environment.state) && !mayStop
        ? h("p", { class: "hint", id: "environment-run-state-note" }, `Stopping and starting needs the Stop Apps permission in namespace ${environment.namespace}.`)
        : null,
      environment.pointInTime && !deregistered && mayRestore
        ? h(
            "button",
            {
              type: "button",
              class: "secondary",
              id: "environment-restore-to-time",
              onclick: (/** @type {MouseEvent} */ event) =>
                event.currentTarget instanceof HTMLElement && emit("restore-to-time", { environmentId: environment.id, opener: event.currentTarget }),
            },
            "Restore to a point in time…",
          )
        : null,
      !deregistered && mayDeregister
        ? h("button", { type: "button", class: "secondary danger", id: "environment-deregister", onclick: () => deregister(environment.id) }, "Deregister…")
        : null,
    ),
    deregistered
      ? h(
          "p",
          { class: "banner banner-info", role: "status", id: "environment-deregistered" },
          `${environmentName(environment)} was deregistered on ${time(environment.deregisteredOn)}${environment.deregisteredBy ? ` by ${environment.deregisteredBy}` : ""}. ` +
            "Its backups stay until they expire: download them, or restore them into another environment of the namespace.",
        )
      : null,
    environment.activeRestoreId
      ? h(
          "div",
          { class: "banner banner-info", role: "status" },
          h("span", {}, `A restore into ${environment.displayName} is in progress; the environment is locked until it ends.`),
          h(
            "button",
            { type: "button", class: "link-button", id: "environment-follow-restore", onclick: () => emit("follow-restore", { restoreId: environment.activeRestoreId ?? "" }) },
            "Follow the restore",
          ),
        )
      : null,
    refusal && !environment.activeRestoreId && !deregistered ? h("p", { class: "banner banner-warning" }, refusal) : null,
  );
  // Keep the keyboard where it was: on the same control, or on its successor (Stop ⇄ Start).
  if (focused) (document.getElementById(focused) ?? summary.querySelector("button"))?.focus();
}

/**
 * POST …/stop or …/start; the environment as it is afterwards. Errors are thrown for the caller to show.
 * @param {string} environmentId
 * @param {"stop" | "start"} action
 * @returns {Promise<EnvironmentView>}
 */
export async function setRunState(environmentId, action) {
  /** @type {Answer<EnvironmentView>} */
  const { data } = await api(route`environments/${environmentId}/${action}`, { method: "POST" });
  updateEnvironment(data);
  changed(environmentId, "activity");
  return environmentById(environmentId) ?? data;
}

/**
 * @param {string} environmentId
 * @param {"stop" | "start"} action
 */
async function changeRunState(environmentId, action) {
  const environment = environmentById(environmentId);
  if (!environment) return;
  if (action === "stop") {
    const stop = await confirmAction({
      title: `Stop ${environment.displayName}?`,
      text: `${environmentName(environment)} stops serving its users until it is started again.`,
      confirmLabel: "Stop Application",
    });
    if (!stop) return;
  }
  say(message, action === "stop" ? "Stopping the application…" : "Starting the application…", "info");
  try {
    const changedEnvironment = await setRunState(environmentId, action);
    say(message, `${changedEnvironment.displayName} is ${changedEnvironment.state}.`, "success");
  } catch (error) {
    say(message, describeError(error), "error");
  }
}

/**
 * DELETE the registration (namespace admins): the environment stays listed as Deregistered with its backups.
 * @param {string} environmentId
 */
async function deregister(environmentId) {
  const environment = environmentById(environmentId);
  if (!environment) return;
  const sure = await confirmAction({
    title: `Deregister ${environment.displayName}?`,
    text:
      `${environmentName(environment)} is no longer backed up, scheduled or checked. Its backups stay until they ` +
      "expire (they can be downloaded and restored into another environment of the namespace), and so does its activity log. " +
      "Deregister an environment whose app is gone.",
    confirmLabel: "Deregister",
  });
  if (!sure) return;
  say(message, "Deregistering…", "info");
  try {
    /** @type {Answer<EnvironmentView>} */
    const { data } = await api(route`environments/${environmentId}`, { method: "DELETE" });
    updateEnvironment(data);
    changed(environmentId, "backups", "activity");
    say(message, `${data.displayName} is deregistered; its backups stay until they expire.`, "success");
  } catch (error) {
    say(message, describeError(error), "error");
  }
}

/**
 * GET one environment (with its schedule) and put it in the list.
 * @param {string} environmentId
 * @returns {Promise<EnvironmentView>}
 */
export async function refreshEnvironment(environmentId) {
  /** @type {Answer<EnvironmentView>} */
  const { data } = await api(route`environments/${environmentId}`);
  const before = environmentById(environmentId);
  updateEnvironment(data);
  if (before && (before.state !== data.state || before.activeRestoreId !== data.activeRestoreId)) {
    changed(environmentId, "backups", "activity");
  }
  return data;
}

/**
 * Whether the environment is in a passing state (Restoring, Starting…, or a restore into it runs).
 * @param {EnvironmentView} environment
 */
function passing(environment) {
  return !BACKUP_STATES.has(environment.state) || Boolean(environment.activeRestoreId);
}

/** While the selected environment is in a passing state, look again now and then (errors are said, and it goes on). */
function watchSelected() {
  const environment = selectedEnvironment();
  if (!environment || !passing(environment)) {
    watcher.stop();
    return;
  }
  if (watcher.running && watchedId === environment.id) return;
  watchedId = environment.id;
  watcher.start({
    initial: environment,
    intervalMs: WATCH_INTERVAL_MS,
    going: passing,
    read: async () => {
      try {
        return await refreshEnvironment(environment.id);
      } catch (error) {
        say(message, describeError(error), "error");
        return environment;
      }
    },
  });
}

function selectionFromAddress() {
  const wanted = new URLSearchParams(window.location.hash.slice(1)).get("environment");
  return environmentById(wanted) ? wanted : "";
}

export async function loadEnvironments() {
  say(message, "");
  /** @type {EnvironmentView[]} */
  const environments = await allPages("environments", { deregistered: "true" });
  setEnvironments(environments);
  const initial = selectionFromAddress() || (environmentById(state.selectedId) ? state.selectedId : environments[0]?.id ?? "");
  select(initial);
  if (initial) refreshEnvironment(initial).catch((error) => say(message, describeError(error), "error"));
}

selector.addEventListener("change", () => {
  select(selector.value);
  say(message, "");
  const address = new URL(window.location.href);
  address.hash = new URLSearchParams({ environment: selector.value }).toString();
  window.history.replaceState(null, "", address);
  refreshEnvironment(selector.value).catch((error) => say(message, describeError(error), "error"));
});

window.addEventListener("hashchange", () => {
  const wanted = selectionFromAddress();
  if (wanted && wanted !== state.selectedId) select(wanted);
});

on("environments", () => {
  renderSelector();
  renderSummary();
  watchSelected();
});
on("selected", () => {
  renderSelector();
  renderSummary();
  watchSelected();
});
on("changed", ({ environmentId, what }) => {
  if (what.has("environment") && environmentId === state.selectedId) {
    refreshEnvironment(environmentId).catch((error) => say(message, describeError(error), "error"));
  }
});
