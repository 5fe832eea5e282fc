// More Options → Restore: choose the destination (an environment of the same namespace), stop it if it runs,
// see the model-version warning, then follow the restore's steps until FINISHED or FAILED.

import { ApiError, api, describeError, pause, route } from "./api.js";
import { openDialog } from "./dialogs.js";
import { byId, fill, h, say } from "./dom.js";
import { environmentName, formatBytes, formatDateTime, percentOf, progressBar, progressText, statusBadge, tierLabel, time } from "./format.js";
import { refreshEnvironment, setRunState } from "./environments.js";
import { changed, environmentById, on, select, state } from "./state.js";

const POLL_MS = 1000;

const chooser = byId("restore-choose");
const source = byId("restore-source");
const targetSelect = byId("restore-target");
const targetStatus = byId("restore-target-status");
const versionWarning = byId("restore-version-warning");
const chooseMessage = byId("restore-message");
const submitButton = byId("restore-submit");
const progressSection = byId("restore-progress");
const progressTitle = byId("restore-progress-title");
const outcome = byId("restore-outcome");
const warningsList = byId("restore-warnings");
const stepsList = byId("restore-steps");
const showTargetButton = byId("restore-show-target");
const cancelButton = byId("restore-cancel");

let restoreBackup = null;
let dialogSignal = null;

function chosenTarget() {
  return environmentById(targetSelect.value);
}

function renderTargetOptions(backup) {
  // A deregistered environment keeps its backups but takes no restore.
  const candidates = state.environments.filter(
    (environment) => environment.namespace === backup.namespace && environment.state !== "Deregistered",
  );
  const current = targetSelect.value;
  fill(
    targetSelect,
    h("option", { value: "" }, "Choose an environment"),
    candidates.map((environment) => h("option", { value: environment.id }, `${environmentName(environment)} — ${environment.state}`)),
  );
  if (candidates.some((environment) => environment.id === current)) targetSelect.value = current;
}

const planSection = byId("restore-plan");
let planRequest = 0;

// The pre-flight plan (a dry run: nothing changes): each check with its result, the sizes and an estimate.
async function renderPlan() {
  const target = chosenTarget();
  const backup = restoreBackup;
  const mine = ++planRequest;
  if (!target || !backup) {
    planSection.hidden = true;
    return;
  }
  try {
    const { data } = await api(route`environments/${backup.environmentId}/backups/${backup.id}/restore`, {
      method: "POST",
      body: { targetEnvironment: target.id, dryRun: true },
    });
    if (mine !== planRequest) return;
    const sizes = data.sizes;
    const badge = { pass: "finished", warn: "warning", fail: "failed" };
    fill(
      planSection,
      h("h3", {}, `Plan: ${{ pass: "ready", warn: "ready, with warnings", fail: "the restore would be refused" }[data.outcome]}`),
      h(
        "ul",
        { class: "plain-list plan-checks" },
        ...data.checks.map((check) => h("li", { "data-check": check.name }, statusBadge(badge[check.status], check.status), ` ${check.name.replaceAll("_", " ")}: ${check.reason}`)),
      ),
      h(
        "p",
        { class: "plan-sizes" },
        `Dump ${formatBytes(sizes.dumpSize)}; database at backup time ${formatBytes(sizes.databaseSize)}; file documents to copy: ${sizes.filesToCopy ?? "–"} (${formatBytes(sizes.bytesToCopy)}).`,
      ),
      h("p", { class: "plan-estimate" }, data.estimatedSeconds == null ? data.estimateBasis : `Estimated time to load the database: about ${Math.ceil(data.estimatedSeconds)} s. ${data.estimateBasis}`),
    );
    planSection.hidden = false;
  } catch (error) {
    if (mine !== planRequest) return;
    fill(planSection, h("p", { class: "banner banner-warning" }, `The plan could not be made: ${describeError(error)}`));
    planSection.hidden = false;
  }
}

// Once the restore runs, the plan made before it has done its part: its words are not left in the dialog.
function clearPlan() {
  planRequest++;
  fill(planSection);
  planSection.hidden = true;
}

