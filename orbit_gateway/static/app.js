// Orbit Explorer: login, live endpoint sidebar, plugin pages, event log, toasts.
import { getJSON, login, logout, rpc } from "./api.js";
import { el, operationForm } from "./forms.js";
import { coalesce } from "./ui.js";
import overviewPage from "./overview.js";
import { resetHistories } from "./chart.js";
import { forget, loadWork, trackEvent, workList } from "./work.js";

const $ = (id) => document.getElementById(id);
const state = { endpoints: {}, describe: {}, log: [], source: null, lastId: null, retry: 0, loggedIn: false,
  followsAll: true, follow: JSON.parse(localStorage.getItem("orbit.follow") || "[]") };
const MAX_LOG = 500;
const QUIET = new Set(["job_output", "metrics", "progress"]);  // too chatty for toasts
let pageListeners = [];  // notification handlers of the page on screen, dropped on navigation

function toast(text) {
  const t = el("div", { className: "toast", textContent: text });
  $("toasts").append(t);
  setTimeout(() => t.remove(), 4000);
}

function setStatus(kind, text) { const s = $("status"); s.className = `status ${kind}`; s.textContent = text; }

// "#/ep/plugin?job=ID" -> { endpoint, plugin, params }
function parseHash() {
  const [path, query] = location.hash.slice(1).split("?");
  const [, endpoint, plugin] = path.split("/");
  return { endpoint, plugin, params: new URLSearchParams(query || "") };
}

const sidebarSoon = coalesce(() => renderSidebar(), 200);  // events redraw it at most every 200 ms

function renderSidebar() {
  const { endpoint: curEp, plugin: curPlugin } = parseHash();
  const list = $("endpoints");
  list.replaceChildren(...Object.values(state.endpoints).sort((a, b) => a.endpoint.localeCompare(b.endpoint)).map((ep) => {
    const plugins = ["orbit", ...Object.keys(ep.plugins || {}).filter((p) => p !== "orbit").sort()];
    const shown = ep.online ? "online" : ep.state || "offline";
    const seen = ep.age == null ? "" : `, last seen ${Math.round(ep.age)} s ago`;
    return el("li", { dataset: { endpoint: ep.endpoint, state: shown } },
      el("span", { className: `dot ${shown}`, title: `${shown === "unknown" ? "never seen" : shown}${seen}` }),
      el("a", { href: `#/${ep.endpoint}`, textContent: ep.endpoint, className: curEp === ep.endpoint && !curPlugin ? "active" : "" }),
      el("ul", {}, ...plugins.map((p) => el("li", {}, el("a", {
        href: `#/${ep.endpoint}/${p}`, textContent: p, className: curEp === ep.endpoint && curPlugin === p ? "active" : "",
      })))), workList(ep.endpoint) || "");
  }));
}

async function describe(endpoint, fresh = false) {
  if (fresh || !state.describe[endpoint]) {
    const reply = await rpc(endpoint, "orbit", "describe");
    if (!reply.ok) throw new Error(`[${reply.error.code}] ${reply.error.message}`);
    state.describe[endpoint] = reply.result;
  }
  return state.describe[endpoint];
}

async function endpointPage(endpoint) {
  const d = await describe(endpoint, true);
  return [el("h2", { textContent: endpoint }), el("div", { className: "card" }, el("table", {},
    ...[["host", d.host], ["platform", d.platform], ["role", d.host_role?.role ?? d.host_role],
      ["orbit", d.versions.orbit], ["python", d.versions.python], ["protocol", d.protocol]]
      .map(([k, v]) => el("tr", {}, el("th", { textContent: k }), el("td", { textContent: String(v ?? "–") }))))),
    el("h3", { textContent: "Plugins" }), el("ul", {}, ...Object.entries(d.plugins).map(([name, p]) =>
      el("li", {}, el("a", { href: `#/${endpoint}/${name}`, textContent: name }),
        ` ${p.available ? p.version : "unavailable: " + p.error}`)))];
}

let pageNames = null;  // plugins with a page of their own (GET /api/pages), fetched once
const loadedPages = {};

async function pageOf(plugin) {
  if (pageNames === null) pageNames = new Set(await getJSON("api/pages").catch(() => []));
  if (!pageNames.has(plugin)) return null;
  loadedPages[plugin] ??= import(`./pages/${plugin}.js`).then((m) => m.default);
  return loadedPages[plugin];
}

