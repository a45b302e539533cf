// Admin: agent keys (the secret is shown once, at creation; revoke) and users (create).
import { $, el, api, post, live, attempt, ago, badge, fillRows, initialData } from "./lib.js";

let data = initialData();

function render() {
  fillRows($("#keys"), data.keys, (k) => el("tr", {},
    el("td", {}, el("code", {}, k.key_id)), el("td", {}, k.role), el("td", {}, k.name || (k.role === "api" ? "" : "(bound at first hello)")),
    el("td", {}, k.scope || ""), el("td", {}, k.label || ""),
    el("td", { title: k.created }, ago(k.created)), el("td", {}, badge(k.revoked ? "revoked" : "active")),
    el("td", {}, k.revoked ? null : el("button", { class: "contrast small", on: { click: () => revoke(k) } }, "revoke"))), "no keys");
  fillRows($("#users"), data.users, (u) => el("tr", {},
    el("td", {}, u.username), el("td", {}, u.display_name), el("td", {}, u.admin ? "yes" : ""),
    el("td", {}, u.has_password ? "set" : "none"), el("td", { title: u.created }, ago(u.created))), "no users");
}

async function reload() {
  try {
    const [keys, users] = await Promise.all([api("keys.list"), api("users.list")]);
    data = { ...keys, ...users };
    render();
  } catch { /* the banner says why */ }
}

async function revoke(key) {
  if (!confirm(`Revoke key ${key.key_id} (${key.role} ${key.name})? Agents using it are disconnected.`)) return;
  if (await attempt(() => post("keys.revoke", { key_id: key.key_id }), `key ${key.key_id} revoked`)) reload();
}

$("#key-create").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { role: f.role.value, name: f.name.value.trim(), label: f.label.value.trim() };
  if (body.role === "api") body.scope = f.scope.value;
  const created = await attempt(() => post("keys.create", body), "key created");
  if (!created) return;
  $("#new-key-text").textContent = created.key;
  $("#new-key").hidden = false;
  f.name.value = "";
  f.label.value = "";
  reload();
});

$("#user-create").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { username: f.username.value.trim(), display_name: f.display_name.value.trim(), admin: f.admin.checked };
  if (f.password.value) body.password = f.password.value;
  if (await attempt(() => post("users.create", body), `user ${body.username} created`)) { f.reset(); reload(); }
});

render();
live({ clients: () => {} }, reload);
