// Job detail: the job's header, its tasks (following the `tasks` topic) and a live log view of
// one task: new output is announced on `log:<task_id>` and read with tasks.log from the last
// offset, so nothing is lost or shown twice. The browser keeps at most LOG_CAP characters.
import { $, $$, el, api, post, live, attempt, badge, duration, isAdmin, throttle, fillRows, initialData } from "./lib.js";
import { previewsOf, showIn } from "./previews.js";

const LOG_CAP = 200000;
const TAIL_BYTES = 65536;
const data = initialData();
let job = data.job;
let blocked = job.blocked || null;
let tasks = data.tasks;
const tbody = $("#tasks tbody");
let stream = null;
const log = { taskId: null, offset: 0, busy: false, again: false, text: document.createTextNode("") };
$("#log").append(log.text);

function renderJob() {
  $("#job-name").textContent = job.name;
  const counts = Object.entries(job.tasks_by_status).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(", ");
  const timing = [job.elapsed_s !== null && job.elapsed_s !== undefined ? `elapsed ${duration(job.elapsed_s)}` : null,
    job.eta_s !== null && job.eta_s !== undefined && job.status === "active" ? `eta ${duration(job.eta_s)}` : null,
    job.avg_task_s !== null && job.avg_task_s !== undefined ? `${duration(job.avg_task_s)} per task` : null,
    job.tasks_per_minute ? `${job.tasks_per_minute} tasks/min` : null].filter(Boolean).join(" · ");
  $("#job-summary").replaceChildren(badge(job.status),
    ` priority ${job.priority} · ${Math.floor(job.progress)}% · ${counts}${timing ? " · " + timing : ""}`);
  $("#job-progress").value = job.progress;
  $("#job-progress").classList.toggle("failed", job.status === "failed");
  // Only jobs.get carries `blocked` (it is computed on demand): events keep the last one known.
  if ("blocked" in job) blocked = job.blocked;
  $("#job-blocked").textContent = blocked || "";
  $("#job-blocked").hidden = !blocked;
  $("#job-argv").textContent = job.argv.map((a) => (/[\s"'\\]/.test(a) || a === "" ? JSON.stringify(a) : a)).join(" ");
  if (document.activeElement !== $("#priority")) $("#priority").value = job.priority;
}

// A running task's elapsed time goes on between its events: the cell keeps the view's value
// and when it came, and the ticker below adds the time since.
function elapsedCell(task) {
  const running = task.status === "running" && task.elapsed_s !== null && task.elapsed_s !== undefined;
  return el("td", { class: "elapsed", dataset: running ? { base: task.elapsed_s, at: Date.now() } : {} },
    duration(task.elapsed_s));
}

function progressCell(task) {
  if (task.status === "queued") return el("td", {}, "");
  return el("td", {}, el("progress", { value: task.progress, max: 100, class: task.status === "failed" ? "failed" : null }),
    el("span", { class: "pct" }, ` ${Math.floor(task.progress)}%`));
}

function row(task) {
  const final = ["completed", "failed", "canceled"].includes(task.status);
  return el("tr", { dataset: { id: task.id, status: task.status }, class: task.id === log.taskId ? "selected" : null },
    el("td", {}, task.index), el("td", {}, task.frames), el("td", {}, badge(task.status)),
    el("td", {}, task.worker || ""), el("td", { class: "attempts" }, task.attempts_made ?? task.attempts),
    el("td", {}, task.exit_code ?? ""), elapsedCell(task), progressCell(task),
    el("td", { class: "why", title: task.reason || "" }, task.error || ""),
    el("td", {},
      el("button", { class: "secondary small", on: { click: () => showLog(task.id) } }, "log"),
      isAdmin && final ? el("button", { class: "secondary small", on: { click: () => requeueTask(task.id) } }, "requeue") : null));
}

function renderTasks() { fillRows(tbody, tasks, row, "no tasks"); }

let seq = 0; // bumped by every event: a fetch that raced one is followed by another
async function reload() {
  const started = seq;
  const [j, t] = await Promise.all([api("jobs.get", { job_id: job.id }), api("tasks.list", { job_id: job.id })])
    .catch(() => [null, null]);
  if (j) { job = j; tasks = t.tasks; renderJob(); renderTasks(); }
  if (log.taskId !== null) readLog();
  if (seq !== started) refresh();
}
const refresh = throttle(reload, 1000);

async function readLog() {
  if (log.busy) { log.again = true; return; }
  log.busy = true;
  const taskId = log.taskId;
  try {
    for (;;) {
      log.again = false;
      const chunk = await api("tasks.log", { task_id: taskId, offset: log.offset });
      if (taskId !== log.taskId) return; // another task was chosen meanwhile
      if (chunk.text) {
        log.text.appendData(chunk.text);
        if (log.text.length > LOG_CAP) log.text.deleteData(0, log.text.length - LOG_CAP);
        if ($("#follow").checked) $("#log").scrollTop = $("#log").scrollHeight;
      }
      log.offset = chunk.next_offset;
      if (chunk.next_offset >= chunk.size && !log.again) break;
    }
  } catch (err) {
    log.text.appendData(`\n[could not read the log: ${err.message}]\n`);
  } finally {
    log.busy = false;
    if (log.again) readLog();
  }
}

async function showLog(taskId) {
  log.taskId = taskId;
  log.text.data = "";
  const task = tasks.find((t) => t.id === taskId);
  $("#log-title").textContent = `Log of task ${task ? task.index : ""} (id ${taskId})`;
  $("#log-box").hidden = false;
  for (const tr of $$("tr.selected", tbody)) tr.classList.remove("selected");
  tbody.querySelector(`tr[data-id="${taskId}"]`)?.classList.add("selected");
  const head = await attempt(() => api("tasks.log", { task_id: taskId, offset: 0, limit: 1 }));
  log.offset = head ? Math.max(0, head.size - TAIL_BYTES) : 0;
  connect();
  readLog();
}

async function requeueTask(taskId) {
  await attempt(() => post("tasks.requeue", { task_id: taskId }), `task ${taskId} requeued`);
}

function connect() {
  if (stream) stream.close();
  const handlers = {
    jobs: (j) => { if (j.id === job.id) { seq += 1; job = j; renderJob(); refresh(); } },
    // A worker arriving, leaving or being enabled may end (or start) the job's `blocked`.
    clients: () => { if (blocked || job.tasks_by_status.queued) refresh(); },
    tasks: (t) => {
      if (t.job_id !== job.id) return;
      seq += 1;
      const i = tasks.findIndex((x) => x.id === t.id);
      if (i < 0) return refresh();
      tasks[i] = t;
      tbody.querySelector(`tr[data-id="${t.id}"]`)?.replaceWith(row(t));
    },
  };
  handlers.previews = (p) => { if (p.job_id === job.id) showIn($("#job-preview"), p); };
  if (log.taskId !== null) handlers[`log:${log.taskId}`] = () => readLog();
  stream = live(handlers, () => { refresh(); loadPreview(); });
}

for (const button of $$("[data-action]")) {
  button.addEventListener("click", async () => {
    const action = button.dataset.action;
    if (action === "cancel" && !confirm("Cancel this job?")) return;
    const view = await attempt(() => post(`jobs.${action}`, { job_id: job.id }), `job ${job.id}: ${action}`);
    if (view) { job = view; renderJob(); }
  });
}
$("#set-priority").addEventListener("click", async () => {
  const view = await attempt(() => post("jobs.set_priority", { job_id: job.id, priority: Number($("#priority").value) }),
    "priority set");
  if (view) { job = view; renderJob(); }
});

setInterval(() => {
  for (const td of $$("td.elapsed[data-at]", tbody)) {
    td.textContent = duration(Number(td.dataset.base) + (Date.now() - Number(td.dataset.at)) / 1000);
  }
}, 1000);
async function loadPreview() { showIn($("#job-preview"), (await previewsOf([job.id])).get(job.id)); }

renderJob();
renderTasks();
connect();
loadPreview();