async function pluginPage(endpoint, plugin, params, listeners) {
  const d = await describe(endpoint);
  const info = d.plugins[plugin];
  if (!info) return [el("p", { className: "error", textContent: `no plugin ${plugin} on ${endpoint}` })];
  const parts = [el("h2", { textContent: `${endpoint} / ${plugin}` }),
    el("p", { className: "hint", textContent: `${info.description || ""} (version ${info.version})` })];
  const page = await pageOf(plugin);
  if (page) {
    const ctx = {
      endpoint, plugin, info, toast, params,
      call: (method, args = {}) => rpc(endpoint, plugin, method, args),
      rpc: (plug, method, args = {}) => rpc(endpoint, plug, method, args),
      on: (handler) => listeners.push((f) => {
        if (f.endpoint === endpoint && f.plugin === plugin) handler(f);
      }),
    };
    parts.push(...page(ctx));
  }
  const forms = Object.entries(info.operations || {}).map(([name, op]) =>
    operationForm(name, op, (args) => rpc(endpoint, plugin, name, args)));
  if (page) parts.push(el("details", { className: "all-ops" }, el("summary", { textContent: "All operations" }), ...forms));
  else parts.push(...forms);
  return parts;
}

function logLine(f) {
  return el("li", { textContent: `${new Date(f.ts * 1000).toLocaleTimeString()}  ${f.endpoint}.${f.plugin}.${f.topic}  ${JSON.stringify(f.data)}` });
}

function eventsPage() {
  return [el("h2", { textContent: "Event log" }), el("ul", { id: "log" }, ...state.log.slice().reverse().map(logLine))];
}

let routeSeq = 0;  // the navigation on screen: a slower, older page build must not replace it

async function route() {
  const seq = ++routeSeq;
  const mine = [];  // the handlers of this navigation's page only
  pageListeners = mine;
  const { endpoint, plugin, params } = parseHash();
  if (endpoint && endpoint !== "events" && !state.endpoints[endpoint]) placeholder(endpoint, false);  // deep link before its presence
  renderSidebar();
  let parts;
  try {
    if (endpoint === "events") parts = eventsPage();
    else if (endpoint && plugin) parts = await pluginPage(endpoint, plugin, params, mine);
    else if (endpoint) parts = await endpointPage(endpoint);
    else parts = await overviewPage({
      toast, refresh: () => setTimeout(() => seq === routeSeq && route(), 1500), on: (h) => mine.push(h),
      known: () => Object.values(state.endpoints) });
  } catch (err) { parts = [el("p", { className: "error", textContent: err.message })]; }
  if (seq === routeSeq) $("page").replaceChildren(...parts);
}

function onTopology(f) {
  const known = state.endpoints[f.endpoint];
  const online = f.data.state === "online";
  state.endpoints[f.endpoint] = { ...(known || {}), endpoint: f.endpoint, ...f.data, online, state: f.data.state, age: 0 };
  if (!known || known.online !== (f.data.state === "online")) toast(`${f.endpoint} is ${f.data.state}`);
  renderSidebar();
  for (const handler of pageListeners) {  // the overview follows presence too
    try { handler(f); } catch (err) { console.error(err); }
  }
}

function onNotification(f) {
  state.log.push(f);
  if (state.log.length > MAX_LOG) state.log.shift();
  for (const handler of pageListeners) {
    try { handler(f); } catch (err) { console.error(err); }
  }
  trackEvent(f, sidebarSoon);
  if (!QUIET.has(f.topic)) toast(`${f.endpoint}.${f.plugin}: ${f.topic}`);
  const log = $("log");
  if (log) log.prepend(logLine(f));
}

function connect() {
  if (state.source) state.source.close();
  const query = new URLSearchParams();
  if (!state.followsAll) {
    if (!state.follow.length) { setStatus("off", "follow an endpoint"); return; }
    for (const name of state.follow) query.append("endpoint", name);
  }
  if (state.lastId) query.set("since", state.lastId);
  const source = new EventSource(`events?${query}`);
  state.source = source;
  setStatus("wait", "connecting…");
  const track = (handler) => (ev) => { if (ev.lastEventId) state.lastId = ev.lastEventId; handler(JSON.parse(ev.data)); };
  source.addEventListener("hello", () => { state.retry = 0; setStatus("on", "live"); });
  source.addEventListener("topology", track(onTopology));
  source.addEventListener("notification", track(onNotification));
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {  // refused (e.g. 401): reconnect ourselves
      state.retry += 1;
      setStatus("off", `disconnected, retry ${state.retry}`);
      setTimeout(() => start(), Math.min(30000, 1000 * 2 ** state.retry));
    } else setStatus("wait", "reconnecting…");
  };
}

