// Overview: clients by role, jobs by status, tasks running, throughput, recent events.
import { $, el, api, live, throttle, timeOf, badge } from "./lib.js";
import { lineChart } from "./chart.js";
import { showIn } from "./previews.js";

const chart = lineChart($("#throughput-chart"), "tasks/min", "", () => 3600);

function render(data) {
  const clients = data.status.clients;
  $("#clients-online").textContent = `${clients.online} / ${clients.total}`;
  $("#clients-by-role").replaceChildren(...Object.entries(clients.by_role).map(([role, c]) =>
    el("li", {}, el("span", {}, role), el("span", {}, `${c.online} / ${c.total}`))));
  $("#jobs-by-status").replaceChildren(...Object.entries(data.jobs_by_status).map(([status, n]) =>
    el("li", {}, badge(status), el("span", { dataset: { status } }, n))));
  $("#tasks-running").textContent = data.status.farm.tasks_in_flight;
  const master = data.status.master || {};
  $("#master-listen").textContent = data.status.listen;
  $("#master-role").textContent = master.role || "active";
  $("#master-holder").textContent = master.last_takeover
    ? `${master.holder}, active since ${timeOf(master.last_takeover)}`
    : master.standby_capable ? master.holder || "" : "single master (SQLite)";
  $("#tasks-completed").textContent = `${data.status.farm.tasks_completed_total} completed since the master started`;
  chart.set(data.throughput);
  $("#events").replaceChildren(...data.events.slice().reverse().map(eventRow));
}

// The "Last rendered" tile: the newest preview of any job (jobs.previews), linking to its job.
async function loadRendered() {
  try { showRendered((await api("jobs.previews", { limit: 1 })).previews[0]); } catch { /* banner */ }
}
function showRendered(p) {
  if (!p) return;
  const tile = $("#last-rendered");
  showIn(tile.querySelector("figure"), p);
  tile.querySelector("a").href = `/jobs/${p.job_id}`;
  tile.querySelector("small").hidden = true;
}

function eventRow(event) {
  const source = [event.agent, event.source].filter(Boolean).join(" ");
  return el("tr", {}, el("td", {}, timeOf(event.time)), el("td", {}, source || "agent"), el("td", {}, event.text));
}

function addRow(row) {
  const body = $("#events");
  body.prepend(row);
  while (body.rows.length > 50) body.deleteRow(-1);
}

const jobStatus = new Map();
function farmEvent(source, text) {
  addRow(el("tr", {}, el("td", {}, new Date().toLocaleTimeString()), el("td", {}, source), el("td", {}, text)));
}

const refresh = throttle(async () => {
  try { render(await api("overview")); } catch { /* the banner says why */ }
}, 2000);

render(JSON.parse(document.getElementById("initial-data").textContent));
loadRendered();
live({
  clients: (event) => { farmEvent("client", `${event.client.name} ${event.change}`); refresh(); },
  jobs: (job) => {
    if (jobStatus.get(job.id) !== job.status) farmEvent("job", `job ${job.id} (${job.name}) ${job.status}`);
    jobStatus.set(job.id, job.status);
    if (jobStatus.size > 5000) jobStatus.delete(jobStatus.keys().next().value);
    refresh();
  },
  throughput: refresh,
  previews: showRendered,
  events: (event) => addRow(eventRow(event)),
}, () => { refresh(); loadRendered(); });
