// @ts-check
// More Options → Restore: choose the destination (an environment of the same namespace), stop it if it runs,
// see the model-version warning, then follow the restore's steps until FINISHED or FAILED. The same dialog
// restores an environment to a point in time (point-in-time.js gives it a RestoreSource of its own).

import { ApiError, api, describeError, route } from "./api.js";
import { openDialog } from "./dialogs.js";
import { byId, fill, h, say } from "./dom.js";
import { environmentName, formatBytes, formatDateTime, formatInstant, percentOf, progressBar, progressText, statusBadge, tierLabel, time } from "./format.js";
import { refreshEnvironment, setRunState } from "./environments.js";
import { isAbort, poll } from "./poller.js";
import { changed, environmentById, on, select, state } from "./state.js";
import { EnvironmentState, JobStatus, OperationStatus, Outcome, PlanOutcome, StepState } from "./statuses.js";

/** @import { Answer } from "./api.js" */
/** @import { Child } from "./dom.js" */
/** @import { BackupView, EnvironmentView, OperationView, PlanOutcome as PlanOutcomeName, RestorePlanView, StepView } from "./types/schemas" */

/**
 * What a dry run answers, as the dialog shows it: the checks and the estimate every plan has, and what only
 * this kind of restore tells (the sizes of a backup, the recovery window of an instant).
 * @typedef {Pick<RestorePlanView, "outcome" | "checks" | "estimatedSeconds" | "estimateBasis">} PlanBasics
 * @typedef {{ plan: PlanBasics, details: Child[] }} ShownPlan
 */

/**
 * What the restore dialog restores: a backup (More Options → Restore), or an environment as it was at an
 * instant (point-in-time.js). The destination, its state, the plan and the progress are the dialog's.
 * @typedef {object} RestoreSource
 * @property {string} title  the dialog's heading
 * @property {string} submitLabel
 * @property {string} environmentId  the environment the data comes from
 * @property {string} namespace  a restore goes into an environment of this namespace
 * @property {Child[]} describe  what is restored, in words
 * @property {string} replacedBy  "… will be replaced by {replacedBy}"
 * @property {string} sameEnvironment  said when the destination is the source environment itself
 * @property {string} doIt  "You can {doIt} now."
 * @property {(target: EnvironmentView) => string} versionWarning  "" when there is nothing to warn about
 * @property {boolean} planOnChoice  make the plan as soon as a destination is chosen (otherwise: Check)
 * @property {() => { text: string, element: HTMLElement } | null} missing  what the user has still to give
 * @property {(targetId: string) => Promise<ShownPlan>} plan  a dry run into the destination
 * @property {(targetId: string) => Promise<OperationView>} restore  start it (answers 202 and the operation)
 * @property {HTMLElement | null} part  the dialog's part only this kind of restore shows
 * @property {HTMLElement | null} focus  where the keyboard starts (the destination when null)
 */

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
const checkButton = byId("restore-check", HTMLButtonElement);
const title = byId("restore-title");
/** @type {HTMLElement[]} */
const parts = [...document.querySelectorAll("#restore-dialog [data-restore-part]")].filter((part) => part instanceof HTMLElement);

/** @type {RestoreSource | null} */
let restoreSource = null;
/** @type {AbortSignal | undefined} */
let dialogSignal;

function chosenTarget() {
  return environmentById(targetSelect.value);
}