async function loadEndpoints() {
  const eps = await getJSON("api/endpoints");
  for (const [name, info] of Object.entries(eps)) {
    state.endpoints[name] = { ...info, endpoint: name };
    if (info.online) loadWork(state.endpoints[name]).then((got) => got && renderSidebar()).catch(() => {});
  }
  renderSidebar();
}

function showLogin(message) {
  if (state.source) { state.source.close(); state.source = null; }
  state.lastId = null;  // event ids are per session: a new session starts a new sequence

  $("login").hidden = false; $("main").hidden = true; $("logout").hidden = true; $("who").textContent = "";
  $("login-error").textContent = message;
  setStatus("off", "logged out");
}

async function start() {
  let me;
  try { me = await getJSON("api/whoami"); } catch (err) {
    if (err.status === 401) {  // no session, or one the gateway no longer knows (restart, logout)
      showLogin(state.loggedIn ? "session ended (gateway restarted or logged out): log in again" : "");
      state.loggedIn = false;
    } else {  // unreachable or failing gateway: not a reason to ask for the password, retry
      state.retry += 1;
      setStatus("off", `disconnected, retry ${state.retry}`);
      setTimeout(() => start(), Math.min(30000, 1000 * 2 ** state.retry));
    }
    return;
  }
  state.loggedIn = true;
  if (localStorage.getItem("orbit.user") !== me.user) forgetUser();  // another user: nothing of theirs
  localStorage.setItem("orbit.user", me.user);
  $("login").hidden = true; $("main").hidden = false; $("logout").hidden = false;
  $("who").textContent = me.user;
  state.followsAll = me.follows_all;
  $("follow").hidden = me.follows_all;
  $("sidebar-hint").textContent = me.directory ? "Your endpoints, online or not." : "Endpoints appear when their presence arrives.";
  for (const name of me.follows_all ? [] : state.follow) placeholder(name);
  connect();
  await loadEndpoints();
  await route();
}

function placeholder(name, eager = true) {
  if (eager && !state.endpoints[name]) state.endpoints[name] = { endpoint: name, online: false, plugins: {} };
  describe(name).then((d) => {
    const plugins = Object.fromEntries(Object.entries(d.plugins).map(([p, i]) => [p, i.version]));
    const known = state.endpoints[name] || { endpoint: name };
    state.endpoints[name] = { ...known, plugins: Object.keys(known.plugins || {}).length ? known.plugins : plugins, online: true };
    renderSidebar();
    return loadWork(state.endpoints[name]).then((got) => got && renderSidebar());
  }).catch(() => {});
}

$("follow").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = ev.target.elements.endpoint.value.trim();
  const ping = await rpc(name, "orbit", "ping");
  if (!ping.ok) { $("follow-error").textContent = `[${ping.error.code}] ${ping.error.message}`; return; }
  $("follow-error").textContent = "";
  ev.target.reset();
  if (!state.follow.includes(name)) state.follow.push(name);
  localStorage.setItem("orbit.follow", JSON.stringify(state.follow));
  placeholder(name);
  renderSidebar();
  connect();
});

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  try { await login(f.user.value, f.password.value); $("login-error").textContent = ""; await start(); }
  catch (err) { $("login-error").textContent = err.message; }
});
$("logout").addEventListener("click", async () => {
  if (state.source) state.source.close();
  forgetUser();
  await logout();
  location.reload();
});

// Drop what the browser keeps of a user: work, endpoints, event log, chart histories.
function forgetUser() {
  forget(); resetHistories();
  state.endpoints = {}; state.describe = {}; state.log = [];
  localStorage.removeItem("orbit.user");
}
window.addEventListener("hashchange", route);
setInterval(() => { if (!$("main").hidden) loadEndpoints().catch(() => {}); }, 10000);
start();
