// Taps and kegs: each tap with its keg and a remaining-volume gauge, the flow live while it
// pours (topic `pours`), recent pours; admins start and end kegs and configure taps. A keg shows
// its beverage (style, ABV, IBU and an SRM colour swatch), a tap its sensors; raised alerts are
// listed on top (topic `notices`); admins correct pours (cancel, spill, reassign, volume).
import { $, el, api, post, live, attempt, ml, timeOf, isAdmin, throttle, fillRows, initialData } from "./lib.js";

const data = initialData();
let taps = data.taps;
let pours = data.pours;
let sensors = data.sensors || [];
let alerts = data.active || [];
const SIZES = ["corny", "sixth", "quarter", "half", "euro-30", "euro-50"];

function swatch(keg) {
  const node = el("span", { class: "srm", title: `SRM ${keg.srm}`, dataset: { srm: keg.srm } });
  node.style.background = keg.srm_colour; // CSSOM, allowed by the CSP (no inline style)
  return node;
}

function beverage(keg) {
  const facts = [keg.style, keg.abv !== null ? `${keg.abv}% ABV` : null, keg.ibu !== null ? `${keg.ibu} IBU` : null,
    keg.size].filter(Boolean);
  return el("div", { class: "beverage" },
    keg.image ? el("img", { class: "keg-image", src: keg.image, alt: keg.beverage }) : null,
    el("h3", {}, keg.srm_colour ? swatch(keg) : null, " ", el("a", { href: `/kegs/${keg.id}` }, keg.beverage)),
    facts.length ? el("p", { class: "facts" }, el("small", {}, facts.join(" · "))) : null);
}

function sensorList(tapName) {
  const here = sensors.filter((s) => s.tap === tapName);
  if (!here.length) return null;
  return el("ul", { class: "sensors" }, here.map((s) => el("li", { dataset: { sensor: s.sensor } },
    `${s.sensor}: `, s.reading ? `${s.reading.value} ${s.reading.unit}` : "no reading yet",
    alerts.some((a) => a.target === s.sensor) ? el("mark", {}, " alert") : null)));
}

function renderAlerts() {
  $("#alerts").hidden = !alerts.length;
  $("#alert-list").replaceChildren(...alerts.map((a) => el("li", { dataset: { alert: a.id } },
    el("strong", {}, a.summary), ` — raised ${timeOf(a.since)}`, a.last_value !== null ? `, last ${a.last_value}` : "")));
  const fridges = [...new Set(sensors.filter((s) => s.fridge).map((s) => s.fridge))];
  $("#fridges").replaceChildren(...fridges.map((fridge) => el("article", { class: "fridge", dataset: { fridge } },
    el("header", {}, el("strong", {}, fridge)),
    el("ul", {}, sensors.filter((s) => s.fridge === fridge).map((s) => el("li", {},
      `${s.sensor}: `, s.reading ? `${s.reading.value} ${s.reading.unit}` : "no reading yet"))))));
}

function flowText(tap) {
  if (!tap.flow) return el("p", { class: "flow idle", dataset: { flow: tap.name } }, "idle");
  const who = tap.flow.username || tap.user || "guest";
  return el("p", { class: "flow", dataset: { flow: tap.name } }, `pouring ${ml(tap.flow.volume_ml)} · ${who}`);
}

function kegForm(tap) {
  const input = (name, props = {}) => el("input", { name, placeholder: name, "aria-label": name, ...props });
  const beverage = input("beverage", { required: true });
  const size = el("select", { name: "size", "aria-label": "size" },
    SIZES.map((name) => el("option", { value: name }, name)), el("option", { value: "" }, "litres:"));
  const litres = input("litres", { type: "number", step: "any", min: "0.1", value: "19.5" });
  const style = input("style"), abv = input("abv", { type: "number", step: "any", min: "0", max: "100" });
  const ibu = input("ibu", { type: "number", step: "any", min: "0" }), srm = input("srm", { type: "number", step: "any", min: "0" });
  return el("form", { class: "toolbar keg-form", on: { submit: async (e) => {
    e.preventDefault();
    const body = { tap: tap.name, beverage: beverage.value, style: style.value };
    if (size.value) body.size = size.value; else body.volume_ml = Number(litres.value) * 1000;
    for (const [key, node] of Object.entries({ abv, ibu, srm })) if (node.value !== "") body[key] = Number(node.value);
    await attempt(() => post("kegs.start", body), `keg started on ${tap.name}`);
    refresh();
  } } }, beverage, size, litres, style, abv, ibu, srm, el("button", { type: "submit", class: "small" }, "Start keg"));
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
    keg ? beverage(keg) : el("h3", {}, "—"), gauge, flowText(tap), sensorList(tap.name), admin);
}

async function correct(pour, action) {
  let call;
  if (action === "cancel") {
    if (!confirm(`Cancel pour ${pour.id} (${ml(pour.volume_ml)})? It goes back into the keg.`)) return;
    call = () => post("pours.cancel", { id: pour.id });
  } else if (action === "spill") {
    call = () => post("pours.update", { id: pour.id, spill: !pour.spill });
  } else if (action === "user") {
    const username = prompt(`Give pour ${pour.id} to (a username, or guest):`, pour.username || "guest");
    if (!username) return;
    call = () => post("pours.update", { id: pour.id, username: username.trim() });
  } else {
    const volume = prompt(`Volume of pour ${pour.id} in ml:`, String(pour.volume_ml));
    if (!volume) return;
    call = () => post("pours.update", { id: pour.id, volume_ml: Number(volume) });
  }
  if (await attempt(call, `pour ${pour.id} corrected`)) refresh();
}

function pourRow(pour) {
  const fix = (action, label) => el("button", { class: "outline small", dataset: { fix: action },
    on: { click: () => correct(pour, action) } }, label);
  return el("tr", { dataset: { pour: pour.id } }, el("td", {}, timeOf(pour.end)), el("td", {}, pour.tap),
    el("td", {}, pour.spill ? el("em", {}, "spill") : pour.username ? el("a", { href: `/people/${encodeURIComponent(pour.username)}` }, pour.username) : "guest"),
    el("td", {}, ml(pour.volume_ml)),
    isAdmin ? el("td", { class: "fixes" }, fix("cancel", "Cancel"), fix("spill", pour.spill ? "Not a spill" : "Spill"),
      fix("user", "Reassign"), fix("volume", "Volume")) : null);
}

function render() {
  $("#taps").replaceChildren(...(taps.length ? taps.map(card) : [el("p", {}, "No taps yet.")]));
  fillRows($("#pours"), pours, pourRow, "no pours yet");
  renderAlerts();
}

let seq = 0; // bumped by every event: a fetch that raced one is followed by another
async function reload() {
  const started = seq;
  const [t, p, a] = await Promise.all([api("taps.list"), api("pours.list", { limit: 20 }), api("alerts.list")])
    .catch(() => [null, null, null]);
  if (t) { taps = t.taps; sensors = t.sensors; pours = p.pours; alerts = a.active; render(); }
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
  notices: (notice) => {
    if (notice.event.startsWith("sensor.") || notice.event.startsWith("keg.")) { seq += 1; refresh(); }
  },
}, refresh);