/** @param {RestoreSource} restoring */
function renderTargetOptions(restoring) {
  // A deregistered environment keeps its backups but takes no restore.
  const candidates = state.environments.filter(
    (environment) => environment.namespace === restoring.namespace && environment.state !== EnvironmentState.Deregistered,
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
/** The destination the plan shown was made for ("" when none is shown). */
let plannedTarget = "";

/** @type {Record<PlanOutcomeName, string>} */
const PLAN_BADGES = { [PlanOutcome.pass]: "finished", [PlanOutcome.warn]: "warning", [PlanOutcome.fail]: "failed" };
/** @type {Record<PlanOutcomeName, string>} */
const PLAN_HEADINGS = { [PlanOutcome.pass]: "ready", [PlanOutcome.warn]: "ready, with warnings", [PlanOutcome.fail]: "the restore would be refused" };

// The pre-flight plan (a dry run: nothing changes): each check with its result, what this kind of restore
// tells besides (the sizes, the window) and an estimate.
async function renderPlan() {
  const target = chosenTarget();
  const restoring = restoreSource;
  const mine = ++planRequest;
  if (!target || !restoring) {
    planSection.hidden = true;
    return;
  }
  plannedTarget = target.id;
  fill(planSection, h("p", { class: "muted" }, "Checking…"));
  planSection.hidden = false;
  try {
    const { plan, details } = await restoring.plan(target.id);
    if (mine !== planRequest) return;
    fill(
      planSection,
      h("h3", {}, `Plan: ${PLAN_HEADINGS[plan.outcome]}`),
      h(
        "ul",
        { class: "plain-list plan-checks" },
        ...plan.checks.map((check) =>
          h("li", { "data-check": check.name }, statusBadge(PLAN_BADGES[check.status], check.status), ` ${check.name.replaceAll("_", " ")}: ${check.reason}`),
        ),
      ),
      ...details,
      h("p", { class: "plan-estimate" }, plan.estimatedSeconds == null ? plan.estimateBasis : `Estimated time to load the database: about ${Math.ceil(plan.estimatedSeconds)} s. ${plan.estimateBasis}`),
    );
    planSection.hidden = false;
  } catch (error) {
    if (mine !== planRequest) return;
    fill(planSection, h("p", { class: "banner banner-warning" }, `The plan could not be made: ${describeError(error)}`));
    planSection.hidden = false;
  }
}

// Once the restore runs, the plan made before it has done its part: its words are not left in the dialog.
// What the plan was made for changed (another instant): it no longer holds.
export function clearPlan() {
  planRequest++;
  plannedTarget = "";
  fill(planSection);
  planSection.hidden = true;
}

function renderTargetStatus() {
  const restoring = restoreSource;
  // A plan made on request stays while it is for this destination (its state read anew redraws the status).
  if (restoring?.planOnChoice) renderPlan();
  else if (plannedTarget !== targetSelect.value) clearPlan();
  const target = chosenTarget();
  submitButton.setAttribute("aria-disabled", String(!target || target.state !== EnvironmentState.Stopped));
  if (!target || !restoring) {
    fill(targetStatus);
    fill(versionWarning);
    versionWarning.hidden = true;
    return;
  }
  const sameEnvironment = target.id === restoring.environmentId ? ` ${restoring.sameEnvironment}` : "";
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
        `${target.displayName} is stopped. Its database and file documents will be replaced by ${restoring.replacedBy}; a pre-restore backup of it is made first, so the restore can be undone.${sameEnvironment}`,
      ),
    );
  } else {
    fill(targetStatus, h("p", { class: "banner banner-warning" }, `${target.displayName} is ${target.state}: a restore needs it Stopped.`));
  }
  const warning = restoring.versionWarning(target);
  versionWarning.hidden = !warning;
  fill(versionWarning, warning);
}

/**
 * The model-version warning of a backup restored into `target`.
 * @param {BackupView} backup
 * @param {EnvironmentView} target
 */
function backupVersionWarning(backup, target) {
  const mismatch = backup.modelVersion && target.modelVersion && backup.modelVersion !== target.modelVersion;
  return mismatch
    ? `This backup was made with model version ${backup.modelVersion}; ${target.displayName} runs ${target.modelVersion}. You can still restore the data, but you must deploy the same model (${backup.modelVersion}) afterwards.`
    : "";
}

/** @param {MouseEvent} event */
async function stopTarget(event) {
  const target = chosenTarget();
  const button = event.currentTarget;
  if (!target || !restoreSource || !(button instanceof HTMLButtonElement)) return;
  const restoring = restoreSource;
  button.disabled = true;
  say(chooseMessage, `Stopping ${target.displayName}…`, "info");
  try {
    const stopped = await setRunState(target.id, "stop");
    renderTargetOptions(restoring);
    renderTargetStatus();
    say(chooseMessage, `${stopped.displayName} is ${stopped.state}. You can ${restoring.doIt} now.`, "success");
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
  if (!target || !restoreSource) return;
  const restoring = restoreSource;
  try {
    await refreshEnvironment(target.id); // its state now, not when the page loaded
    renderTargetOptions(restoring);
    renderTargetStatus();
  } catch (error) {
    say(chooseMessage, describeError(error), "error");
  }
});

/**
 * The destination, when everything the restore needs is given; otherwise says what is missing and moves
 * the keyboard there.
 * @param {RestoreSource} restoring
 */
function readyTarget(restoring) {
  const missing = restoring.missing();
  if (missing) {
    say(chooseMessage, missing.text, "error");
    missing.element.focus();
    return null;
  }
  const target = chosenTarget();
  if (!target) {
    say(chooseMessage, "Choose the environment to restore into.", "error");
    targetSelect.focus();
  }
  return target;
}

