// Audit log (admins): the newest state-changing calls, refreshed when jobs or clients change.
import { $, el, api, live, attempt, ago, badge, throttle, fillRows, initialData } from "./lib.js";

const data = initialData();
let entries = data.entries;

function row(e) {
  const params = JSON.stringify(e.params);
  return el("tr", {},
    el("td", { title: e.time }, ago(e.time)), el("td", {}, e.who), el("td", {}, e.peer),
    el("td", {}, e.via), el("td", {}, el("code", {}, e.method)),
    el("td", { title: params }, el("code", {}, params.length > 80 ? `${params.slice(0, 79)}…` : params)),
    el("td", { title: e.error ? e.error.message : "" }, badge(e.error ? `error ${e.error.code}` : "ok")));
}

function render() {
  fillRows($("#audit tbody"), entries, row, "no state-changing calls yet");
  $("#summary").textContent = `${entries.length} ${entries.length === 1 ? "entry" : "entries"}, newest first`;
}

async function reload() {
  const result = await attempt(() => api("audit.list", { limit: data.limit }));
  if (result) { entries = result.entries; render(); }
}
const refresh = throttle(reload, 2000);

render();
live({ jobs: refresh, clients: refresh }, refresh);
