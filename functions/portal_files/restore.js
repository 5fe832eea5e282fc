// @ts-check
// More Options → Restore: choose the destination (an environment of the same namespace), stop it if it runs,
// see the model-version warning, then follow the restore's steps until FINISHED or FAILED.

import { ApiError, api, describeError, route } from "./api.js";
import { openDialog } from "./dialogs.js";
import { byId, fill, h, say } from "./dom.js";
import { environmentName, formatBytes, formatDateTime, percentOf, progressBar, progressText, statusBadge, tierLabel, time } from "./format.js";
import { refreshEnvironment, setRunState } from "./environments.js";
import { isAbort, poll } from "./poller.js";
import { changed, environmentById, on, select, state } from "./state.js";
import { EnvironmentState, JobStatus, OperationStatus, Outcome, PlanOutcome, StepState } from "./statuses.js";

/** @import { Answer } from "./api.js" */
/** @import { BackupView, OperationView, PlanOutcome as PlanOutcomeName, RestorePlanView, StepView } from "./types/schemas" */

const POLL_MS = 1000;

const chooser = byId("restore-choose");
const source = byId("restore-source");
const targetSelect = byId("restore-target", HTMLSelectElement);
const targetStatus = byId("restore-target-status");
const versionWarning = byId("restore-version-warning");
const chooseMessage = byId("restore-message");
const submitButton = byId("restore-submit", HTMLButtonElement);
const progressSection = byId("restore-progress");
const progressTitle = byId("restore-progress-title");
const outcome = byId("restore-outcome");
const warningsList = byId("restore-warnings");
const stepsList = byId("restore-steps");
const showTargetButton = byId("restore-show-target", HTMLButtonElement);
const cancelButton = byId("restore-cancel", HTMLButtonElement);

/** @type {BackupView | null} */
let restoreBackup = null;
/** @type {AbortSignal | undefined} */
let dialogSignal;

function chosenTarget() {
  return environmentById(targetSelect.value);
}

