// The kiosk: a full-screen, dark tap list for a tablet by the kegerator. Big type; while a flow
// runs its volume counts up live from the `pours` topic; a recorded pour updates the keg.
import { $, el, api, live, ml, throttle, initialData } from "./lib.js";

document.documentElement.dataset.theme = "dark";
let taps = initialData().taps;

function pouring(tap) {
  const flow = tap.flow;
  return el("p", { class: "kiosk-flow", dataset: { flow: tap.name } },
    flow ? `Pouring ${ml(flow.volume_ml)} · ${flow.username || tap.user || "guest"}` : tap.user ? `Ready for ${tap.user}` : "");
}

function card(tap) {
  const keg = tap.keg;
  const swatch = keg && keg.srm_colour ? el("span", { class: "srm" }) : null;
  if (swatch) swatch.style.background = keg.srm_colour;
  const left = keg ? Math.max(0, Math.round((100 * keg.remaining_ml) / keg.volume_ml)) : 0;
  const facts = keg ? [keg.style, keg.abv !== null ? `${keg.abv}%` : null, keg.ibu !== null ? `${keg.ibu} IBU` : null].filter(Boolean) : [];
  return el("article", { class: "kiosk-tap", dataset: { tap: tap.name } },
    el("div", { class: "kiosk-name" }, tap.name),
    el("div", { class: "kiosk-beverage" }, swatch, " ", keg ? keg.beverage : "empty"),
    el("div", { class: "kiosk-facts" }, facts.join(" · ")),
    keg ? el("meter", { min: 0, max: keg.volume_ml, low: keg.volume_ml * 0.15, optimum: keg.volume_ml, value: keg.remaining_ml }) : null,
    el("div", { class: "kiosk-left" }, keg ? `${left} % · ${ml(keg.remaining_ml)} left` : ""),
    pouring(tap));
}

function render() { $("#kiosk").replaceChildren(...taps.map(card)); }

async function reload() {
  const result = await api("taps.list").catch(() => null);
  if (result) { taps = result.taps; render(); }
}
const refresh = throttle(reload, 1000);

render();
live({
  pours: (event) => {
    const i = taps.findIndex((t) => t.name === event.tap.name);
    if (i < 0) return refresh();
    taps[i] = event.tap;
    if (event.pour) $(`article[data-tap="${CSS.escape(event.tap.name)}"]`)?.replaceWith(card(event.tap));
    else $(`p[data-flow="${CSS.escape(event.tap.name)}"]`)?.replaceWith(pouring(event.tap));
  },
}, refresh);
