// @ts-check
// What the page knows: the caller, the environments, the one selected; and a small event bus so that the
// parts of the page hear about each other's changes without importing each other.

import { Permission } from "./statuses.js";

/** @import { CallerView, EnvironmentView, Permission as PermissionName } from "./types/schemas" */

/**
 * What "changed" tells: which environment, and which of its parts.
 * @typedef {"backups" | "activity" | "environment"} Part
 * @typedef {{ environmentId: string, what: Set<Part> }} Changed
 */

/**
 * The page's events and what each carries.
 * @typedef {object} Events
 * @property {{}} environments  the list, or the caller, changed
 * @property {{ environmentId: string }} selected  another environment was chosen
 * @property {Changed} changed  something changed on the server
 * @property {{ text: string, kind: "error" | "success" | "info" }} notice  a message for the backups list
 * @property {{ restoreId: string }} follow-restore  open the restore dialog on a running restore
 * @property {{ environmentId: string, opener: HTMLElement }} restore-to-time  open the dialog that restores it to an instant
 */

/** @type {{ caller: CallerView | null, environments: EnvironmentView[], selectedId: string }} */
export const state = {
  caller: null,
  environments: [],
  selectedId: "",
};

const bus = new EventTarget();

/**
 * Listen for "environments" (the list changed), "selected" (another environment was chosen) or "changed".
 * @template {keyof Events} N
 * @param {N} name
 * @param {(detail: Events[N]) => void} listener
 */
export function on(name, listener) {
  bus.addEventListener(name, (event) => listener(/** @type {CustomEvent<Events[N]>} */ (event).detail));
}

/**
 * @template {keyof Events} N
 * @param {N} name
 * @param {Events[N]} detail
 */
export function emit(name, detail) {
  bus.dispatchEvent(new CustomEvent(name, { detail }));
}

/**
 * Something changed on the server: `what` lists "backups", "activity", "environment". Parts showing that
 * environment reload what they show.
 * @param {string} environmentId
 * @param {...Part} what
 */
export function changed(environmentId, ...what) {
  emit("changed", { environmentId, what: new Set(what) });
}

/**
 * The signed-in caller is known (GET /api/me): parts that offer actions show what it may do.
 * @param {CallerView} caller
 */
export function setCaller(caller) {
  state.caller = caller;
  emit("environments", {});
}

/**
 * Whether the caller holds every one of `permissions` in `namespace` (a namespace admin or a global admin
 * holds them all). Until the caller is known the page offers the action and the API decides.
 * @param {string} namespace
 * @param {...PermissionName} permissions
 */
export function holds(namespace, ...permissions) {
  const caller = state.caller;
  if (!caller || caller.globalAdmin) return true;
  const granted = new Set(caller.memberships.find((membership) => membership.namespace === namespace)?.permissions ?? []);
  return granted.has(Permission.NamespaceAdmin) || permissions.every((permission) => granted.has(permission));
}

/**
 * @param {string | null | undefined} id
 * @returns {EnvironmentView | null}
 */
export function environmentById(id) {
  return state.environments.find((environment) => environment.id === id) ?? null;
}

export function selectedEnvironment() {
  return environmentById(state.selectedId);
}

/**
 * Put a fresh copy of one environment in the list (after a GET, a stop or a start).
 * @param {EnvironmentView} environment
 */
export function updateEnvironment(environment) {
  const index = state.environments.findIndex((existing) => existing.id === environment.id);
  if (index === -1) state.environments.push(environment);
  else state.environments[index] = { ...state.environments[index], ...environment };
  emit("environments", {});
}

/** @param {EnvironmentView[]} environments */
export function setEnvironments(environments) {
  state.environments = environments;
  emit("environments", {});
}

/** @param {string} id */
export function select(id) {
  if (state.selectedId === id) return;
  state.selectedId = id;
  emit("selected", { environmentId: id });
}