function renderTargetStatus() {
  renderPlan();
  const target = chosenTarget();
  const backup = restoreBackup;
  submitButton.setAttribute("aria-disabled", String(!target || target.state !== "Stopped"));
  if (!target) {
    fill(targetStatus);
    fill(versionWarning);
    versionWarning.hidden = true;
    return;
  }
  const sameEnvironment = target.id === backup.environmentId ? " This is the environment the backup was made of." : "";
  if (target.state === "Running") {
    fill(
      targetStatus,
      h(
        "div",
        { class: "banner banner-warning" },
        h("p", {}, `${target.displayName} is running. Stop the application before restoring: the restore replaces its database and file documents.${sameEnvironment}`),
        h("button", { type: "button", class: "secondary", id: "restore-stop", onclick: stopTarget }, "Stop Application"),
      ),
    );
  } else if (target.state === "Stopped") {
    fill(
      targetStatus,
      h(
        "p",
        { class: "banner banner-info" },
        `${target.displayName} is stopped. Its database and file documents will be replaced by the backup's; a pre-restore backup of it is made first, so the restore can be undone.${sameEnvironment}`,
      ),
    );
  } else {
    fill(targetStatus, h("p", { class: "banner banner-warning" }, `${target.displayName} is ${target.state}: a restore needs it Stopped.`));
  }
  const mismatch = backup.modelVersion && target.modelVersion && backup.modelVersion !== target.modelVersion;
  versionWarning.hidden = !mismatch;
  fill(
    versionWarning,
    mismatch
      ? `This backup was made with model version ${backup.modelVersion}; ${target.displayName} runs ${target.modelVersion}. You can still restore the data, but you must deploy the same model (${backup.modelVersion}) afterwards.`
      : "",
  );
}

async function stopTarget(event) {
  const target = chosenTarget();
  const button = event.currentTarget;
  button.disabled = true;
  say(chooseMessage, `Stopping ${target.displayName}…`, "info");
  try {
    const stopped = await setRunState(target.id, "stop");
    renderTargetOptions(restoreBackup);
    renderTargetStatus();
    say(chooseMessage, `${stopped.displayName} is ${stopped.state}. You can restore the backup now.`, "success");
    submitButton.focus();
  } catch (error) {
    say(chooseMessage, describeError(error), "error");
    button.disabled = false;
  }
}

targetSelect.addEventListener("change", async () => {
  say(chooseMessage, "");
  renderTargetStatus();
  const target = chosenTarget();
  if (!target) return;
  try {
    await refreshEnvironment(target.id); // its state now, not when the page loaded
    renderTargetOptions(restoreBackup);
    renderTargetStatus();
  } catch (error) {
    say(chooseMessage, describeError(error), "error");
  }
});

submitButton.addEventListener("click", async () => {
  const target = chosenTarget();
  if (!target) {
    say(chooseMessage, "Choose the environment to restore into.", "error");
    targetSelect.focus();
    return;
  }
  if (submitButton.getAttribute("aria-disabled") === "true") {
    say(chooseMessage, `${target.displayName} is ${target.state}: a restore needs it Stopped.`, "error");
    return;
  }
  const backup = restoreBackup;
  submitButton.setAttribute("aria-disabled", "true");
  say(chooseMessage, `Starting the restore into ${target.displayName}…`, "info");
  try {
    const { data } = await api(route`environments/${backup.environmentId}/backups/${backup.id}/restore`, {
      method: "POST",
      body: { targetEnvironment: target.id },
    });
    say(chooseMessage, "");
    changed(backup.environmentId, "backups", "activity");
    changed(target.id, "environment", "backups", "activity");
    followInDialog(data);
  } catch (error) {
    if (error instanceof ApiError && error.code === "environment_not_stopped") {
      await refreshEnvironment(target.id).catch(() => {});
      renderTargetOptions(backup);
      renderTargetStatus();
    } else {
      renderTargetStatus();
    }
    say(chooseMessage, describeError(error), "error");
  }
});

export function startRestore(backup, opener) {
  restoreBackup = backup;
  chooser.hidden = false;
  progressSection.hidden = true;
  targetSelect.value = "";
  renderTargetOptions(backup);
  fill(
    source,
    `The ${tierLabel(backup.tier).toLowerCase()} backup of ${environmentById(backup.environmentId)?.displayName ?? backup.environmentId}, made on `,
    time(backup.createdOn),
    ` (model version ${backup.modelVersion ?? "unknown"}, deployment package ${backup.deploymentPackage ?? "unknown"}${backup.comment ? `, “${backup.comment}”` : ""}).`,
  );
  say(chooseMessage, "");
  renderTargetStatus();
  dialogSignal = openDialog("restore-dialog", { returnFocus: opener });
  targetSelect.focus();
}

// ---- following a restore ---------------------------------------------------------------------------------

function renderStep(step) {
  const percent = percentOf(step.progress);
  const detail = progressText(step.progress);
  return h(
    "li",
    { class: `step step-${step.status.toLowerCase()}` },
    h("div", { class: "step-head" }, h("span", { class: "step-title" }, step.title), statusBadge(step.status === "Running" ? "processing" : step.status, step.status)),
    step.status === "Running" ? progressBar(percent, step.title) : null,
    detail || step.attempts > 1 ? h("p", { class: "cell-note" }, [detail, step.attempts > 1 ? `attempt ${step.attempts}` : ""].filter(Boolean).join(" · ")) : null,
    step.message ? h("p", { class: "step-message" }, step.message) : null,
  );
}

