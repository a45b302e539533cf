// One drinking session: its span, totals, volume per drinker and its pours (who, when, how much).
import { $, el, ml, timeOf, fillRows, initialData } from "./lib.js";

const { session, stats, pours } = initialData();
const total = (label, value) => el("article", { class: "total" }, el("small", {}, label), el("h2", {}, value));
const person = (name) => el("a", { href: `/people/${encodeURIComponent(name)}` }, name);
$("#span").textContent = `${new Date(session.start).toLocaleString()} – ${timeOf(session.end)}`;
$("#totals").replaceChildren(total("Total", ml(stats.total_volume_ml)), total("Pours", stats.total_pours),
  total("Drinkers", Object.keys(stats.volume_by_drinker).length), total("Largest pour", ml(stats.largest_pour_ml)));
fillRows($("#drinkers"), Object.entries(stats.volume_by_drinker), ([name, volume]) =>
  el("tr", { dataset: { drinker: name } }, el("td", {}, person(name)), el("td", {}, ml(volume))), "nobody");
fillRows($("#pours"), pours, (p) => el("tr", { dataset: { pour: p.id } }, el("td", {}, timeOf(p.end)),
  el("td", {}, p.tap), el("td", {}, p.spill ? el("em", {}, "spill") : person(p.username || "guest")),
  el("td", {}, p.keg_id ? el("a", { href: `/kegs/${p.keg_id}` }, `keg ${p.keg_id}`) : "—"),
  el("td", {}, p.spill ? `${ml(p.volume_ml)} (spill)` : ml(p.volume_ml))), "no pours");
document.body.dataset.ready = "1";
