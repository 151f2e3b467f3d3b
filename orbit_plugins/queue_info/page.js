// queue_info: the batch job this endpoint runs in (node-allocation card), the batch system's
// queues, its jobs, my allocations (tables).
import { button, dur, el, section, table } from "../ui.js";

// The allocation the endpoint runs in: job, nodes (each a chip), cores, GPUs, time used of the limit.
function allocationCard(a) {
  if (!a) return el("p", { className: "hint", textContent: "not inside a batch job (a login node or a workstation)" });
  const used = a.time_limit && a.runtime != null ? Math.min(100, (100 * a.runtime) / a.time_limit) : null;
  return el("div", {},
    el("table", {}, ...[["job", `${a.job_id}${a.job_name ? ` (${a.job_name})` : ""}`], ["queue", a.queue], ["account", a.account],
      ["nodes", a.n_nodes], ["CPUs per node", a.cpus_per_node], ["GPUs per node", a.gpus_per_node],
      ["time", `${dur(a.runtime)} of ${dur(a.time_limit)}`]]
      .map(([k, v]) => el("tr", {}, el("th", { textContent: k }), el("td", { textContent: v ?? "–" })))),
    used == null ? "" : el("div", { className: "bar", title: `${used.toFixed(0)} % of the wall time used` }, el("div", { style: `width:${used}%` })),
    el("div", { className: "nodes" }, ...a.nodelist.map((n) => el("span", { className: "node", textContent: n }))));
}

export default function queueInfoPage(ctx) {
  const backend = el("p", { id: "qi-backend", className: "hint", textContent: "…" });
  const queues = el("div", { id: "qi-queues" });
  const jobs = el("div", { id: "qi-jobs" });
  const allocs = el("div", { id: "qi-allocations" });
  const mine = el("div", { id: "qi-job" });
  const fail = (box, r) => box.replaceChildren(el("p", { className: "error", textContent: `[${r.error.code}] ${r.error.message}` }));

  async function load(force = false) {
    const b = await ctx.call("backend");
    backend.textContent = b.ok ? `batch system: ${b.result.backend}` : `[${b.error.code}] ${b.error.message}`;
    if (b.ok && b.result.backend === "none") {
      for (const box of [mine, queues, jobs, allocs]) box.replaceChildren(el("p", { className: "hint", textContent: "no Slurm or PBS on this endpoint" }));
      return;
    }
    const here = await ctx.call("job_allocation");
    if (here.ok) mine.replaceChildren(allocationCard(here.result.allocation)); else fail(mine, here);
    const info = await ctx.call("get_info", { force });
    if (info.ok) queues.replaceChildren(table([
      ["queue", (q) => q.name + (q.default ? " (default)" : "")], ["state", (q) => q.state],
      ["time limit", (q) => dur(q.time_limit)], ["nodes idle / total", (q) => `${q.nodes_idle ?? "?"} / ${q.nodes_total ?? "?"}`],
      ["CPUs/node", (q) => q.cpus_per_node], ["GPUs/node", (q) => q.gpus_per_node],
      ["mem/node", (q) => (q.mem_per_node_mb ? `${(q.mem_per_node_mb / 1024).toFixed(0)} GiB` : "–")],
      ["jobs run / queued", (q) => `${q.jobs_running ?? "?"} / ${q.jobs_queued ?? "?"}`],
    ], Object.values(info.result.queues))); else fail(queues, info);
    const theirs = await ctx.call("list_all_jobs", { force });
    if (theirs.ok) jobs.replaceChildren(table([
      ["job", (j) => j.job_id], ["name", (j) => j.name], ["user", (j) => j.user], ["queue", (j) => j.queue],
      ["state", (j) => j.state], ["nodes", (j) => j.nodes], ["used / limit", (j) => `${dur(j.time_used)} / ${dur(j.time_limit)}`],
      ["reason", (j) => j.reason],
    ], theirs.result.jobs, { empty: "no jobs" })); else fail(jobs, theirs);
    const acc = await ctx.call("list_allocations", { force });
    if (acc.ok) allocs.replaceChildren(table([
      ["account", (a) => a.account], ["user", (a) => a.user], ["partition", (a) => a.partition],
      ["QOS", (a) => a.qos.join(", ")], ["limits", (a) => Object.entries(a.limits).map(([k, v]) => `${k}=${v}`).join(" ")],
    ], acc.result.allocations, { empty: "no allocations" })); else fail(allocs, acc);
  }

  load();
  return [el("div", { className: "card" }, backend, button("Refresh", () => load(true))),
    section("This endpoint's batch job", mine), section("Queues", queues), section("My jobs in the queue", jobs), section("Allocations", allocs)];
}
