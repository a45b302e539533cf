// Webhooks (admins): create and delete webhooks; each one's counts, last status code, latency
// and error, and the delivery log. Refreshed when jobs or clients change, and every 5 s.
import { $, $$, el, api, post, live, attempt, ago, badge, throttle, fillRows, initialData } from "./lib.js";

let hooks = initialData().webhooks;
const ms = (v) => (v === null || v === undefined ? "" : `${v.toFixed(1)} ms`);

function hookRow(h) {
  return el("tr", { "data-id": String(h.id) },
    el("td", {}, String(h.id)), el("td", {}, el("code", {}, h.url)), el("td", {}, h.events.join(", ")),
    el("td", {}, h.has_secret ? "yes" : "no"), el("td", {}, String(h.delivered)),
    el("td", {}, String(h.failed)), el("td", {}, String(h.dropped)), el("td", {}, String(h.queued)),
    el("td", { class: "last-status" }, h.last_status === null ? (h.last_time ? "no answer" : "") : String(h.last_status)),
    el("td", {}, ms(h.last_latency_ms)), el("td", { class: "last-error" }, h.last_error || ""),
    el("td", {}, el("button", { class: "contrast small", on: { click: () => remove(h) } }, "delete")));
}

function deliveryRow([h, d]) {
  return el("tr", {},
    el("td", {}, String(h.id)), el("td", { title: d.time }, ago(d.time)), el("td", {}, d.event),
    el("td", {}, badge(d.state)), el("td", {}, String(d.attempts)),
    el("td", {}, d.status_code === null ? "" : String(d.status_code)), el("td", {}, ms(d.latency_ms)),
    el("td", {}, d.error || ""), el("td", { title: d.next_try || "" }, d.next_try ? new Date(d.next_try).toLocaleTimeString() : ""));
}

function render() {
  fillRows($("#webhooks tbody"), hooks, hookRow, "no webhooks");
  const log = hooks.flatMap((h) => h.recent.map((d) => [h, d])).sort((a, b) => b[1].id - a[1].id);
  fillRows($("#deliveries tbody"), log, deliveryRow, "no deliveries yet");
}

async function reload() {
  const result = await attempt(() => api("webhooks.list"));
  if (result) { hooks = result.webhooks; render(); }
}
const refresh = throttle(reload, 1000);

async function remove(h) {
  if (!confirm(`Delete webhook ${h.id} (${h.url}) and its delivery log?`)) return;
  if (await attempt(() => post("webhooks.delete", { id: h.id }), `webhook ${h.id} deleted`)) reload();
}

$("#webhook-create").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { url: f.url.value.trim(), events: $$("#webhook-events input:checked").map((box) => box.value) };
  if (f.secret.value) body.secret = f.secret.value;
  const created = await attempt(() => post("webhooks.create", body), "webhook created");
  if (created) { f.url.value = ""; f.secret.value = ""; reload(); }
});

render();
live({ jobs: refresh, clients: refresh }, refresh);
setInterval(refresh, 5000);
