// One drinker: totals, volume by weekday (a uPlot bar chart), sessions and pour history.
import { $, el, ml, timeOf, fillRows, initialData } from "./lib.js";
import { barChart } from "./chart.js";

const data = initialData();
const stats = data.stats;
const total = (label, value) => el("article", { class: "total" }, el("small", {}, label), el("h2", {}, value));
$("#totals").replaceChildren(total("Total", ml(stats.total_volume_ml)), total("Pours", stats.total_pours),
  total("Sessions", stats.sessions), total("Largest pour", ml(stats.largest_pour_ml)));
const days = Object.keys(stats.volume_by_weekday);
barChart($("#by-weekday"), days, days.map((d) => stats.volume_by_weekday[d]));
fillRows($("#sessions"), data.sessions, (s) => el("tr", { dataset: { session: s.id } }, el("td", {}, s.id),
  el("td", {}, new Date(s.start).toLocaleString()), el("td", {}, s.pours), el("td", {}, ml(s.volume_ml)),
  el("td", {}, s.drinkers.filter((d) => d !== data.username).join(", ") || "—")), "no sessions");
fillRows($("#pours"), data.pours, (p) => el("tr", { dataset: { pour: p.id } }, el("td", {}, `${new Date(p.end).toLocaleDateString()} ${timeOf(p.end)}`),
  el("td", {}, p.tap), el("td", {}, p.keg_id ? el("a", { href: `/kegs/${p.keg_id}` }, `keg ${p.keg_id}`) : "—"),
  el("td", {}, p.spill ? `${ml(p.volume_ml)} (spill)` : ml(p.volume_ml))), "no pours");
document.body.dataset.ready = "1";
