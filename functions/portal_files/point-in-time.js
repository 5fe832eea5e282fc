// @ts-check
// Restore to a point in time…: an environment with point-in-time recovery (pointInTime), restored as it was at
// an instant of its recovery window. The window (earliest … latest, gaps, the recovery point now) is read when
// the dialog opens; the instant is typed in local time with its UTC instant beside it, or pasted in UTC. The
// destination, the plan (Check) and the progress are the restore dialog's (restore.js).

import { api, describeError, route } from "./api.js";
import { byId, fill, h } from "./dom.js";
import { environmentName, formatInstant, formatLocalSeconds, formatSeconds, utcText } from "./format.js";
import { clearPlan, openRestore } from "./restore.js";
import { environmentById, on } from "./state.js";

/** @import { Answer } from "./api.js" */
/** @import { Child } from "./dom.js" */
/** @import { components } from "./types/api" */
/** @import { EnvironmentView, OperationView } from "./types/schemas" */

/**
 * @typedef {components["schemas"]["RecoveryWindowView"]} RecoveryWindowView
 * @typedef {components["schemas"]["PointInTimePlanView"]} PointInTimePlanView
 * @typedef {components["schemas"]["GapView"]} GapView
 */

const part = byId("restore-instant");
const windowSection = byId("pit-window");
const localInput = byId("pit-local", HTMLInputElement);
const utcInput = byId("pit-utc", HTMLInputElement);
const note = byId("pit-instant-note");
const zoneName = Intl.DateTimeFormat().resolvedOptions().timeZone || "this browser's time zone";
fill(byId("pit-zone"), zoneName);

/** The instant typed or pasted; null while there is none (or what is there is not one). */
/** @type {Date | null} */
let instant = null;
/** The recovery window as last read, to say beside the instant whether it lies in it. */
/** @type {RecoveryWindowView | null} */
let recoveryWindow = null;
let windowRequest = 0;

// ---- local time ⇄ UTC ------------------------------------------------------------------------------------

/** @param {number} value */
const pad = (value) => String(value).padStart(2, "0");

/**
 * A datetime-local value (the browser's time zone) for an instant: "2026-12-07T11:41:05".
 * @param {Date} date
 */
function localValue(date) {
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/**
 * The instant of a datetime-local value: a date-time without an offset is local time (ECMAScript's rule).
 * @param {string} value
 */
function fromLocal(value) {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value)) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

const UTC_PATTERN = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * The instant of what was typed or pasted in the UTC field: ISO 8601 to the minute or second, "T" or a
 * space; Z, "UTC" or nothing read as UTC, an offset (+01:00) as that offset. Null when it is not an instant.
 * @param {string} text
 */
function fromUtc(text) {
  const match = UTC_PATTERN.exec(text.trim());
  if (!match) return null;
  const [, year, month, day, hours, minutes, seconds = "0", fraction = "0", zone = "Z"] = match;
  const fields = [year, month, day, hours, minutes, seconds].map(Number);
  const milliseconds = Math.round(Number(`0.${fraction}`) * 1000);
  let offsetMinutes = 0;
  if (/^[+-]/.test(zone)) {
    const digits = zone.replace(":", "");
    offsetMinutes = (zone.startsWith("-") ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5) || "0"));
  }
  const wall = new Date(Date.UTC(fields[0], fields[1] - 1, fields[2], fields[3], fields[4], fields[5], milliseconds));
  // Date.UTC rolls 2026-02-30 over into March: such a day is not one.
  const same =
    wall.getUTCFullYear() === fields[0] && wall.getUTCMonth() === fields[1] - 1 && wall.getUTCDate() === fields[2] &&
    wall.getUTCHours() === fields[3] && wall.getUTCMinutes() === fields[4] && wall.getUTCSeconds() === fields[5];
  return same ? new Date(wall.getTime() - offsetMinutes * 60_000) : null;
}

/**
 * Where the instant lies against the window as last read: "" inside it (or when the window is not known).
 * The API decides; this only tells before it is asked.
 * @param {Date} date
 */
