// Pours and people: totals per person and per keg, recent pours, users with their tokens, and
// unknown tokens seen recently, which an admin can assign to a user.
import { $, el, api, post, live, attempt, ml, timeOf, ago, isAdmin, throttle, fillRows, initialData } from "./lib.js";

let data = initialData();

function totalsRow(label) {
  return (t) => el("tr", {}, el("td", {}, label(t)), el("td", {}, t.pours), el("td", {}, ml(t.volume_ml)));
}

function render() {
  fillRows($("#by-user"), data.totals.by_user, totalsRow((t) => t.username || "guest"), "no pours yet");
  fillRows($("#by-keg"), data.totals.by_keg, totalsRow((t) => (t.keg_id === null ? "no keg" : `keg ${t.keg_id}`)), "no pours yet");
  fillRows($("#pours"), data.pours, (p) => el("tr", {}, el("td", {}, timeOf(p.end)), el("td", {}, p.tap),
    el("td", {}, p.username || "guest"), el("td", {}, ml(p.volume_ml))), "no pours yet");
  fillRows($("#users"), data.users, (u) => el("tr", {},
    el("td", {}, el("a", { href: `/people/${encodeURIComponent(u.username)}` }, u.username)), el("td", {}, u.display_name), el("td", {}, u.admin ? "yes" : ""),
    el("td", {}, data.tokens.filter((t) => t.username === u.username).map((t) => el("div", {},
      el("code", {}, `${t.reader}:${t.token}`), " ",
      isAdmin ? el("button", { class: "secondary small", on: { click: () => revoke(t) } }, "revoke") : null)))), "no users");
  fillRows($("#unknown"), data.unknown, (t) => {
    const chooser = el("select", { "aria-label": "user" }, data.users.map((u) => el("option", { value: u.username }, u.username)));
    return el("tr", {}, el("td", {}, t.reader), el("td", {}, el("code", {}, t.token)), el("td", {}, ago(t.last_seen)),
      isAdmin ? el("td", { class: "toolbar" }, chooser, el("button", { class: "small", on: { click: () => assign(t, chooser.value) } }, "Assign")) : null);
  }, "no unknown tokens");
}

async function assign(token, username) {
  if (!username) return;
  if (await attempt(() => post("tokens.assign", { reader: token.reader, token: token.token, username }), `token given to ${username}`)) refresh();
}

async function revoke(token) {
  if (!confirm(`Take ${token.reader}:${token.token} away from ${token.username}?`)) return;
  if (await attempt(() => post("tokens.revoke", { reader: token.reader, token: token.token }), "token revoked")) refresh();
}

async function reload() {
  try {
    const [pours, totals, users, tokens] = await Promise.all([api("pours.list", { limit: 50 }), api("pours.totals"),
      api("users.list"), api("tokens.list")]);
    data = { ...pours, totals, ...users, ...tokens };
    render();
  } catch { /* the banner says why */ }
}
const refresh = throttle(reload, 1500);

render();
live({ pours: (e) => { if (e.pour) refresh(); }, presence: refresh }, refresh);
