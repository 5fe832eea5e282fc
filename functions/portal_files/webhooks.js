// @ts-check
// The webhooks of the selected environment's namespace, for its admins: where the namespace's events go
// (list, with each one's last delivery), Add Webhook (URL, events, and a signing secret made here and shown
// once), Remove. The API checks the permission and the URL regardless.

import { api, describeError, route } from "./api.js";
import { confirmAction } from "./dialogs.js";
import { byId, fill, h, say } from "./dom.js";
import { statusBadge, time } from "./format.js";
import { holds, on, selectedEnvironment } from "./state.js";
import { DeliveryStatus, Permission } from "./statuses.js";

/** @import { Answer } from "./api.js" */
/** @import { DeliveryView, Page, WebhookView } from "./types/schemas" */

const card = byId("webhooks-card");
const caption = byId("webhooks-heading");
const body = byId("webhooks-table", HTMLTableElement).tBodies[0];
const empty = byId("webhooks-empty");
const message = byId("webhooks-message");
const form = byId("webhook-form", HTMLFormElement);
const secretBox = byId("webhook-secret-box");
const secretOutput = byId("webhook-secret");

const view = { namespace: "", generation: 0 };

/** A Standard Webhooks secret: whsec_ and the base64 of 32 random bytes, made in the browser. */
function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

/** @param {DeliveryView | null} delivery */
function lastDelivery(delivery) {
  if (!delivery) return "–";
  const attempt = delivery.attempts.at(-1);
  const answer = attempt ? (attempt.statusCode ?? attempt.error ?? "no answer") : "waiting";
  const kind = delivery.status === DeliveryStatus.Delivered ? "finished" : delivery.status === DeliveryStatus.Failed ? "failed" : "processing";
  return h(
    "span",
    {},
    statusBadge(kind, delivery.status),
    ` ${delivery.eventType.replace(/^appbackups\./, "")}, ${time(attempt?.on ?? delivery.eventTime)} (${answer})`,
  );
}

/** @param {WebhookView} webhook */
function renderRow(webhook) {
  return h(
    "tr",
    {},
    h("td", { class: "nowrap" }, webhook.id),
    h("td", { class: "message-cell" }, webhook.url),
    h("td", {}, webhook.events.join(", ")),
    h("td", {}, lastDelivery(webhook.lastDelivery)),
    h(
      "td",
      {},
      h("button", { type: "button", class: "secondary small", "aria-label": `Remove webhook ${webhook.id}`, onclick: () => remove(webhook) }, "Remove"),
    ),
  );
}

async function load() {
  const environment = selectedEnvironment();
  const namespace = environment?.namespace ?? "";
  const generation = ++view.generation;
  card.hidden = !namespace || !holds(namespace, Permission.NamespaceAdmin);
  if (card.hidden) return;
  if (view.namespace !== namespace) {
    view.namespace = namespace;
    fill(body);
    secretBox.hidden = true;
  }
  fill(caption, `Webhooks of namespace ${namespace}`);
  try {
    /** @type {Answer<Page<WebhookView>>} */
    const { data } = await api(route`namespaces/${namespace}/webhooks`);
    if (generation !== view.generation) return;
    fill(body, data.items.map(renderRow));
    empty.hidden = data.items.length > 0;
    if (message.dataset.kind === "error") say(message, ""); // a failure to load is over; a "registered" stays
  } catch (error) {
    if (generation === view.generation) say(message, describeError(error), "error");
  }
}

/** @param {WebhookView} webhook */
async function remove(webhook) {
  const sure = await confirmAction({
    title: "Remove webhook",
    text: `Remove webhook ${webhook.id} (${webhook.url})? What it has not received yet is dropped.`,
    confirmLabel: "Remove",
  });
  if (!sure) return;
  try {
    await api(route`namespaces/${view.namespace}/webhooks/${webhook.id}`, { method: "DELETE" });
    say(message, `Webhook ${webhook.id} was removed.`, "success");
    await load();
  } catch (error) {
    say(message, describeError(error), "error");
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = byId("webhook-id", HTMLInputElement).value.trim();
  const url = byId("webhook-url", HTMLInputElement).value.trim();
  const events = byId("webhook-events", HTMLInputElement).value.split(",").map((item) => item.trim()).filter(Boolean);
  const secret = newSecret();
  try {
    await api(route`namespaces/${view.namespace}/webhooks/${id}`, { method: "PUT", body: { url, events: events.length ? events : ["*"], secret } });
    fill(secretOutput, secret);
    secretBox.hidden = false;
    say(message, `Webhook ${id} is registered. Give its receiver the secret below: it is shown only now.`, "success");
    form.reset();
    await load();
  } catch (error) {
    say(message, describeError(error), "error");
  }
});

on("selected", () => load());
on("changed", ({ environmentId, what }) => {
  // A job of the namespace ended or started: its event may be on its way, so the last deliveries change.
  if (environmentId === selectedEnvironment()?.id && what.has("backups")) load();
});
on("environments", () => {
  // The list or the caller changed: load again only when what this card shows would change.
  const namespace = selectedEnvironment()?.namespace ?? "";
  const shown = Boolean(namespace) && holds(namespace, Permission.NamespaceAdmin);
  if (namespace !== view.namespace || shown === card.hidden) load();
});
