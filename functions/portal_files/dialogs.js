// @ts-check
// Modal dialogs (<dialog> with showModal): focus moves in, Escape closes, and focus returns to what opened it.

import { byId, fill } from "./dom.js";

/**
 * Open the <dialog id=…> modally. Returns an AbortSignal that aborts when the dialog closes, so work
 * watched on its behalf (polling) stops with it. `onClose` runs once when it closes.
 * @param {string} id
 * @param {{ returnFocus?: Element | null, onClose?: () => void }} [options]
 * @returns {AbortSignal}
 */
export function openDialog(id, { returnFocus = document.activeElement, onClose } = {}) {
  const dialog = byId(id, HTMLDialogElement);
  const closed = new AbortController();
  dialog.addEventListener(
    "close",
    () => {
      closed.abort();
      onClose?.();
      // What opened the dialog may have been drawn anew meanwhile: then its successor (same id) takes the focus.
      const target = returnFocus?.isConnected ? returnFocus : returnFocus?.id ? document.getElementById(returnFocus.id) : null;
      if (target instanceof HTMLElement) target.focus();
    },
    { once: true },
  );
  if (!dialog.open) dialog.showModal();
  const first = dialog.querySelector("[autofocus]") ?? dialog.querySelector("input:not([type=hidden]):not([disabled]), select, textarea");
  if (first instanceof HTMLElement) first.focus();
  return closed.signal;
}

/** @param {string} id */
export function closeDialog(id) {
  const dialog = byId(id, HTMLDialogElement);
  if (dialog.open) dialog.close();
}

// Every button marked data-close closes its dialog.
document.addEventListener("click", (event) => {
  const closer = event.target instanceof Element ? event.target.closest("[data-close]") : null;
  if (closer) closer.closest("dialog")?.close();
});

/**
 * Ask before doing something that matters; resolves true when the user confirms.
 * @param {{ title: string, text: string, confirmLabel: string }} question
 * @returns {Promise<boolean>}
 */
export function confirmAction({ title, text, confirmLabel }) {
  const dialog = byId("confirm-dialog", HTMLDialogElement);
  const confirm = byId("confirm-accept");
  fill(byId("confirm-title"), title);
  fill(byId("confirm-text"), text);
  fill(confirm, confirmLabel);
  return new Promise((resolve) => {
    let accepted = false;
    const accept = () => {
      accepted = true;
      dialog.close();
    };
    confirm.addEventListener("click", accept, { once: true });
    openDialog("confirm-dialog", {
      onClose: () => {
        confirm.removeEventListener("click", accept);
        resolve(accepted);
      },
    });
    byId("confirm-cancel").focus();
  });
}
