// What the page knows: the caller, the environments, the one selected; and a small event bus so that the
// parts of the page hear about each other's changes without importing each other.

export const state = {
  caller: null,
  environments: [],
  selectedId: "",
};

const bus = new EventTarget();

/** Listen for "environments" (the list changed), "selected" (another environment was chosen) or "changed". */
export function on(name, listener) {
  bus.addEventListener(name, (event) => listener(event.detail ?? {}));
}

export function emit(name, detail = {}) {
  bus.dispatchEvent(new CustomEvent(name, { detail }));
}

/**
 * Something changed on the server: `what` lists "backups", "activity", "environment". Parts showing that
 * environment reload what they show.
 */
export function changed(environmentId, ...what) {
  emit("changed", { environmentId, what: new Set(what) });
}

/** The signed-in caller is known (GET /api/me): parts that offer actions show what it may do. */
export function setCaller(caller) {
  state.caller = caller;
  emit("environments");
}

/**
 * Whether the caller holds every one of `permissions` in `namespace` (a namespace admin or a global admin
 * holds them all). Until the caller is known the page offers the action and the API decides.
 */
export function holds(namespace, ...permissions) {
  const caller = state.caller;
  if (!caller || caller.globalAdmin) return true;
  const granted = new Set(caller.memberships.find((membership) => membership.namespace === namespace)?.permissions ?? []);
  return granted.has("NamespaceAdmin") || permissions.every((permission) => granted.has(permission));
}

export function environmentById(id) {
  return state.environments.find((environment) => environment.id === id) ?? null;
}

export function selectedEnvironment() {
  return environmentById(state.selectedId);
}

/** Put a fresh copy of one environment in the list (after a GET, a stop or a start). */
export function updateEnvironment(environment) {
  const index = state.environments.findIndex((existing) => existing.id === environment.id);
  if (index === -1) state.environments.push(environment);
  else state.environments[index] = { ...state.environments[index], ...environment };
  emit("environments");
}

export function setEnvironments(environments) {
  state.environments = environments;
  emit("environments");
}

export function select(id) {
  if (state.selectedId === id) return;
  state.selectedId = id;
  emit("selected", { environmentId: id });
}