function renderRestore(restore) {
  const target = environmentById(restore.environmentId);
  const targetName = target?.displayName ?? restore.environmentId;
  fill(progressTitle, `Restore into ${targetName}`);
  fill(stepsList, restore.steps.map(renderStep));
  fill(warningsList, restore.warnings.map((warning) => h("li", {}, warning)));
  warningsList.hidden = restore.warnings.length === 0;
  if (restore.undoing === "Cancelled") {
    fill(outcome, statusBadge("processing", "Cancelling"), " Undoing what the restore did; the environment is unlocked when that is done…");
  } else if (restore.undoing === "Failed") {
    fill(outcome, statusBadge("processing", "Failing"), ` ${restore.error?.message ?? "The restore failed"}. Undoing what it did…`);
  } else if (restore.status === "Running") {
    const running = restore.steps.find((step) => step.status === "Running");
    fill(outcome, statusBadge("processing", "Running"), ` ${running ? running.title : "Waiting for the next step"}…`);
  } else if (restore.status === "Stalled") {
    fill(outcome, statusBadge("stalled", "Stalled"), " Its worker stopped checking in at ", time(restore.stalledSince), "; it resumes from its last step by itself.");
  } else if (restore.status === "Cancelled") {
    const who = restore.cancel?.requestedBy?.name;
    fill(outcome, statusBadge("cancelled", "CANCELLED"), ` The restore into ${targetName} was cancelled${who ? ` by ${who}` : ""}; ${targetName} is as it was before.`);
  } else if (restore.status === "Finished") {
    fill(outcome, statusBadge("finished", "FINISHED"), ` The backup was restored into ${targetName} on ${formatDateTime(restore.finishedOn)}.`);
  } else {
    const where = restore.error?.step ? ` in step “${restore.error.step}”` : "";
    fill(
      outcome,
      statusBadge("failed", "FAILED"),
      ` The restore into ${targetName} failed${where}: ${restore.error?.message ?? "no reason was given"}. The database of ${targetName} is as it was before the restore.`,
    );
  }
  const going = restore.status === "Running" || restore.status === "Stalled";
  cancelButton.hidden = !(going && restore.cancellable);
  cancelButton.disabled = false;
  cancelButton.dataset.restore = restore.id;
  if (going && !restore.cancellable && restore.notCancellableBecause) cancelButton.title = restore.notCancellableBecause;
  showTargetButton.hidden = going || restore.environmentId === state.selectedId;
  fill(showTargetButton, `Show ${targetName}`);
  showTargetButton.dataset.environment = restore.environmentId;
}

async function watch(restore, signal) {
  let current = restore;
  renderRestore(current);
  while (current.status === "Running" || current.status === "Stalled") {
    await pause(POLL_MS, signal);
    ({ data: current } = await api(route`restores/${current.id}`, { signal }));
    renderRestore(current);
  }
  await refreshEnvironment(current.environmentId).catch(() => {});
  changed(current.environmentId, "backups", "activity");
  const sourceId = current.details?.sourceEnvironmentId;
  if (sourceId && sourceId !== current.environmentId) changed(sourceId, "backups", "activity");
}

function followInDialog(restore) {
  chooser.hidden = true;
  clearPlan();
  progressSection.hidden = false;
  renderRestore(restore);
  byId("restore-close").focus();
  watch(restore, dialogSignal).catch((error) => {
    if (error.name !== "AbortError") fill(outcome, statusBadge("failed", "Unknown"), ` Could not follow the restore: ${describeError(error)}`);
  });
}

cancelButton.addEventListener("click", async () => {
  cancelButton.disabled = true;
  try {
    const { data } = await api(route`restores/${cancelButton.dataset.restore}/cancel`, { method: "POST" });
    renderRestore(data);
  } catch (error) {
    cancelButton.hidden = true;
    fill(outcome, statusBadge("processing", "Running"), ` ${describeError(error)}`);
  }
});

showTargetButton.addEventListener("click", () => {
  const id = showTargetButton.dataset.environment;
  byId("restore-dialog").close();
  const address = new URL(window.location.href);
  address.hash = new URLSearchParams({ environment: id }).toString();
  window.history.replaceState(null, "", address);
  select(id);
});

on("follow-restore", async ({ restoreId }) => {
  dialogSignal = openDialog("restore-dialog");
  chooser.hidden = true;
  clearPlan();
  progressSection.hidden = false;
  fill(outcome, "Loading the restore…");
  fill(stepsList);
  try {
    const { data } = await api(route`restores/${restoreId}`, { signal: dialogSignal });
    followInDialog(data);
  } catch (error) {
    if (error.name !== "AbortError") fill(outcome, describeError(error));
  }
});
