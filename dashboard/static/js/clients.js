// Clients: a sortable table filtered by a selector (passed to clients.list), per-row and bulk
// enable/disable, stop/restart when idle, forget offline clients (one or all offline longer
// than some days); each name links to its page (/clients/<name>); rows follow `clients`.
import { $, $$, el, api, post, live, attempt, ago, badge, isAdmin, throttle, fillRows, initialData } from "./lib.js";

const data = initialData();
let clients = data.clients;
let select = data.select;
let sortKey = "name", sortDir = 1;
const checked = new Set();
const tbody = $("#clients tbody");
$("#select").value = select === "all" ? "" : select;

function sortValue(c, key) {
  if (key === "running") return c.running.length;
  if (key === "tags") return c.tags.join(",");
  if (key === "schedule") return c.schedule || "";
  const v = c[key];
  return typeof v === "string" ? v.toLowerCase() : v;
}

function row(c) {
  const toggle = el("button", { class: "secondary small", on: { click: () => setEnabled([c.name], !c.enabled) } },
    c.enabled ? "Disable" : "Enable");
  const forget = c.online ? null : el("button", { class: "contrast small", on: { click: () => forgetClient(c.name) } }, "Forget");
  return el("tr", { dataset: { name: c.name } },
    isAdmin ? el("td", {}, el("input", { type: "checkbox", checked: checked.has(c.name), "aria-label": `check ${c.name}`,
      on: { change: (e) => { e.target.checked ? checked.add(c.name) : checked.delete(c.name); count(); } } })) : null,
    el("td", {}, el("a", { href: `/clients/${encodeURIComponent(c.name)}` }, c.name)), el("td", {}, c.role), el("td", {}, c.host || ""),
    el("td", {}, badge(c.status), c.stopping ? ` ${c.stopping.action} ${c.stopping.when === "now" ? "now" : "when idle"}` : null),
    el("td", {}, badge(c.enabled ? "yes" : "no")),
    el("td", { title: c.last_seen || "" }, ago(c.last_seen)),
    el("td", {}, c.running.length), el("td", {}, c.tags.join(", ")),
    el("td", {}, c.schedule || "", c.asleep ? [" ", badge("asleep")] : null),
    isAdmin ? el("td", {}, toggle, forget) : null);
}

function render() {
  const sorted = clients.slice().sort((a, b) => {
    const x = sortValue(a, sortKey), y = sortValue(b, sortKey);
    return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
  });
  fillRows(tbody, sorted, row, "no client matches");
  const online = clients.filter((c) => c.online).length;
  const disabled = clients.filter((c) => !c.enabled).length;
  $("#summary").textContent = `${clients.length} clients (${online} online, ${disabled} disabled)`;
  for (const th of $$("#clients th[data-key]")) {
    th.classList.toggle("asc", th.dataset.key === sortKey && sortDir === 1);
    th.classList.toggle("desc", th.dataset.key === sortKey && sortDir === -1);
  }
  count();
}

function count() {
  for (const name of [...checked]) if (!clients.some((c) => c.name === name)) checked.delete(name);
  $("#checked-count").textContent = `${checked.size} checked`;
}

let seq = 0; // bumped by every event: a fetch that raced one is followed by another
async function reload() {
  const started = seq;
  const result = await attempt(() => api("clients.list", { select }));
  if (result) { clients = result.clients; render(); }
  if (seq !== started) refresh();
}
const refresh = throttle(reload, 1000);

async function setEnabled(names, enabled) {
  if (!names.length) return;
  await attempt(() => post(enabled ? "clients.enable" : "clients.disable", { select: names.join(" ") }),
    (r) => `${enabled ? "enabled" : "disabled"}: ${r.changed.join(", ") || "no change"}`);
}

async function forgetClient(name) {
  if (!confirm(`Forget ${name}? It will reappear if it connects again.`)) return;
  if (await attempt(() => post("clients.forget", { name }), `forgot ${name}`)) refresh();
}

$("#filter").addEventListener("submit", (e) => {
  e.preventDefault();
  select = $("#select").value.trim() || "all";
  history.replaceState(null, "", select === "all" ? "/clients" : `/clients?q=${encodeURIComponent(select)}`);
  reload();
});
for (const th of $$("#clients th[data-key]")) {
  th.addEventListener("click", () => {
    sortDir = sortKey === th.dataset.key ? -sortDir : 1;
    sortKey = th.dataset.key;
    render();
  });
}
$("#check-all").addEventListener("change", (e) => {
  for (const c of clients) e.target.checked ? checked.add(c.name) : checked.delete(c.name);
  render();
});
$("#enable-checked").addEventListener("click", () => setEnabled([...checked], true));
async function stopChecked(verb) {
  const names = [...checked];
  if (!names.length) return;
  await attempt(() => post(`clients.${verb}`, { select: names.join(" "), when: "idle" }),
    (r) => `${verb} when idle: ${r.ordered.join(", ") || "no online worker"}`);
}
$("#stop-checked").addEventListener("click", () => stopChecked("stop"));
$("#restart-checked").addEventListener("click", () => stopChecked("restart"));
$("#prune").addEventListener("click", async () => {
  const days = Number($("#prune-days").value);
  if (!(days >= 0)) return;
  if (!confirm(`Forget every client offline for more than ${days} days?`)) return;
  if (await attempt(() => post("clients.prune", { offline_for_s: days * 86400 }),
    (r) => `forgot ${r.forgotten.length}: ${r.forgotten.join(", ") || "none"}`)) refresh();
});
$("#disable-checked").addEventListener("click", () => setEnabled([...checked], false));

render();
setInterval(() => { for (const row of $$("#clients tbody tr[data-name]")) {
  const c = clients.find((x) => x.name === row.dataset.name);
  if (c) row.cells[isAdmin ? 6 : 5].textContent = ago(c.last_seen);
} }, 10000);
live({
  clients: (event) => {
    seq += 1;
    const i = clients.findIndex((c) => c.name === event.client.name);
    if (i >= 0 && event.change !== "forgotten" && event.change !== "created") {
      clients[i] = event.client;
      const old = tbody.querySelector(`tr[data-name="${CSS.escape(event.client.name)}"]`);
      if (old) old.replaceWith(row(event.client)); else render();
      if (select !== "all") refresh(); // the selector may no longer match it
    } else {
      refresh(); // a client came or went: ask the master which ones the selector matches now
    }
  },
}, refresh);