// Check: the plan on request, where it is not made on the choice of a destination (an instant is typed).
checkButton.addEventListener("click", () => {
  if (!restoreSource) return;
  say(chooseMessage, "");
  if (readyTarget(restoreSource)) renderPlan();
});

submitButton.addEventListener("click", async () => {
  const restoring = restoreSource;
  if (!restoring) return;
  const target = readyTarget(restoring);
  if (!target) return;
  if (submitButton.getAttribute("aria-disabled") === "true") {
    say(chooseMessage, `${target.displayName} is ${target.state}: a restore needs it Stopped.`, "error");
    return;
  }
  submitButton.setAttribute("aria-disabled", "true");
  say(chooseMessage, `Starting the restore into ${target.displayName}…`, "info");
  try {
    const operation = await restoring.restore(target.id);
    say(chooseMessage, "");
    changed(restoring.environmentId, "backups", "activity");
    changed(target.id, "environment", "backups", "activity");
    followInDialog(operation);
  } catch (error) {
    if (error instanceof ApiError && error.code === "environment_not_stopped") {
      await refreshEnvironment(target.id).catch(() => {});
      renderTargetOptions(restoring);
    }
    renderTargetStatus();
    say(chooseMessage, describeError(error), "error");
  }
});

/**
 * Open the restore dialog on what `restoring` restores.
 * @param {RestoreSource} restoring
 * @param {HTMLElement} opener
 */
export function openRestore(restoring, opener) {
  restoreSource = restoring;
  fill(title, restoring.title);
  fill(submitButton, restoring.submitLabel);
  checkButton.hidden = restoring.planOnChoice;
  for (const part of parts) part.hidden = part !== restoring.part;
  chooser.hidden = false;
  progressSection.hidden = true;
  targetSelect.value = "";
  renderTargetOptions(restoring);
  fill(source, ...restoring.describe);
  say(chooseMessage, "");
  renderTargetStatus();
  dialogSignal = openDialog("restore-dialog", { returnFocus: opener });
  (restoring.focus ?? targetSelect).focus();
}

/**
 * More Options → Restore.
 * @param {BackupView} backup
 * @param {HTMLElement} opener
 */
export function startRestore(backup, opener) {
  const backupRoute = route`environments/${backup.environmentId}/backups/${backup.id}/restore`;
  openRestore(
    {
      title: "Restore backup",
      submitLabel: "Restore Backup",
      environmentId: backup.environmentId,
      namespace: backup.namespace,
      describe: [
        `The ${tierLabel(backup.tier).toLowerCase()} backup of ${environmentById(backup.environmentId)?.displayName ?? backup.environmentId}, made on `,
        time(backup.createdOn),
        ` (model version ${backup.modelVersion ?? "unknown"}, deployment package ${backup.deploymentPackage ?? "unknown"}${backup.comment ? `, “${backup.comment}”` : ""}).`,
      ],
      replacedBy: "the backup's",
      sameEnvironment: "This is the environment the backup was made of.",
      doIt: "restore the backup",
      versionWarning: (target) => backupVersionWarning(backup, target),
      planOnChoice: true,
      missing: () => null,
      plan: async (targetId) => {
        /** @type {Answer<RestorePlanView>} */
        const { data } = await api(backupRoute, { method: "POST", body: { targetEnvironment: targetId, dryRun: true } });
        const sizes = data.sizes;
        return {
          plan: data,
          details: [
            h(
              "p",
              { class: "plan-sizes" },
              `Dump ${formatBytes(sizes.dumpSize)}; database at backup time ${formatBytes(sizes.databaseSize)}; file documents to copy: ${sizes.filesToCopy ?? "–"} (${formatBytes(sizes.bytesToCopy)}).`,
            ),
          ],
        };
      },
      restore: async (targetId) => {
        /** @type {Answer<OperationView>} */
        const { data } = await api(backupRoute, { method: "POST", body: { targetEnvironment: targetId } });
        return data;
      },
      part: null,
      focus: null,
    },
    opener,
  );
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
    const instant = restore.details?.pointInTime;
    const sourceId = restore.details?.sourceEnvironmentId;
    const what =
      typeof instant === "string"
        ? `${environmentById(typeof sourceId === "string" ? sourceId : "")?.displayName ?? "The environment"} as it was at ${formatInstant(instant)} was`
        : "The backup was";
    fill(outcome, statusBadge("finished", Outcome.FINISHED), ` ${what} restored into ${targetName} on ${formatDateTime(restore.finishedOn)}.`);
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
