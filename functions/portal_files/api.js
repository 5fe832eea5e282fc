// @ts-check
// Talking to the appbackups API: fetch with the optional function key, and problem+json turned into words.

import { isAbort } from "./poller.js";

/** @import { FieldError, Page, Problem } from "./types/schemas" */

/**
 * What the API answered: `data` is the parsed JSON body (null for 204 or a body that is not JSON). Callers name
 * its type with a JSDoc type tag of Answer<BackupView> (types/schemas) on the variable they destructure.
 * @template T
 * @typedef {{ status: number, headers: Headers, data: T }} Answer
 */

/**
 * @typedef {object} ApiOptions
 * @property {string} [method]
 * @property {unknown} [body]  sent as JSON
 * @property {Record<string, string | number | boolean | null | undefined>} [query]  empty values are left out
 * @property {AbortSignal} [signal]
 */

const FUNCTION_KEY = "appbackups.functionKey";

/** The API's root, from the page's own address (/api/portal → /api/), so no host or prefix is hard-coded. */
const apiRoot = new URL("./", window.location.href);

export function functionKey() {
  return window.sessionStorage.getItem(FUNCTION_KEY) ?? "";
}

/** @param {string} key */
export function setFunctionKey(key) {
  if (key) window.sessionStorage.setItem(FUNCTION_KEY, key);
  else window.sessionStorage.removeItem(FUNCTION_KEY);
}

/**
 * A route with its variable parts URL-encoded: route`environments/${id}/backups`.
 * @param {TemplateStringsArray} strings
 * @param {...string} values
 */
export function route(strings, ...values) {
  return strings.reduce((path, part, index) => path + part + (index < values.length ? encodeURIComponent(values[index]) : ""), "");
}

/** An answer of the API that was not a success: the problem document's fields, or what could be told. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {Partial<Problem>} problem
   */
  constructor(status, problem) {
    const detail = problem.detail || problem.title || `The API answered ${status}.`;
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.title = problem.title ?? "";
    this.detail = detail;
    this.code = problem.code ?? "";
    /** @type {FieldError[]} */
    this.fieldErrors = Array.isArray(problem.errors) ? problem.errors : [];
    this.problem = problem;
  }
}

/**
 * @param {Response} response
 * @returns {Promise<Partial<Problem>>}
 */
async function problemOf(response) {
  const type = response.headers.get("Content-Type") ?? "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      // fall through: a body that is not JSON after all
    }
  }
  /** @type {Record<number, string>} */
  const reasons = {
    401: "The API refused the request (401 Unauthorized): you are not signed in, or it needs a function key.",
    403: "The API refused the request: the function key or your permissions do not allow it.",
    404: "The API has no such route or item.",
    502: "The API's host did not answer (bad gateway).",
    503: "The API is unavailable right now.",
    504: "The API did not answer in time.",
  };
  return { title: response.statusText, detail: reasons[response.status] ?? `The API answered ${response.status} ${response.statusText}.` };
}

/**
 * Call the API. `path` is relative to /api/ ("environments") or absolute ("/api/restores/…", as in Location headers).
 * Resolves to { status, headers, data }; rejects with ApiError for 4xx/5xx, or with the fetch error when
 * the API could not be reached.
 * @template [T=unknown]
 * @param {string} path
 * @param {ApiOptions} [options]
 * @returns {Promise<Answer<T>>}
 */
export async function api(path, { method = "GET", body, query, signal } = {}) {
  const url = new URL(path, apiRoot);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json, application/problem+json" };
  const key = functionKey();
  if (key) headers["x-functions-key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (error) {
    if (isAbort(error)) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`The API could not be reached (${reason}). Check the connection and try again.`, { cause: error });
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const type = response.headers.get("Content-Type") ?? "";
  const data = response.status === 204 || !type.includes("json") ? null : await response.json();
  return { status: response.status, headers: response.headers, data };
}

/**
 * The first `pages` pages of a paged list, and the token of the page after them (null at the end).
 * @template T
 * @param {string} path
 * @param {number} pageSize
 * @param {number} pages
 * @param {AbortSignal} [signal]
 * @returns {Promise<{ items: T[], token: string | null, pages: number }>}
 */
export async function firstPages(path, pageSize, pages, signal) {
  /** @type {T[]} */
  const items = [];
  /** @type {string | null} */
  let token = null;
  let fetched = 0;
  do {
    /** @type {Answer<Page<T>>} */
    const { data } = await api(path, { query: { limit: pageSize, continuationToken: token }, signal });
    items.push(...data.items);
    token = data.continuationToken ?? null;
    fetched += 1;
  } while (token && fetched < pages);
  return { items, token, pages: fetched };
}

/**
 * Every page of a paged list ({items, continuationToken}).
 * @template T
 * @param {string} path
 * @param {ApiOptions["query"]} [query]
 * @returns {Promise<T[]>}
 */
export async function allPages(path, query = {}) {
  /** @type {T[]} */
  const items = [];
  /** @type {string | null | undefined} */
  let token;
  do {
    /** @type {Answer<Page<T>>} */
    const { data } = await api(path, { query: { ...query, continuationToken: token } });
    items.push(...data.items);
    token = data.continuationToken;
  } while (token);
  return items;
}

/**
 * What went wrong, in words: the problem's detail and any field errors it does not already name.
 * @param {unknown} error
 */
export function describeError(error) {
  if (error instanceof ApiError) {
    const extra = error.fieldErrors
      .filter((field) => !error.detail.includes(field.message))
      .map((field) => `${field.field}: ${field.message}`);
    let text = [error.detail, ...extra].join(" ");
    if (error.status === 401 && !functionKey()) text += " If this app runs in Azure, enter its function key with the Function key button at the top right.";
    return text;
  }
  if (isAbort(error)) return "Cancelled.";
  return (error instanceof Error && error.message) || String(error);
}
