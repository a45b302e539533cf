// Readings: one chart per sensor over the last hour, day or week (readings.query sensor/since),
// with the latest value; new readings arrive on the `readings` topic. Below, the alert rules
// (raised or not, topic `notices`); admins add and delete rules and place sensors.
import { $, el, api, post, attempt, isAdmin, fillRows, timeOf, live, throttle, initialData } from "./lib.js";
import { lineChart } from "./chart.js";

const sensors = new Map(); // name → {chart, points, latest node, unit}
const latest = initialData().latest;
let rules = initialData().rules || [];

function ruleRow(rule) {
  const remove = el("button", { class: "outline small", on: { click: async () => {
    if (await attempt(() => post("alerts.delete", { id: rule.id }), `rule ${rule.id} deleted`)) loadRules();
  } } }, "Delete");
  return el("tr", { dataset: { rule: rule.id } }, el("td", {}, rule.id), el("td", {}, rule.summary),
    el("td", {}, rule.alerting ? el("mark", {}, `raised ${timeOf(rule.since)}`) : "ok"),
    el("td", {}, rule.last_value === null ? "—" : rule.last_value), isAdmin ? el("td", {}, remove) : null);
}
function renderRules() { fillRows($("#rule-rows"), rules, ruleRow, "no alert rules"); }
async function loadRules() {
  const result = await api("alerts.list").catch(() => null);
  if (result) { rules = result.rules; renderRules(); }
}
$("#add-rule").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { kind: f.kind.value, target: f.target.value.trim(), minutes: Number(f.minutes.value) };
  if (f.kind.value !== "silent") body.value = Number(f.value.value);
  if (await attempt(() => post("alerts.create", body), (rule) => `rule ${rule.id}: ${rule.summary}`)) loadRules();
});
$("#place-sensor").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { sensor: f.sensor.value.trim() };
  if (f.tap.value.trim()) body.tap = f.tap.value.trim();
  if (f.fridge.value.trim()) body.fridge = f.fridge.value.trim();
  await attempt(() => post("sensors.place", body), `sensor ${body.sensor} placed`);
});
renderRules();

function rangeS() { return Number($("#since").value); }

function card(reading) {
  const latestNode = el("span", { class: "latest" });
  const chartNode = el("div", { class: "chart" });
  const article = el("article", { class: "sensor", dataset: { sensor: reading.sensor } },
    el("header", {}, el("strong", {}, reading.sensor), el("small", {}, `${reading.kind} · ${reading.agent || ""}`), latestNode),
    chartNode);
  $("#sensors").append(article);
  const entry = { chart: lineChart(chartNode, reading.sensor, reading.unit, rangeS), points: [], latestNode, unit: reading.unit };
  sensors.set(reading.sensor, entry);
  showLatest(entry, reading);
  return entry;
}

function showLatest(entry, reading) {
  entry.latestNode.textContent = `${reading.value} ${reading.unit || ""}`.trim();
  entry.latestNode.title = reading.time;
}

async function load(name) {
  const entry = sensors.get(name);
  const since = new Date(Date.now() - rangeS() * 1000).toISOString();
  try {
    const result = await api("readings.query", { sensor: name, since, limit: 10000 });
    entry.points = result.readings.map((r) => [Date.parse(r.time) / 1000, r.value]);
    entry.chart.set(entry.points);
  } catch { /* the banner says why */ }
}

function loadAll() { for (const name of sensors.keys()) load(name); }
const refresh = throttle(loadAll, 2000);

$("#since").addEventListener("change", loadAll);
for (const reading of latest) card(reading);
$("#no-sensors").hidden = latest.length > 0;
loadAll();
live({
  readings: (reading) => {
    const entry = sensors.get(reading.sensor) || card(reading);
    $("#no-sensors").hidden = true;
    showLatest(entry, reading);
    const cutoff = Date.now() / 1000 - rangeS();
    entry.points.push([Date.parse(reading.time) / 1000, reading.value]);
    while (entry.points.length && entry.points[0][0] < cutoff) entry.points.shift();
    entry.chart.set(entry.points);
  },
  notices: (notice) => { if (notice.event.startsWith("sensor.")) loadRules(); },
}, () => { refresh(); loadRules(); });
