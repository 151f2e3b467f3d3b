// queue_info: the batch system's queues, its jobs, my allocations (tables).
import { button, dur, el, section, table } from "../ui.js";

export default function queueInfoPage(ctx) {
  const backend = el("p", { id: "qi-backend", className: "hint", textContent: "…" });
  const queues = el("div", { id: "qi-queues" });
  const jobs = el("div", { id: "qi-jobs" });
  const allocs = el("div", { id: "qi-allocations" });
  const fail = (box, r) => box.replaceChildren(el("p", { className: "error", textContent: `[${r.error.code}] ${r.error.message}` }));

  async function load(force = false) {
    const b = await ctx.call("backend");
    backend.textContent = b.ok ? `batch system: ${b.result.backend}` : `[${b.error.code}] ${b.error.message}`;
    if (b.ok && b.result.backend === "none") {
      for (const box of [queues, jobs, allocs]) box.replaceChildren(el("p", { className: "hint", textContent: "no Slurm or PBS on this endpoint" }));
      return;
    }
    const info = await ctx.call("get_info", { force });
    if (info.ok) queues.replaceChildren(table([
      ["queue", (q) => q.name + (q.default ? " (default)" : "")], ["state", (q) => q.state],
      ["time limit", (q) => dur(q.time_limit)], ["nodes idle / total", (q) => `${q.nodes_idle ?? "?"} / ${q.nodes_total ?? "?"}`],
      ["CPUs/node", (q) => q.cpus_per_node], ["GPUs/node", (q) => q.gpus_per_node],
      ["mem/node", (q) => (q.mem_per_node_mb ? `${(q.mem_per_node_mb / 1024).toFixed(0)} GiB` : "–")],
      ["jobs run / queued", (q) => `${q.jobs_running ?? "?"} / ${q.jobs_queued ?? "?"}`],
    ], Object.values(info.result.queues))); else fail(queues, info);
    const mine = await ctx.call("list_all_jobs", { force });
    if (mine.ok) jobs.replaceChildren(table([
      ["job", (j) => j.job_id], ["name", (j) => j.name], ["user", (j) => j.user], ["queue", (j) => j.queue],
      ["state", (j) => j.state], ["nodes", (j) => j.nodes], ["used / limit", (j) => `${dur(j.time_used)} / ${dur(j.time_limit)}`],
      ["reason", (j) => j.reason],
    ], mine.result.jobs, { empty: "no jobs" })); else fail(jobs, mine);
    const acc = await ctx.call("list_allocations", { force });
    if (acc.ok) allocs.replaceChildren(table([
      ["account", (a) => a.account], ["user", (a) => a.user], ["partition", (a) => a.partition],
      ["QOS", (a) => a.qos.join(", ")], ["limits", (a) => Object.entries(a.limits).map(([k, v]) => `${k}=${v}`).join(" ")],
    ], acc.result.allocations, { empty: "no allocations" })); else fail(allocs, acc);
  }

  load();
  return [el("div", { className: "card" }, backend, button("Refresh", () => load(true))),
    section("Queues", queues), section("My jobs in the queue", jobs), section("Allocations", allocs)];
}
