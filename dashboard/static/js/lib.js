// Shared helpers for the dashboard pages: DOM building with textContent only (never innerHTML
// with data), JSON calls with the CSRF token, and the live event stream with backoff.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
export const isAdmin = document.body.dataset.admin === "1";

/** el("a", {href: "/x", class: "c", on: {click: f}}, "text", child) — strings become text. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function initialData() {
  const node = document.getElementById("initial-data");
  return node ? JSON.parse(node.textContent) : null;
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function parse(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (response.ok && body === null) throw new Error("the response was cut off");
  if (!response.ok) {
    if (response.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

/** GET /api/<method>?params → the method's result; throws Error(message) on failure. */
export async function api(method, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") query.set(k, v);
  const qs = query.toString();
  return parse(await fetch(`/api/${method}${qs ? "?" + qs : ""}`, { credentials: "same-origin" }));
}

/** POST /api/<method> with a JSON body and the CSRF token. */
export async function post(method, body = {}) {
  return parse(await fetch(`/api/${method}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    body: JSON.stringify(body),
  }));
}

let toastTimer = null;
export function toast(message, isError = false) {
  const node = $("#toast");
  node.textContent = message;
  node.className = "toast" + (isError ? " error" : "");
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, isError ? 8000 : 3500);
}

/** Run an action, report its failure as a toast; returns the result or undefined. */
export async function attempt(fn, success) {
  try {
    const result = await fn();
    if (success) toast(typeof success === "function" ? success(result) : success);
    return result;
  } catch (err) {
    toast(err.message, true);
    return undefined;
  }
}

export function ago(iso) {
  if (!iso) return "never";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 5) return "now";
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

// Seconds as people read them: "4.2 s", "3m05s", "2h07m" ("" for none).
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const whole = Math.floor(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, "0")}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, "0")}m`;
}
export const timeOf = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");
export const ml = (v) => (v >= 1000 ? `${(v / 1000).toFixed(2)} L` : `${Math.round(v)} ml`);
export const badge = (text) => el("span", { class: `badge s-${String(text).replace(/[^a-z]/g, "")}` }, text);

/** Call fn at most once per `ms`, trailing edge included. */
export function throttle(fn, ms) {
  let timer = null, again = false;
  return function run() {
    if (timer) { again = true; return; }
    fn();
    timer = setTimeout(() => { timer = null; if (again) { again = false; run(); } }, ms);
  };
}

/**
 * Subscribe to server-sent events for `topics` ({topic: handler}); `resync` runs whenever the
 * stream (re)opens or the master comes back, since events may have been missed meanwhile.
 * Reconnects with exponential backoff (1 s … 30 s) and shows a banner while anything is away.
 * Returns {close()}.
 */
export function live(handlers, resync = () => {}) {
  const topics = Object.keys(handlers).join(",");
  const banner = $("#banner");
  let source = null, failures = 0, timer = null, closed = false, masterUp = true, streamUp = true;
  const show = () => {
    const text = !streamUp ? "Connection to the dashboard lost — reconnecting…"
      : !masterUp ? "The master is unreachable — reconnecting…" : "";
    banner.textContent = text;
    banner.hidden = !text;
  };
  const connect = () => {
    if (closed) return;
    source = new EventSource(`/events?topics=${encodeURIComponent(topics)}`);
    source.addEventListener("open", () => { failures = 0; streamUp = true; show(); resync(); });
    source.addEventListener("master", (e) => {
      const up = JSON.parse(e.data).up;
      if (up && !masterUp) resync();
      masterUp = up; show();
    });
    source.addEventListener("overflow", () => { source.close(); connect(); });
    for (const [topic, handler] of Object.entries(handlers)) {
      const name = topic.startsWith("log:") ? "log" : topic;
      source.addEventListener(name, (e) => handler(JSON.parse(e.data)));
    }
    source.onerror = () => {
      source.close();
      streamUp = false; show();
      const delay = Math.min(30000, 1000 * 2 ** failures) * (0.75 + Math.random() / 2);
      failures += 1;
      clearTimeout(timer);
      timer = setTimeout(connect, delay);
    };
  };
  connect();
  document.body.dataset.ready = "1"; // the page has rendered its data (tests wait for this)
  return { close() { closed = true; clearTimeout(timer); if (source) source.close(); } };
}

/** Table rows: replace tbody's children with rows built by `row(item)`. */
export function fillRows(tbody, items, row, empty = "nothing yet") {
  const cols = tbody.closest("table").querySelectorAll("thead th").length || 1;
  tbody.replaceChildren(...(items.length ? items.map(row) : [el("tr", {}, el("td", { colspan: cols, class: "muted" }, empty))]));
}
