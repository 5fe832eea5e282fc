// @ts-check
// Building DOM without innerHTML: text is always text, never markup.

/**
 * What h() and fill() take as children: nodes, text and numbers, or arrays of them; null, undefined and false
 * are left out.
 * @typedef {Node | string | number | boolean | null | undefined} Leaf
 * @typedef {Leaf | Leaf[]} Child
 */

/**
 * Attribute values: false, null and undefined leave the attribute out, true sets it empty; "on…" take a
 * listener, "dataset" an object of data- values.
 * @typedef {Record<string, unknown>} Attributes
 */

/**
 * h("button", { type: "button", class: "primary", onclick: fn, "aria-label": "…" }, "Text", child, …)
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes | null} [attributes]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

/**
 * @param {Element} element
 * @param {Child[]} children
 */
function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

/**
 * Replace an element's content.
 * @template {Element} E
 * @param {E} element
 * @param {...Child} children
 * @returns {E}
 */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/**
 * The page's element with this id, of the kind given (HTMLElement unless told): byId("pin-date", HTMLInputElement).
 * @template {HTMLElement} [E=HTMLElement]
 * @param {string} id
 * @param {{ new (): E, prototype: E }} [kind]
 * @returns {E}
 */
export function byId(id, kind) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`The page has no element #${id}.`);
  const expected = kind ?? HTMLElement;
  if (!(element instanceof expected)) throw new Error(`The page's #${id} is not a ${expected.name}.`);
  return /** @type {E} */ (element);
}

/**
 * Show a message in a live region; kind is "error", "success" or "info". Empty text hides it.
 * @param {HTMLElement} element
 * @param {string | null | undefined} text
 * @param {"error" | "success" | "info"} [kind]
 */
export function say(element, text, kind = "info") {
  element.textContent = text ?? "";
  element.dataset.kind = kind;
  element.hidden = !text;
}
