// One client: its details and host facts (CPU count, memory, load from heartbeats), sleep
// schedule, blocklists, recent tasks and failures, with enable/disable/stop/restart buttons;
// reloaded with clients.get on `clients` and `tasks` events.
import { $, $$, el, api, post, live, attempt, ago, badge, isAdmin, throttle, fillRows, initialData } from "./lib.js";

let client = initialData();
const GIB = 1024 ** 3;

function hostText(h) {
  const parts = [];
  if (h.cpus !== undefined) parts.push(`${h.cpus} CPUs`);
  if (h.mem_total_bytes !== undefined) {
    const total = (h.mem_total_bytes / GIB).toFixed(1);
    parts.push(h.mem_available_bytes !== undefined
      ? `${(h.mem_available_bytes / GIB).toFixed(1)} of ${total} GiB memory free` : `${total} GiB memory`);
  }
  if (h.load) parts.push(`load ${h.load.map((v) => v.toFixed(2)).join(" ")}`);
  return parts.join(" · ") || "not reported";
}

function detail(label, value) { return el("tr", {}, el("th", { scope: "row" }, label), el("td", {}, value)); }

function render() {
  const c = client;
  const state = [badge(c.status), " ", badge(c.enabled ? "enabled" : "disabled")];
  if (c.asleep) state.push(" ", badge("asleep"));
  if (c.stopping) state.push(` · ${c.stopping.action} ordered (${c.stopping.when})`);
  $("#client-summary").replaceChildren(`${c.role} on ${c.host || "?"} · `, ...state);
  $("#details tbody").replaceChildren(
    detail("Last seen", c.online ? "now" : ago(c.last_seen)),
    detail("First seen", ago(c.first_seen)),
    detail("Slots", `${c.running.length} of ${c.slots} busy`),
    detail("Tags", c.tags.join(", ") || "none"),
    detail("Host", el("span", { id: "host-info" }, hostText(c.host_info || {}))));
  $("#schedule-state").textContent = c.schedule
    ? `${c.schedule} — ${c.asleep ? "asleep now: no new tasks" : "awake now"}` : "No schedule: it takes work at any time.";
  if (document.activeElement !== $("#schedule")) $("#schedule").value = c.schedule || "";
  fillRows($("#blocklists tbody"), c.blocklists, (b) => el("tr", {},
    el("td", {}, el("a", { href: `/jobs/${b.job_id}` }, `${b.job_id} ${b.job}`)), el("td", {}, b.failures),
    el("td", {}, b.blocked ? "yes" : "not yet")), "no job blocklists it");
  fillRows($("#history tbody"), c.tasks, (t) => el("tr", {},
    el("td", {}, t.id), el("td", {}, el("a", { href: `/jobs/${t.job_id}` }, t.job_id)), el("td", {}, t.frames || ""),
    el("td", {}, badge(t.status)), el("td", {}, t.exit_code ?? ""),
    el("td", {}, t.duration_s === null ? "" : `${t.duration_s.toFixed(2)} s`),
    el("td", { title: t.finished || "" }, t.finished ? ago(t.finished) : ""), el("td", {}, t.error || "")), "no tasks yet");
  fillRows($("#failures tbody"), c.failures, (t) => el("tr", {},
    el("td", {}, t.id), el("td", {}, el("a", { href: `/jobs/${t.job_id}` }, t.job_id)),
    el("td", {}, badge(t.status)), el("td", {}, t.exit_code ?? ""), el("td", {}, t.error || "")), "no failures");
  for (const b of $$("[data-action]")) {
    const [verb] = b.dataset.action.split("-");
    b.disabled = (verb === "enable" && c.enabled) || (verb === "disable" && !c.enabled)
      || ((verb === "stop" || verb === "restart") && (!c.online || c.role !== "worker"));
  }
}

async function reload() {
  const result = await attempt(() => api("clients.get", { name: client.name }));
  if (result) { client = result; render(); }
}
const refresh = throttle(reload, 1000);

const select = () => client.name;
const ACTIONS = {
  enable: () => post("clients.enable", { select: select() }),
  disable: () => post("clients.disable", { select: select() }),
  "stop-idle": () => post("clients.stop", { select: select(), when: "idle" }),
  "stop-now": () => post("clients.stop", { select: select(), when: "now" }),
  "restart-idle": () => post("clients.restart", { select: select(), when: "idle" }),
  "restart-now": () => post("clients.restart", { select: select(), when: "now" }),
};
for (const b of $$("[data-action]")) {
  b.addEventListener("click", async () => {
    const action = b.dataset.action;
    if (action.endsWith("-now") && !confirm(`${action.replace("-", " ")} ${client.name}? Its running tasks are killed and requeued.`)) return;
    if (await attempt(ACTIONS[action], `${action.replace("-", " ")}: ${client.name}`)) refresh();
  });
}
$("#schedule-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const schedule = $("#schedule").value.trim() || null;
  if (await attempt(() => post("clients.schedule", { select: select(), schedule }),
    (r) => (r.schedule ? `schedule: ${r.schedule}` : "schedule cleared"))) { $("#schedule").blur(); refresh(); }
});
$("#schedule-clear").addEventListener("click", async () => {
  if (await attempt(() => post("clients.schedule", { select: select(), schedule: null }), "schedule cleared")) refresh();
});

render();
setInterval(refresh, 10000); // host facts and last seen change with heartbeats, which are not events
live({
  clients: (event) => { if (event.client.name === client.name) refresh(); },
  tasks: (event) => { if (event.worker === client.name) refresh(); },
}, refresh);
