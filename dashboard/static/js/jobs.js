// Jobs: a server-side paginated table with a status filter, progress bars and actions (also in
// bulk), and the submit form. Rows on the page follow the `jobs` topic.
import { $, $$, el, api, post, live, attempt, ago, badge, duration, isAdmin, throttle, fillRows, initialData } from "./lib.js";
import { previewsOf, thumb } from "./previews.js";

const data = initialData();
const state = { status: data.status || "", limit: data.limit, offset: data.offset, total: data.total };
let jobs = data.jobs;
const checked = new Set();
const tbody = $("#jobs tbody");
$("#status").value = state.status;

const ACTIONS = {
  pause: (j) => j.status === "queued" || j.status === "active",
  resume: (j) => j.status === "paused",
  requeue: (j) => j.tasks_by_status.failed + j.tasks_by_status.canceled > 0,
  cancel: (j) => !["completed", "failed", "canceled"].includes(j.status),
};

function progressCell(job) {
  // A failed job's bar is red; an active one says how long it has run and is expected to run.
  const timing = job.status === "active" && job.elapsed_s !== null && job.elapsed_s !== undefined
    ? ` · ${duration(job.elapsed_s)}${job.eta_s === null || job.eta_s === undefined ? "" : `, ${duration(job.eta_s)} left`}` : "";
  return el("td", {}, el("progress", { value: job.progress, max: 100, dataset: { job: job.id },
    class: job.status === "failed" ? "failed" : null }),
    el("span", { class: "pct" }, ` ${Math.floor(job.progress)}%${timing}`));
}

function row(job) {
  const done = job.tasks_by_status.completed;
  const actions = Object.entries(ACTIONS).filter(([, ok]) => ok(job)).map(([name]) =>
    el("button", { class: name === "cancel" ? "contrast small" : "secondary small",
      on: { click: () => act(name, [job.id]) } }, name));
  return el("tr", { dataset: { id: job.id } },
    isAdmin ? el("td", {}, el("input", { type: "checkbox", checked: checked.has(job.id), "aria-label": `check job ${job.id}`,
      on: { change: (e) => { e.target.checked ? checked.add(job.id) : checked.delete(job.id); count(); } } })) : null,
    el("td", {}, el("a", { href: `/jobs/${job.id}` }, job.id)),
    el("td", {}, el("a", { href: `/jobs/${job.id}` }, job.name)),
    el("td", {}, badge(job.status)), progressCell(job), el("td", {}, job.priority),
    el("td", {}, `${done} / ${job.tasks_total}`), el("td", { title: job.created }, ago(job.created)),
    isAdmin ? el("td", {}, actions) : null);
}

function render() {
  fillRows(tbody, jobs, row, "no jobs");
  const first = state.total ? state.offset + 1 : 0;
  const last = Math.min(state.offset + jobs.length, state.total);
  $("#page-info").textContent = `${first}–${last} of ${state.total}`;
  $("#prev").disabled = state.offset === 0;
  $("#next").disabled = state.offset + state.limit >= state.total;
  count();
}

function count() { $("#checked-count").textContent = `${checked.size} checked`; }

let seq = 0; // bumped by every event: a fetch that raced one is followed by another
async function reload() {
  const started = seq;
  const params = { limit: state.limit, offset: state.offset, status: state.status };
  const result = await attempt(() => api("jobs.list", params));
  if (!result) return;
  jobs = result.jobs;
  state.total = result.total;
  render();
  const query = new URLSearchParams();
  if (state.status) query.set("status", state.status);
  if (state.offset) query.set("offset", state.offset);
  history.replaceState(null, "", `/jobs${query.toString() ? "?" + query : ""}`);
  if (seq !== started) refresh();
}
const refresh = throttle(reload, 1000);

async function act(action, ids) {
  if (!ids.length) return;
  if (action === "cancel" && !confirm(`Cancel ${ids.length} job(s)?`)) return;
  if (action === "delete" && !confirm(`Delete ${ids.length} finished job(s) with their tasks and logs?`)) return;
  const result = await attempt(() => post("jobs.bulk", { action, job_ids: ids }));
  if (!result) return;
  const failed = result.results.filter((r) => !r.ok);
  if (failed.length) attempt(() => { throw new Error(failed.map((r) => `job ${r.job_id}: ${r.error}`).join("; ")); });
  else attempt(async () => 0, `${action}: ${ids.length} job(s)`);
  if (action === "delete") for (const r of result.results) if (r.ok) checked.delete(r.job_id);
  refresh();
}

$("#status").addEventListener("change", () => { state.status = $("#status").value; state.offset = 0; reload(); });
$("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); reload(); });
$("#next").addEventListener("click", () => { state.offset += state.limit; reload(); });
$("#check-all").addEventListener("change", (e) => {
  for (const job of jobs) e.target.checked ? checked.add(job.id) : checked.delete(job.id);
  render();
});
for (const button of $$("[data-bulk]")) button.addEventListener("click", () => act(button.dataset.bulk, [...checked]));

$("#submit").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  const body = {
    name: form.name.value.trim(),
    argv: form.argv.value.split("\n").map((s) => s.replace(/\r$/, "")).filter((s) => s !== ""),
  };
  if (form.frames.value.trim()) body.frames = form.frames.value.trim();
  if (form.chunk.value) body.chunk = Number(form.chunk.value);
  if (form.priority.value) body.priority = Number(form.priority.value);
  const tags = form.tags.value.split(",").map((s) => s.trim()).filter(Boolean);
  if (tags.length) body.tags = tags;
  const result = await attempt(() => post("jobs.submit", body), (r) => `job ${r.job_id} submitted (${r.tasks} tasks)`);
  if (result) { form.name.value = ""; state.offset = 0; reload(); }
});

// Previews: a small image in each row's name cell, put in whenever rows change (previews.js).
const previews = new Map();
let askedFor = "";
function decorate() {
  for (const tr of tbody.rows) {
    const id = Number(tr.dataset.id);
    const links = tr.querySelectorAll(`a[href="/jobs/${id}"]`);
    if (!id || !links.length) continue;
    const cell = links[links.length - 1].parentElement;
    const old = cell.querySelector(".thumb");
    const p = previews.get(id);
    if (old && old.dataset.version === String(p?.version)) continue;
    old?.remove();
    if (p) cell.prepend(thumb(p));
  }
  const ids = jobs.map((j) => j.id).join(",");
  if (ids !== askedFor) {
    askedFor = ids;
    previewsOf(jobs.map((j) => j.id)).then((found) => { for (const [id, p] of found) previews.set(id, p); decorate(); });
  }
}
new MutationObserver(decorate).observe(tbody, { childList: true });

render();
live({
  previews: (p) => { if (jobs.some((j) => j.id === p.job_id)) { previews.set(p.job_id, p); decorate(); } },
  jobs: (job) => {
    seq += 1;
    const i = jobs.findIndex((j) => j.id === job.id);
    if (i >= 0) {
      jobs[i] = job;
      tbody.querySelector(`tr[data-id="${job.id}"]`)?.replaceWith(row(job));
      if (state.status && job.status !== state.status) refresh();
    } else if (state.offset === 0 && (!jobs.length || job.id > jobs[0].id)) {
      refresh(); // a new job belongs on the first page
    }
  },
}, refresh);
