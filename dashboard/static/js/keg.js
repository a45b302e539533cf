// One keg: its beverage and level, volume by weekday and by drinker (uPlot bar charts), the
// temperature of the sensors placed at its tap since it was started, and its pours.
import { $, el, api, ml, timeOf, fillRows, initialData } from "./lib.js";
import { barChart, lineChart } from "./chart.js";

const { keg, stats, pours, sensors } = initialData();
const fact = (label, value) => el("article", { class: "total" }, el("small", {}, label), el("h2", {}, value));
const swatch = el("span", { class: "srm" });
if (keg.srm_colour) { swatch.style.background = keg.srm_colour; $("#keg-title").prepend(swatch, " "); }
$("#keg-facts").replaceChildren(
  fact("Remaining", `${ml(keg.remaining_ml)} of ${ml(keg.volume_ml)}`),
  fact("Style", [keg.style, keg.abv !== null ? `${keg.abv}% ABV` : null, keg.ibu !== null ? `${keg.ibu} IBU` : null].filter(Boolean).join(" · ") || "—"),
  fact("Pours", stats.total_pours), fact("On tap", `${keg.tap}${keg.ended ? " (ended)" : ""}`));
const days = Object.keys(stats.volume_by_weekday);
barChart($("#by-weekday"), days, days.map((d) => stats.volume_by_weekday[d]));
const drinkers = Object.keys(stats.volume_by_drinker);
barChart($("#by-drinker"), drinkers, drinkers.map((d) => stats.volume_by_drinker[d]));
fillRows($("#pours"), pours, (p) => el("tr", { dataset: { pour: p.id } }, el("td", {}, `${new Date(p.end).toLocaleDateString()} ${timeOf(p.end)}`),
  el("td", {}, p.username ? el("a", { href: `/people/${encodeURIComponent(p.username)}` }, p.username) : "guest"),
  el("td", {}, p.spill ? `${ml(p.volume_ml)} (spill)` : ml(p.volume_ml))), "no pours");

async function temperatures() {
  $("#no-temperature").hidden = sensors.length > 0;
  const since = Date.parse(keg.started) / 1000;
  const until = keg.ended ? Date.parse(keg.ended) / 1000 : Date.now() / 1000;
  for (const sensor of sensors) {
    const chart = lineChart($("#temperature"), sensor, "", () => Math.max(3600, until - since));
    const result = await api("readings.query", { sensor, since: keg.started, limit: 10000 }).catch(() => null);
    if (result) chart.set(result.readings.map((r) => [Date.parse(r.time) / 1000, r.value]));
  }
  document.body.dataset.ready = "1";
}
temperatures();
