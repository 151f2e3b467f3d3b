// Live line charts in plain SVG, and the sample histories behind them. A history is kept in
// the browser (sessionStorage: it survives navigation and reloads of the tab, not its closing).
import { el } from "./forms.js";

const NS = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#6b7280"];
// Colours of the work states, the same in every chart.
export const STATE_COLORS = { QUEUED: "#9ca3af", ACTIVE: "#2563eb", RUNNING: "#2563eb", COMPLETED: "#16a34a",
  DONE: "#16a34a", FAILED: "#dc2626", CANCELED: "#d97706" };

function svg(tag, attrs = {}, ...kids) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...kids);
  return node;
}

const PREFIX = "orbit.history.";
const histories = new Set();  // every History made, emptied by resetHistories()

// Forget every history, in memory and in sessionStorage (another user logs in).
export function resetHistories() {
  for (const h of histories) h.samples = [];
  for (const key of Object.keys(sessionStorage)) if (key.startsWith(PREFIX)) sessionStorage.removeItem(key);
}

// Samples {t: epoch seconds, values: {name: number}}, at most `cap`, stored under `key`.
export class History {
  constructor(key, cap = 720) {
    this.key = PREFIX + key;
    this.cap = cap;
    try { this.samples = JSON.parse(sessionStorage.getItem(this.key) || "[]"); } catch { this.samples = []; }
    histories.add(this);
  }

  add(values, t = Date.now() / 1000) {
    if (!Number.isFinite(t)) t = Date.now() / 1000;
    const last = this.samples.at(-1);
    if (last && t <= last.t) return;  // older than what is shown (a late event)
    if (last && t - last.t < 0.5) this.samples.pop();  // a burst of changes: keep the newest
    this.samples.push({ t, values });
    if (this.samples.length > this.cap) this.samples.splice(0, this.samples.length - this.cap);
    try { sessionStorage.setItem(this.key, JSON.stringify(this.samples)); } catch { /* full: keep in memory */ }
  }
}

const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const niceMax = (v) => { if (v <= 5) return 5; const p = 10 ** Math.floor(Math.log10(v)); return Math.ceil(v / p) * p; };

// A chart of `names` (one line each) from `history`; `max` fixes the y range (else fitted);
// `step` draws each value until the next sample (counts), `colors` maps names to colours.
export function lineChart(history, names, { id, title, unit = "", max = null, height = 150, step = false, colors = {} } = {}) {
  const W = 600, H = height, L = 40, R = 8, T = 8, B = 20;
  const samples = history.samples;
  const top = max ?? niceMax(Math.max(1, ...samples.flatMap((s) => names.map((n) => s.values[n] ?? 0))));
  const t0 = samples.length ? samples[0].t : 0;
  const t1 = samples.length > 1 ? samples.at(-1).t : t0 + 1;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - Math.min(v, top) / top) * (H - T - B);
  const grid = [0, 0.5, 1].flatMap((f) => [
    svg("line", { x1: L, x2: W - R, y1: y(top * f), y2: y(top * f), class: "grid" }),
    svg("text", { x: L - 4, y: y(top * f) + 4, "text-anchor": "end" }, `${+(top * f).toFixed(1)}${unit}`),
  ]);
  const times = samples.length ? [svg("text", { x: L, y: H - 4 }, clock(t0)),
    svg("text", { x: W - R, y: H - 4, "text-anchor": "end" }, clock(samples.at(-1).t))] : [];
  const color = (n, i) => colors[n] || COLORS[i % COLORS.length];
  const path = (n) => samples.filter((s) => s.values[n] != null).flatMap((s, i, all) => {
    const at = [x(s.t).toFixed(1), y(s.values[n]).toFixed(1)];
    return step && i ? [`${at[0]},${y(all[i - 1].values[n]).toFixed(1)}`, at.join(",")] : [at.join(",")];
  }).join(" ");
  const lines = names.map((n, i) => svg("polyline", {
    class: "series", "data-series": n, fill: "none", stroke: color(n, i), "stroke-width": 2, points: path(n),
  }));
  const latest = (n) => samples.findLast((s) => s.values[n] != null)?.values[n];
  const legend = el("div", { className: "legend" }, ...names.map((n, i) => el("span", { dataset: { series: n } },
    el("i", { style: `background:${color(n, i)}` }), `${n} ${latest(n) == null ? "–" : `${+latest(n).toFixed(1)}${unit}`}`)));
  const empty = samples.length ? [] : [svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "collecting…")];
  return el("figure", { className: "chart", id: id || "" }, title ? el("figcaption", { textContent: title }) : "",
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title || names.join(", ") },
      ...grid, ...times, ...lines, ...empty), legend);
}

// {name: how many of `items` are in that state}, for a counts-over-time history.
export const countBy = (items, names, get = (x) => x.state) =>
  Object.fromEntries(names.map((n) => [n, items.filter((i) => get(i) === n).length]));

// A card with a chart of `names` counted in `items()` over time, sampled on `record()` and
// every 5 s while on screen.
export function countsCard(key, names, items, { id, title, get, colors } = {}) {
  const history = new History(key);
  const card = el("div", { className: "card", id: `${id}-card` });
  const record = () => {
    history.add(countBy(items(), names, get));
    card.replaceChildren(el("h3", { textContent: "Over time" }), lineChart(history, names, { id, title, colors, step: true }));
  };
  const timer = setInterval(() => (card.isConnected ? record() : clearInterval(timer)), 5000);
  return { card, record };
}