/** @param {BackupView} backup */
function renderTargetOptions(backup) {
  // A deregistered environment keeps its backups but takes no restore.
  const candidates = state.environments.filter(
    (environment) => environment.namespace === backup.namespace && environment.state !== EnvironmentState.Deregistered,
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

/** @type {Record<PlanOutcomeName, string>} */
const PLAN_BADGES = { [PlanOutcome.pass]: "finished", [PlanOutcome.warn]: "warning", [PlanOutcome.fail]: "failed" };
/** @type {Record<PlanOutcomeName, string>} */
const PLAN_HEADINGS = { [PlanOutcome.pass]: "ready", [PlanOutcome.warn]: "ready, with warnings", [PlanOutcome.fail]: "the restore would be refused" };

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
    /** @type {Answer<RestorePlanView>} */
    const { data } = await api(route`environments/${backup.environmentId}/backups/${backup.id}/restore`, {
      method: "POST",
      body: { targetEnvironment: target.id, dryRun: true },
    });
    if (mine !== planRequest) return;
    const sizes = data.sizes;
    fill(
      planSection,
      h("h3", {}, `Plan: ${PLAN_HEADINGS[data.outcome]}`),
      h(
        "ul",
        { class: "plain-list plan-checks" },
        ...data.checks.map((check) =>
          h("li", { "data-check": check.name }, statusBadge(PLAN_BADGES[check.status], check.status), ` ${check.name.replaceAll("_", " ")}: ${check.reason}`),
        ),
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
  submitButton.setAttribute("aria-disabled", String(!target || target.state !== EnvironmentState.Stopped));
  if (!target || !backup) {
    fill(targetStatus);
    fill(versionWarning);
    versionWarning.hidden = true;
    return;
  }
  const sameEnvironment = target.id === backup.environmentId ? " This is the environment the backup was made of." : "";
  if (target.state === EnvironmentState.Running) {
    fill(
      targetStatus,
      h(
        "div",
        { class: "banner banner-warning" },
        h("p", {}, `${target.displayName} is running. Stop the application before restoring: the restore replaces its database and file documents.${sameEnvironment}`),
        h("button", { type: "button", class: "secondary", id: "restore-stop", onclick: stopTarget }, "Stop Application"),
      ),
    );
  } else if (target.state === EnvironmentState.Stopped) {
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

/** @param {MouseEvent} event */
async function stopTarget(event) {
  const target = chosenTarget();
  const button = event.currentTarget;
  if (!target || !restoreBackup || !(button instanceof HTMLButtonElement)) return;
  const backup = restoreBackup;
  button.disabled = true;
  say(chooseMessage, `Stopping ${target.displayName}…`, "info");
  try {
    const stopped = await setRunState(target.id, "stop");
    renderTargetOptions(backup);
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
  if (!target || !restoreBackup) return;
  const backup = restoreBackup;
  try {
    await refreshEnvironment(target.id); // its state now, not when the page loaded
    renderTargetOptions(backup);
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
  if (!backup) return;
  submitButton.setAttribute("aria-disabled", "true");
  say(chooseMessage, `Starting the restore into ${target.displayName}…`, "info");
  try {
    /** @type {Answer<OperationView>} */
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

/**
 * @param {BackupView} backup
 * @param {HTMLElement} opener
 */
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

/** @param {StepView} step */
function renderStep(step) {
  const percent = percentOf(step.progress);
  const detail = progressText(step.progress);
  const running = step.status === StepState.Running;
  return h(
    "li",
    { class: `step step-${step.status.toLowerCase()}` },
    h("div", { class: "step-head" }, h("span", { class: "step-title" }, step.title), statusBadge(running ? "processing" : step.status, step.status)),
    running ? progressBar(percent, step.title) : null,
    detail || step.attempts > 1 ? h("p", { class: "cell-note" }, [detail, step.attempts > 1 ? `attempt ${step.attempts}` : ""].filter(Boolean).join(" · ")) : null,
    step.message ? h("p", { class: "step-message" }, step.message) : null,
  );
}

/** @param {OperationView} restore */
function renderRestore(restore) {
  const target = environmentById(restore.environmentId);
  const targetName = target?.displayName ?? restore.environmentId;
  fill(progressTitle, `Restore into ${targetName}`);
  fill(stepsList, restore.steps.map(renderStep));
  fill(warningsList, restore.warnings.map((warning) => h("li", {}, warning)));
  warningsList.hidden = restore.warnings.length === 0;
  if (restore.undoing === OperationStatus.Cancelled) {
    fill(outcome, statusBadge("processing", "Cancelling"), " Undoing what the restore did; the environment is unlocked when that is done…");
  } else if (restore.undoing === OperationStatus.Failed) {
    fill(outcome, statusBadge("processing", "Failing"), ` ${restore.error?.message ?? "The restore failed"}. Undoing what it did…`);
  } else if (restore.status === JobStatus.Running) {
    const running = restore.steps.find((step) => step.status === StepState.Running);
    fill(outcome, statusBadge("processing", JobStatus.Running), ` ${running ? running.title : "Waiting for the next step"}…`);
  } else if (restore.status === JobStatus.Stalled) {
    fill(outcome, statusBadge("stalled", JobStatus.Stalled), " Its worker stopped checking in at ", time(restore.stalledSince), "; it resumes from its last step by itself.");
  } else if (restore.status === JobStatus.Cancelled) {
    const who = restore.cancel?.requestedBy?.name;
    fill(outcome, statusBadge("cancelled", Outcome.CANCELLED), ` The restore into ${targetName} was cancelled${who ? ` by ${who}` : ""}; ${targetName} is as it was before.`);
  } else if (restore.status === JobStatus.Finished) {
    fill(outcome, statusBadge("finished", Outcome.FINISHED), ` The backup was restored into ${targetName} on ${formatDateTime(restore.finishedOn)}.`);
  } else {
    const where = restore.error?.step ? ` in step “${restore.error.step}”` : "";
    fill(
      outcome,
      statusBadge("failed", Outcome.FAILED),
      ` The restore into ${targetName} failed${where}: ${restore.error?.message ?? "no reason was given"}. The database of ${targetName} is as it was before the restore.`,
    );
  }
  const going = restoreGoing(restore);
  cancelButton.hidden = !(going && restore.cancellable);
  cancelButton.disabled = false;
  cancelButton.dataset.restore = restore.id;
  if (going && !restore.cancellable && restore.notCancellableBecause) cancelButton.title = restore.notCancellableBecause;
  showTargetButton.hidden = going || restore.environmentId === state.selectedId;
  fill(showTargetButton, `Show ${targetName}`);
  showTargetButton.dataset.environment = restore.environmentId;
}

/** @param {OperationView} restore */
function restoreGoing(restore) {
  return restore.status === JobStatus.Running || restore.status === JobStatus.Stalled;
}

/**
 * The restore as it is now.
 * @param {string} id
 * @param {AbortSignal} [signal]
 * @returns {Promise<OperationView>}
 */
async function readRestore(id, signal) {
  /** @type {Answer<OperationView>} */
  const { data } = await api(route`restores/${id}`, { signal });
  return data;
}

/**
 * @param {OperationView} restore
 * @param {AbortSignal} [signal]
 */
async function watch(restore, signal) {
  const current = await poll({
    initial: restore,
    read: (signal) => readRestore(restore.id, signal),
    show: renderRestore,
    going: restoreGoing,
    intervalMs: POLL_MS,
    signal,
  });
  await refreshEnvironment(current.environmentId).catch(() => {});
  changed(current.environmentId, "backups", "activity");
  const sourceId = current.details?.sourceEnvironmentId;
  if (typeof sourceId === "string" && sourceId && sourceId !== current.environmentId) changed(sourceId, "backups", "activity");
}

/** @param {OperationView} restore */
function followInDialog(restore) {
  chooser.hidden = true;
  clearPlan();
  progressSection.hidden = false;
  renderRestore(restore);
  byId("restore-close").focus();
  watch(restore, dialogSignal).catch((error) => {
    if (!isAbort(error)) fill(outcome, statusBadge("failed", "Unknown"), ` Could not follow the restore: ${describeError(error)}`);
  });
}

cancelButton.addEventListener("click", async () => {
  cancelButton.disabled = true;
  try {
    /** @type {Answer<OperationView>} */
    const { data } = await api(route`restores/${cancelButton.dataset.restore ?? ""}/cancel`, { method: "POST" });
    renderRestore(data);
  } catch (error) {
    cancelButton.hidden = true;
    fill(outcome, statusBadge("processing", JobStatus.Running), ` ${describeError(error)}`);
  }
});

showTargetButton.addEventListener("click", () => {
  const id = showTargetButton.dataset.environment ?? "";
  byId("restore-dialog", HTMLDialogElement).close();
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
    followInDialog(await readRestore(restoreId, dialogSignal));
  } catch (error) {
    if (!isAbort(error)) fill(outcome, describeError(error));
  }
});