function outsideWindow(date) {
  const known = recoveryWindow;
  if (!known || !known.earliest || !known.latest) return "";
  if (date < new Date(known.earliest)) return "It is before the earliest restorable instant: a restore would be refused.";
  if (date > new Date(known.latest)) return "It is after the latest restorable instant: a restore would be refused.";
  const gap = known.gaps.find((each) => date >= new Date(each.start) && date <= new Date(each.end));
  return gap ? `It lies in a gap of the window (${gap.reason}): a restore would be refused.` : "";
}

function renderNote() {
  localInput.removeAttribute("aria-invalid");
  utcInput.removeAttribute("aria-invalid");
  if (!instant) {
    fill(note);
    return;
  }
  const outside = outsideWindow(instant);
  fill(note, `${formatLocalSeconds(instant)} in ${zoneName} is ${utcText(instant)} in UTC.`, outside ? h("strong", {}, ` ${outside}`) : null);
}

/**
 * The instant changed: the plan made for the one before no longer holds.
 * @param {Date | null} date
 */
function setInstant(date) {
  instant = date;
  clearPlan();
  renderNote();
}

// Local time typed (or picked): its UTC instant beside it, as the user types.
localInput.addEventListener("input", () => {
  if (!localInput.value) {
    utcInput.value = "";
    setInstant(null);
    return;
  }
  const date = fromLocal(localInput.value);
  setInstant(date);
  if (date) utcInput.value = utcText(date);
});

// An instant pasted or typed in UTC: the local time follows; the UTC field is written out in full once left.
utcInput.addEventListener("input", () => {
  const text = utcInput.value.trim();
  if (!text) {
    localInput.value = "";
    setInstant(null);
    return;
  }
  const date = fromUtc(text);
  setInstant(date);
  if (date) {
    localInput.value = localValue(date);
  } else {
    utcInput.setAttribute("aria-invalid", "true");
    fill(note, `“${text}” is not an instant yet: write it as 2026-12-07T10:41:00Z.`);
  }
});
utcInput.addEventListener("change", () => {
  if (instant) utcInput.value = utcText(instant);
});

// ---- the recovery window ---------------------------------------------------------------------------------

/**
 * @param {string} name
 * @param {...Child} value
 */
function term(name, ...value) {
  return [h("dt", {}, name), h("dd", {}, ...value)];
}

/**
 * A button that puts an instant of the window in the fields.
 * @param {string} label
 * @param {string} iso
 */
function useButton(label, iso) {
  return h(
    "button",
    {
      type: "button",
      class: "link-button",
      onclick: () => {
        const date = new Date(iso);
        localInput.value = localValue(date);
        utcInput.value = utcText(date);
        setInstant(date);
        localInput.focus();
      },
    },
    label,
  );
}

/** @param {GapView} gap */
function renderGap(gap) {
  return h("li", {}, `${formatInstant(gap.start)} … ${formatInstant(gap.end)}: ${gap.reason}`);
}

/** @param {RecoveryWindowView} found */
function renderWindow(found) {
  localInput.min = found.earliest ? localValue(new Date(found.earliest)) : "";
  localInput.max = found.latest ? localValue(new Date(found.latest)) : "";
  if (!found.earliest || !found.latest) {
    fill(
      windowSection,
      h("h3", {}, "Recovery window"),
      h("p", { class: "banner banner-warning" }, `Nothing of ${found.environmentId} can be restored to an instant yet: its archive (${found.server}) holds no base backup.`),
    );
    return;
  }
  fill(
    windowSection,
    h("h3", {}, "Recovery window"),
    h(
      "dl",
      { class: "details-list" },
      term("Earliest", formatInstant(found.earliest), " ", useButton("Use earliest", found.earliest)),
      term("Latest", formatInstant(found.latest), " ", useButton("Use latest", found.latest)),
      term("Gaps", found.gaps.length ? h("ul", { class: "plain-list" }, found.gaps.map(renderGap)) : "none"),
      term(
        "Recovery point now",
        found.recoveryPointSeconds == null ? "–" : `the latest restorable instant is ${formatSeconds(found.recoveryPointSeconds)} behind the clock`,
      ),
    ),
  );
}

