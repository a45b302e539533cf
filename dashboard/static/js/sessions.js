// Drinking sessions, newest first, each linking to its page.
import { $, el, ml, fillRows, initialData } from "./lib.js";

const data = initialData();
const person = (name) => el("a", { href: `/people/${encodeURIComponent(name)}` }, name);
fillRows($("#sessions"), data.sessions, (s) => el("tr", { dataset: { session: s.id } },
  el("td", {}, el("a", { href: `/sessions/${s.id}` }, `session ${s.id}`)),
  el("td", {}, new Date(s.start).toLocaleString()), el("td", {}, new Date(s.end).toLocaleString()),
  el("td", {}, s.pours), el("td", {}, ml(s.volume_ml)),
  el("td", {}, s.drinkers.flatMap((d, i) => (i ? [", ", person(d)] : [person(d)])))), "no drinking sessions yet");
document.body.dataset.ready = "1";
