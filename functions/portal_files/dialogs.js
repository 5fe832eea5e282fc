// Modal dialogs (<dialog> with showModal): focus moves in, Escape closes, and focus returns to what opened it.

import { byId, fill } from "./dom.js";

/**
 * Open the <dialog id=…> modally. Returns an AbortSignal that aborts when the dialog closes, so work
 * watched on its behalf (polling) stops with it. `onClose` runs once when it closes.
 */
export function openDialog(id, { returnFocus = document.activeElement, onClose } = {}) {
  const dialog = byId(id);
  const closed = new AbortController();
  dialog.addEventListener(
    "close",
    () => {
      closed.abort();
      onClose?.();
      // What opened the dialog may have been drawn anew meanwhile: then its successor (same id) takes the focus.
      const target = returnFocus?.isConnected ? returnFocus : returnFocus?.id ? document.getElementById(returnFocus.id) : null;
      target?.focus();
    },
    { once: true },
  );
  if (!dialog.open) dialog.showModal();
  const first = dialog.querySelector("[autofocus]") ?? dialog.querySelector("input:not([type=hidden]):not([disabled]), select, textarea");
  first?.focus();
  return closed.signal;
}

export function closeDialog(id) {
  const dialog = byId(id);
  if (dialog.open) dialog.close();
}

// Every button marked data-close closes its dialog.
document.addEventListener("click", (event) => {
  const closer = event.target.closest?.("[data-close]");
  if (closer) closer.closest("dialog")?.close();
});

/** Ask before doing something that matters; resolves true when the user confirms. */
export function confirmAction({ title, text, confirmLabel }) {
  const dialog = byId("confirm-dialog");
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
