// The overview page: every endpoint and pool of the user's directory, with live counts of
// running jobs and tasks, and an admin's shutdown control (the endpoint decides who may).
import { getJSON, rpc } from "./api.js";
import { History, lineChart } from "./chart.js";
import { badge, button, coalesce, el, table } from "./ui.js";

const poolHistory = new History("pools");  // backlog and members of every pool, each redraw

const ago = (s) => (s == null ? "never" : s < 1 ? "just now" : s < 90 ? `${Math.round(s)} s ago`
  : s < 5400 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`);

// Running jobs and tasks of one online endpoint (the caller's own, as the endpoint shows them).
async function counts(ep) {
  const out = {};
  if (ep.plugins?.psij) {
    const r = await rpc(ep.endpoint, "psij", "list_jobs");
    if (r.ok) out.jobs = r.result.jobs.filter((j) => ["NEW", "QUEUED", "ACTIVE"].includes(j.state)).length;
  }
  if (ep.plugins?.tasks) {
    const r = await rpc(ep.endpoint, "tasks", "list_tasks", { state: "RUNNING", limit: 10000 });
    if (r.ok) out.tasks = r.result.length;
  }
  return out;
}

async function shutdown(ep, toast, refresh) {
  if (!window.confirm(`Shut down endpoint ${ep.endpoint}? Running work is drained and the process exits.`)) return;
  const r = await rpc(ep.endpoint, "orbit", "shutdown");
  toast(r.ok ? `${ep.endpoint} is shutting down` : `${ep.endpoint}: [${r.error.code}] ${r.error.message}`);
  refresh();
}

const LIVE = new Set(["job_status", "task_status", "task_status_batch", "presence"]);

// The page redraws itself when a job or task changes state (at most every second) and every 15 s.
// `known()`: the endpoints the page has heard of so far (all a user without a directory has).
export default async function overviewPage({ toast, refresh, on, known }) {
  const box = el("div", { id: "overview-page" });
  let drawn = 0;  // the newest redraw started: an older one that ends later is not shown
  const redraw = async () => {
    const mine = ++drawn;
    const parts = await overview(toast, refresh, known);
    if (mine === drawn) box.replaceChildren(...parts);
  };
  const soon = coalesce(redraw, 1000);
  on((f) => { if (LIVE.has(f.topic)) soon(); });
  await redraw();
  const tick = setInterval(() => { if (box.isConnected) soon(); else clearInterval(tick); }, 15000);
  return [box];
}

async function overview(toast, refresh, heard) {
  const entries = await getJSON("api/directory").catch(() => null);
  const known = entries ?? heard();
  const live = await Promise.all(known.map((e) => (e.kind !== "pool" && e.online ? counts(e) : {})));
  const rows = known.map((e, i) => ({ ...e, ...live[i] }));
  const endpoints = rows.filter((e) => e.kind !== "pool");
  const pools = rows.filter((e) => e.kind === "pool");
  const online = endpoints.filter((e) => e.online).length;
  const plugins = (e) => Object.entries(e.plugins || {}).filter(([p]) => p !== "orbit")
    .map(([p, v]) => `${p} ${v}`).join(", ");
  return [
    el("h2", { textContent: "Overview" }),
    el("p", { className: "hint", id: "overview-summary" },
      `${online} of ${endpoints.length} endpoints online${pools.length ? `, ${pools.length} pools` : ""}`,
      entries ? " (your directory)" : " (heard through presence)", " · ",
      el("a", { href: "api/docs", target: "_blank", textContent: "HTTP API" }), " · ",
      el("a", { href: "asyncapi.json", target: "_blank", textContent: "AsyncAPI" })),
    el("div", { className: "card" }, table([
      ["endpoint", (e) => el("a", { href: `#/${e.endpoint}`, textContent: e.endpoint })],
      ["state", (e) => badge(e.state === "unknown" ? "never seen" : e.state ?? (e.online ? "online" : "offline"))],
      ["host", (e) => e.host], ["plugins", plugins], ["version", (e) => e.version],
      ["backlog", (e) => String(e.backlog ?? "–")], ["jobs", (e) => e.jobs ?? "–"],
      ["tasks", (e) => e.tasks ?? "–"],
      ["last seen", (e) => (e.provisioned === false ? "not provisioned" : ago(e.age))],
      ["", (e) => (e.online ? button("Shut down", () => shutdown(e, toast, refresh), { className: "danger small" }) : "")],
    ], endpoints, { id: "overview", empty: entries ? "no endpoint in your directory yet" : "no endpoint heard from yet" })),
    ...(pools.length ? [el("h3", { textContent: "Pools" }), el("div", { className: "card" }, table([
      ["pool", (p) => p.endpoint], ["members", (p) => String(p.consumers)],
      ["backlog", (p) => String(p.backlog)], ["state", (p) => badge(p.state)],
    ], pools, { id: "pools" }), poolChart(pools))] : []),
  ];
}

function poolChart(pools) {
  const values = {};
  for (const p of pools) { values[`${p.endpoint} backlog`] = p.backlog; values[`${p.endpoint} members`] = p.consumers; }
  poolHistory.add(values);
  return lineChart(poolHistory, Object.keys(values), { id: "chart-pools", title: "backlog and members over time", step: true });
}