/** @param {EnvironmentView} environment */
async function loadWindow(environment) {
  const mine = ++windowRequest;
  recoveryWindow = null;
  localInput.min = "";
  localInput.max = "";
  fill(windowSection, h("h3", {}, "Recovery window"), h("p", { class: "muted" }, "Reading the recovery window…"));
  try {
    /** @type {Answer<RecoveryWindowView>} */
    const { data } = await api(route`environments/${environment.id}/recovery-window`);
    if (mine !== windowRequest) return;
    recoveryWindow = data;
    renderWindow(data);
  } catch (error) {
    if (mine !== windowRequest) return;
    fill(
      windowSection,
      h("h3", {}, "Recovery window"),
      h("p", { class: "banner banner-warning", id: "pit-window-refusal" }, `The recovery window cannot be read: ${describeError(error)}`),
    );
  }
  if (instant) renderNote(); // now against the window
}

// ---- the dialog --------------------------------------------------------------------------------------------

/**
 * What the plan of a restore to an instant tells besides its checks: the window it was checked against.
 * @param {PointInTimePlanView} plan
 * @returns {Child[]}
 */
function planDetails(plan) {
  return [
    h("p", { class: "plan-instant" }, `Instant: ${formatInstant(plan.pointInTime)}.`),
    plan.earliest && plan.latest
      ? h("p", { class: "plan-window" }, `Checked against the recovery window ${formatInstant(plan.earliest)} … ${formatInstant(plan.latest)}${plan.gaps.length ? `, with ${plan.gaps.length} gap${plan.gaps.length === 1 ? "" : "s"}` : ""}.`)
      : null,
  ];
}

/**
 * @param {EnvironmentView} environment
 * @param {HTMLElement} opener
 */
function startRestoreToTime(environment, opener) {
  const restoreRoute = route`environments/${environment.id}/restore-to-time`;
  /** @param {string} targetId */
  const body = (targetId) => ({ pointInTime: instant ? utcText(instant) : "", targetEnvironment: targetId });
  localInput.value = "";
  utcInput.value = "";
  instant = null;
  renderNote();
  openRestore(
    {
      title: "Restore to a point in time",
      submitLabel: "Restore",
      environmentId: environment.id,
      namespace: environment.namespace,
      describe: [
        `${environmentName(environment)} as it was at the instant you choose: its database and exactly the file documents it referred to then (archive server ${environment.pointInTime?.server ?? "–"}, window ${environment.pointInTime?.windowDays ?? "–"} days).`,
      ],
      replacedBy: `those ${environment.displayName} had at the instant`,
      sameEnvironment: `This is ${environment.displayName} itself: it goes back to the instant.`,
      doIt: "restore it to the instant",
      // The model the environment ran at the instant is not recorded: the plan's model_version check says so.
      versionWarning: () => "",
      planOnChoice: false,
      missing: () =>
        instant
          ? null
          : { text: "Enter the instant to restore to: the local time, or an instant in UTC.", element: utcInput.value.trim() ? utcInput : localInput },
      plan: async (targetId) => {
        /** @type {Answer<PointInTimePlanView>} */
        const { data } = await api(restoreRoute, { method: "POST", body: { ...body(targetId), dryRun: true } });
        return { plan: data, details: planDetails(data) };
      },
      restore: async (targetId) => {
        /** @type {Answer<OperationView>} */
        const { data } = await api(restoreRoute, { method: "POST", body: body(targetId) });
        return data;
      },
      part,
      focus: localInput,
    },
    opener,
  );
  loadWindow(environment);
}

on("restore-to-time", ({ environmentId, opener }) => {
  const environment = environmentById(environmentId);
  if (environment) startRestoreToTime(environment, opener);
});
