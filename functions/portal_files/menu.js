// @ts-check
// The "More Options" menu button (WAI-ARIA menu button pattern): Enter, Space or the arrow keys open it,
// the arrow keys, Home and End move through it, a letter jumps to an item, Escape closes it and returns to
// the button, Tab closes it and moves on.

import { h } from "./dom.js";

/**
 * One item of a menu: what it says, what it does (given the menu's button, to return the focus to), and why
 * it cannot be chosen now ("" or absent when it can).
 * @typedef {{ label: string, onSelect: (opener: HTMLButtonElement) => void, disabledReason?: string }} MenuItem
 */

/** @type {{ button: HTMLButtonElement, list: HTMLUListElement, wrapper: HTMLDivElement } | null} */
let openMenu = null;
let menuCount = 0;

/** @param {{ focusButton?: boolean }} [options] */
function closeOpenMenu({ focusButton = false } = {}) {
  if (!openMenu) return;
  const { button, list } = openMenu;
  list.hidden = true;
  button.setAttribute("aria-expanded", "false");
  openMenu = null;
  if (focusButton) button.focus();
}

document.addEventListener("pointerdown", (event) => {
  if (openMenu && !(event.target instanceof Node && openMenu.wrapper.contains(event.target))) closeOpenMenu();
});
// The menu is placed by the viewport (so no scrolling container clips it): it closes when the page moves.
window.addEventListener("resize", () => closeOpenMenu());
document.addEventListener("scroll", (event) => {
  if (openMenu && !(event.target instanceof Node && openMenu.list.contains(event.target))) closeOpenMenu();
}, true);

/**
 * Below the button, right-aligned with it; above it when there is no room below.
 * @param {HTMLElement} button
 * @param {HTMLElement} list
 */
function place(button, list) {
  const anchor = button.getBoundingClientRect();
  const width = list.offsetWidth;
  const height = list.offsetHeight;
  const left = Math.max(8, Math.min(anchor.right - width, window.innerWidth - width - 8));
  const below = anchor.bottom + 4;
  const top = below + height > window.innerHeight - 8 && anchor.top - height - 4 > 8 ? anchor.top - height - 4 : below;
  list.style.left = `${left}px`;
  list.style.top = `${top}px`;
}

function dotsIcon() {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "20");
  svg.setAttribute("height", "20");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const cx of [5, 12, 19]) {
    const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    dot.setAttribute("cx", String(cx));
    dot.setAttribute("cy", "12");
    dot.setAttribute("r", "2");
    svg.append(dot);
  }
  return svg;
}

/**
 * A menu button. `label` is the button's accessible name ("More Options for the backup of …"); `items` is
 * a function returning [{ label, onSelect, disabledReason }] each time the menu opens, so the items follow
 * the latest state of what they act on.
 * @param {string} label
 * @param {() => MenuItem[]} items
 */
export function menuButton(label, items) {
  menuCount += 1;
  const id = `menu-${menuCount}`;
  const button = h(
    "button",
    { type: "button", class: "icon-button menu-button", "aria-haspopup": "menu", "aria-expanded": "false", "aria-controls": id, "aria-label": label, title: "More Options" },
    dotsIcon(),
  );
  const list = h("ul", { class: "menu", role: "menu", id, "aria-label": "More Options", hidden: true });
  const wrapper = h("div", { class: "menu-wrapper" }, button, list);

  const menuItems = () => [...list.querySelectorAll('[role="menuitem"]')].filter((entry) => entry instanceof HTMLElement);

  function render() {
    list.replaceChildren(
      ...items().map((item) =>
        h(
          "li",
          { role: "none" },
          h(
            "button",
            {
              type: "button",
              role: "menuitem",
              tabindex: "-1",
              "aria-disabled": item.disabledReason ? "true" : null,
              title: item.disabledReason || null,
              onclick: () => {
                if (item.disabledReason) return;
                closeOpenMenu({ focusButton: true });
                item.onSelect(button);
              },
            },
            h("span", {}, item.label),
            item.disabledReason ? h("span", { class: "visually-hidden" }, ` (${item.disabledReason})`) : null,
          ),
        ),
      ),
    );
  }

  /** @param {"first" | "last"} focus */
  function open(focus = "first") {
    if (openMenu && openMenu.list !== list) closeOpenMenu();
    render();
    list.hidden = false;
    place(button, list);
    button.setAttribute("aria-expanded", "true");
    openMenu = { button, list, wrapper };
    const entries = menuItems();
    (focus === "last" ? entries.at(-1) : entries[0])?.focus();
  }

  button.addEventListener("click", () => {
    if (openMenu?.list === list) closeOpenMenu();
    else open();
  });
  button.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      open(event.key === "ArrowUp" ? "last" : "first");
    }
  });
  list.addEventListener("keydown", (event) => {
    const entries = menuItems();
    const index = entries.findIndex((entry) => entry === document.activeElement);
    /** @param {number} to */
    const move = (to) => {
      event.preventDefault();
      entries[(to + entries.length) % entries.length]?.focus();
    };
    switch (event.key) {
      case "ArrowDown":
        move(index + 1);
        break;
      case "ArrowUp":
        move(index - 1);
        break;
      case "Home":
        move(0);
        break;
      case "End":
        move(entries.length - 1);
        break;
      case "Escape":
        event.preventDefault();
        event.stopPropagation();
        closeOpenMenu({ focusButton: true });
        break;
      case "Tab":
        closeOpenMenu();
        break;
      default:
        if (event.key.length === 1 && /\S/.test(event.key)) {
          const letter = event.key.toLowerCase();
          const order = [...entries.slice(index + 1), ...entries.slice(0, index + 1)];
          const match = order.find((entry) => (entry.textContent ?? "").trim().toLowerCase().startsWith(letter));
          if (match) {
            event.preventDefault();
            match.focus();
          }
        }
    }
  });
  return { element: wrapper, button, isOpen: () => openMenu?.list === list };
}
