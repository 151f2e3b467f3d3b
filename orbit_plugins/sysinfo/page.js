// The sysinfo page: a live history chart (CPU, memory, disk; sampled every 5 s while shown, and
// from `metrics` events) above System, CPU, Memory, Disks, Network and GPU cards.
import { History, lineChart } from "../chart.js";
import { el } from "../forms.js";

const gib = (b) => (b == null ? "–" : `${(b / 2 ** 30).toFixed(1)} GiB`);
const bar = (pct) => el("div", { className: "bar" }, el("div", { style: `width:${pct ?? 0}%` }));
const rows = (pairs) => el("table", {}, ...pairs.map(([k, v]) =>
  el("tr", {}, el("th", { textContent: k }), el("td", { textContent: v ?? "–" }))));
const card = (title, ...body) => el("div", { className: "card", id: `card-${title.toLowerCase()}` },
  el("h3", { textContent: title }), ...body);

export function sysinfoCards(m) {
  const cards = [];
  if (m.system) cards.push(card("System", rows([["host", m.system.hostname], ["user", m.system.user],
    ["os", `${m.system.os} ${m.system.os_release ?? ""}`], ["kernel", m.system.kernel],
    ["arch", m.system.arch], ["python", m.system.python],
    ["uptime", `${(m.system.uptime_seconds / 3600).toFixed(1)} h`]])));
  if (m.cpu) cards.push(card("CPU", rows([["model", m.cpu.model], ["cores", `${m.cpu.cores_physical ?? "?"} / ${m.cpu.cores_logical}`],
    ["busy", `${m.cpu.percent.toFixed(1)} %`]]), bar(m.cpu.percent)));
  if (m.memory) cards.push(card("Memory", rows([["total", gib(m.memory.total)], ["available", gib(m.memory.available)],
    ["used", `${m.memory.percent.toFixed(1)} %`], ["swap", `${gib(m.memory.swap.used)} of ${gib(m.memory.swap.total)}`]]),
    bar(m.memory.percent)));
  if (m.disks) cards.push(card("Disks", el("table", {}, ...m.disks.map((d) => el("tr", {},
    el("td", { textContent: d.mountpoint }), el("td", { textContent: d.fstype }),
    el("td", { textContent: `${gib(d.used)} / ${gib(d.total)}` }))))));
  if (m.network) cards.push(card("Network", el("table", {}, ...m.network.map((n) => el("tr", {},
    el("td", { textContent: `${n.name}${n.is_up ? "" : " (down)"}` }),
    el("td", { textContent: n.addresses.filter((a) => a.family !== "mac").map((a) => a.address).join(", ") }))))));
  cards.push(card("GPUs", m.gpus && m.gpus.length
    ? el("table", {}, ...m.gpus.map((g) => el("tr", {}, el("td", { textContent: `${g.vendor} ${g.name}` }),
      el("td", { textContent: `${g.utilization_percent ?? "–"} %` }))))
    : el("p", { className: "hint", textContent: "no GPU found" })));
  return el("div", { className: "cards" }, ...cards);
}

const POLL = 5000;  // ms between fresh samples while the page is on screen
const histories = {};  // endpoint -> History of cpu / memory / disk percent

const seconds = (iso) => (iso ? Date.parse(iso) / 1000 : undefined);  // collected_at is ISO 8601

function sample(m) {
  const disk = (m.disks || []).find((d) => d.mountpoint === "/") || (m.disks || [])[0];
  return { cpu: m.cpu?.percent, memory: m.memory?.percent, disk: disk?.total && disk.used != null ? (100 * disk.used) / disk.total : undefined };
}

export default function sysinfoPage(ctx) {
  const history = (histories[ctx.endpoint] ??= new History(`sysinfo.${ctx.endpoint}`));
  const chartBox = el("div", { className: "card", id: "sysinfo-history" });
  const drawChart = () => chartBox.replaceChildren(el("h3", { textContent: "History" }),
    lineChart(history, ["cpu", "memory", "disk"], { id: "chart-sysinfo", title: "busy and used, % (disk: /)", unit: "%", max: 100 }));
  const box = el("div", { id: "sysinfo-cards", textContent: "loading…" });
  const load = (fresh) => ctx.call("metrics", fresh ? { fresh, sections: ["cpu", "memory", "disks"] } : {}).then((r) => {
    if (r.ok) { history.add(sample(r.result), seconds(r.result.collected_at)); drawChart(); }
    if (!fresh) box.replaceChildren(r.ok ? sysinfoCards(r.result) : el("p", { className: "error", textContent: r.error.message }));
  });
  ctx.on((f) => {  // the endpoint's own periodic summary (cpu and memory)
    if (f.topic !== "metrics") return;
    history.add({ cpu: f.data.cpu_percent, memory: f.data.memory_percent }, seconds(f.data.collected_at));
    drawChart();
  });
  const timer = setInterval(() => (chartBox.isConnected ? load(true) : clearInterval(timer)), POLL);
  drawChart();
  load(false);
  return [chartBox, box];
}
