// Taps and kegs: each tap with its keg and a remaining-volume gauge, the flow live while it
// pours (topic `pours`), recent pours; admins start and end kegs and configure taps.
import { $, el, api, post, live, attempt, ml, timeOf, isAdmin, throttle, fillRows, initialData } from "./lib.js";

const data = initialData();
let taps = data.taps;
let pours = data.pours;

function flowText(tap) {
  if (!tap.flow) return el("p", { class: "flow idle", dataset: { flow: tap.name } }, "idle");
  const who = tap.flow.username || tap.user || "guest";
  return el("p", { class: "flow", dataset: { flow: tap.name } }, `pouring ${ml(tap.flow.volume_ml)} · ${who}`);
}

function kegForm(tap) {
  const beverage = el("input", { name: "beverage", placeholder: "beverage", required: true, "aria-label": "beverage" });
  const litres = el("input", { name: "litres", type: "number", step: "any", min: "0.1", value: "19.5", "aria-label": "litres" });
  return el("form", { class: "toolbar", on: { submit: async (e) => {
    e.preventDefault();
    await attempt(() => post("kegs.start", { tap: tap.name, beverage: beverage.value, volume_ml: Number(litres.value) * 1000 }),
      `keg started on ${tap.name}`);
    refresh();
  } } }, beverage, litres, el("span", {}, "L"), el("button", { type: "submit", class: "small" }, "Start keg"));
}

function card(tap) {
  const keg = tap.keg;
  const gauge = keg
    ? el("div", { class: "gauge" },
        el("meter", { min: 0, max: keg.volume_ml, low: keg.volume_ml * 0.15, high: keg.volume_ml * 0.3,
          optimum: keg.volume_ml, value: keg.remaining_ml }),
        el("small", {}, `${ml(keg.remaining_ml)} of ${ml(keg.volume_ml)} left`))
    : el("p", {}, el("em", {}, "no keg on this tap"));
  const admin = !isAdmin ? null : keg
    ? el("button", { class: "secondary small", on: { click: async () => {
        if (!confirm(`End the keg of ${keg.beverage} on ${tap.name}?`)) return;
        await attempt(() => post("kegs.end", { tap: tap.name }), "keg ended");
        refresh();
      } } }, "End keg")
    : kegForm(tap);
  return el("article", { class: "tap", dataset: { tap: tap.name } },
    el("header", {}, el("strong", {}, tap.name), " ", el("small", {}, tap.meter)),
    el("h3", {}, keg ? keg.beverage : "—"), gauge, flowText(tap), admin);
}

function pourRow(pour) {
  return el("tr", { dataset: { pour: pour.id } }, el("td", {}, timeOf(pour.end)), el("td", {}, pour.tap),
    el("td", {}, pour.username || "guest"), el("td", {}, ml(pour.volume_ml)));
}

function render() {
  $("#taps").replaceChildren(...(taps.length ? taps.map(card) : [el("p", {}, "No taps yet.")]));
  fillRows($("#pours"), pours, pourRow, "no pours yet");
}

let seq = 0; // bumped by every event: a fetch that raced one is followed by another
async function reload() {
  const started = seq;
  const [t, p] = await Promise.all([api("taps.list"), api("pours.list", { limit: 20 })]).catch(() => [null, null]);
  if (t) { taps = t.taps; pours = p.pours; render(); }
  if (seq !== started) refresh();
}
const refresh = throttle(reload, 1000);

$("#configure").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { tap: f.tap.value.trim(), meter: f.meter.value.trim(), ticks_per_ml: Number(f.ticks_per_ml.value),
    idle_s: Number(f.idle_s.value) };
  if (f.output.value.trim()) body.output = f.output.value.trim();
  if (await attempt(() => post("taps.configure", body), `tap ${body.tap} saved`)) refresh();
});

$("#sim-swipe").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  await attempt(() => post("sim.swipe", { agent: f.agent.value.trim(), token: f.token.value.trim() }),
    `card ${f.token.value.trim()} swiped at ${f.agent.value.trim()}`);
});
$("#sim-pour").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { tap: f.tap.value.trim(), ml: Number(f.ml.value), seconds: Number(f.seconds.value || 0) };
  await attempt(() => post("sim.pour", body), `pouring ${body.ml} ml at ${body.tap}`);
});

render();
live({
  pours: (event) => {
    seq += 1;
    if (event.pour) {
      const i = taps.findIndex((t) => t.name === event.tap.name);
      if (i >= 0) { taps[i] = event.tap; $(`article[data-tap="${CSS.escape(event.tap.name)}"]`)?.replaceWith(card(event.tap)); }
      else refresh();
      pours = [event.pour, ...pours].slice(0, 20);
      fillRows($("#pours"), pours, pourRow);
    } else {
      const tap = taps.find((t) => t.name === event.tap.name);
      if (!tap) return refresh();
      tap.flow = event.flow;
      $(`p[data-flow="${CSS.escape(tap.name)}"]`)?.replaceWith(flowText(tap));
    }
  },
}, refresh);
