// psij: submit a job, list my jobs, monitor one with live output (job_output events) and cancel;
// `?job=ID` in the page's address opens that job's monitor.
import { STATE_COLORS, countsCard } from "../chart.js";
import { badge, behind, button, coalesce, dur, el, fillList, field, input, keepNewer, keyValueRows, section, show, table, when } from "../ui.js";

const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELED"]);
const STATES = ["QUEUED", "ACTIVE", "COMPLETED", "FAILED", "CANCELED"];

export default function psijPage(ctx) {
  const jobs = new Map();  // job_id -> JobInfo (updated by job_status events)
  const listBox = el("div", { id: "psij-jobs" });
  const monitor = el("div", { id: "job-monitor", className: "card", hidden: true });
  let watched = null;  // { id, out: {stdout, stderr}, offsets, busy, queue }
  const overTime = countsCard(`psij.${ctx.endpoint}`, STATES, () => [...jobs.values()],
    { id: "chart-jobs", colors: STATE_COLORS, title: "your jobs by state", get: (j) => (j.state === "NEW" ? "QUEUED" : j.state) });

  const renderList = () => { overTime.record(); listBox.replaceChildren(table([
    ["job", (j) => j.job_id.slice(0, 8)], ["command", (j) => [j.executable, ...j.arguments].join(" ")],
    ["executor", (j) => j.executor], ["queue", (j) => j.queue_name ?? ""], ["account", (j) => j.account ?? ""],
    ["nodes", (j) => j.node_count ?? ""], ["state", (j) => badge(j.state)], ["exit", (j) => j.exit_code],
    ["submitted", (j) => when(j.submitted_at)],
  ], [...jobs.values()].sort((a, b) => b.submitted_at - a.submitted_at),
  { empty: "no jobs yet", onRow: (j) => watch(j.job_id) })); };

  const refreshSoon = coalesce(() => refresh(), 300);  // jobs not listed yet: one list_jobs for a burst

  async function refresh() {
    const r = await ctx.call("list_jobs", {});
    if (r.ok) { for (const j of r.result.jobs) keepNewer(jobs, j.job_id, j); renderList(); }
  }

  // ---- monitor: status + output, kept exact by byte offsets
  function setState(s) {
    // states only move forward: a get_job_status reply sent before a job_status event that
    // arrived first must not take the monitor back (QUEUED over ACTIVE)
    if (watched && behind(s.state, watched.state)) return;
    if (watched) watched.state = s.state;
    monitor.querySelector(".state").replaceChildren(badge(s.state),
      s.exit_code != null ? ` exit ${s.exit_code}` : "", s.message ? ` ${s.message}` : "");
    monitor.querySelector("#job-cancel").disabled = TERMINAL.has(s.state);
  }

  function append(stream, text, end) {
    watched.out[stream].textContent += text;
    watched.offsets[stream] = end;
    const pre = watched.out[stream];
    pre.scrollTop = pre.scrollHeight;
  }

  async function catchUp() {  // fetch whatever the events did not bring (start, gaps, the end)
    const w = watched;
    if (w.busy) { w.again = true; return; }  // one read at a time: the same offsets twice would repeat text
    w.busy = true;
    const before = { ...w.offsets };
    let r = null;
    try {
      r = await ctx.call("get_job_status", { job_id: w.id, stdout_offset: w.offsets.stdout, stderr_offset: w.offsets.stderr });
    } catch (err) {  // the gateway is unreachable: the next event or state change reads again
      r = { ok: false, error: { code: "HTTP", message: String(err) } };
    } finally {
      w.busy = false;
    }
    if (w !== watched) return;
    if (r.ok) {
      const s = r.result;
      if (s.stdout) append("stdout", s.stdout, s.stdout_offset);
      if (s.stderr) append("stderr", s.stderr, s.stderr_offset);
      setState(s);
    } else monitor.querySelector(".state").textContent = `[${r.error.code}] ${r.error.message}`;
    const moved = r.ok && (w.offsets.stdout > before.stdout || w.offsets.stderr > before.stderr);
    const more = r.ok && (r.result.stdout_offset < r.result.stdout_size || r.result.stderr_offset < r.result.stderr_size);
    if ((more && moved) || w.again) {  // more than one reply's worth of output, or asked meanwhile
      w.again = false;
      catchUp();
      return;
    }
    const pending = w.queue.splice(0);
    for (const c of pending) onOutput(c);
  }

  function onOutput(c) {
    if (!watched || c.job_id !== watched.id) return;
    if (watched.busy) { watched.queue.push(c); return; }
    const have = watched.offsets[c.stream];
    if (c.end <= have) return;  // already shown
    if (c.offset === have) append(c.stream, c.data, c.end);
    else catchUp();  // a gap (missed events): read from the file
  }

  function watch(id) {
    const out = { stdout: el("pre", { id: "job-stdout", className: "output" }), stderr: el("pre", { id: "job-stderr", className: "output" }) };
    watched = { id, out, offsets: { stdout: 0, stderr: 0 }, busy: false, queue: [] };
    const result = el("pre", { className: "result", hidden: true });
    monitor.hidden = false;
    monitor.dataset.job = id;
    monitor.replaceChildren(el("h3", { textContent: `Job ${id}` }), el("p", { className: "state" }),
      button("Cancel job", async () => show(result, await ctx.call("cancel_job", { job_id: id })), { id: "job-cancel", className: "danger" }),
      result, el("h4", { textContent: "stdout" }), out.stdout, el("h4", { textContent: "stderr" }), out.stderr);
    catchUp();
    const w = watched;
    const poll = setInterval(() => {  // events may be lost (a reconnect): read every 5 s too
      if (watched !== w || !monitor.isConnected || TERMINAL.has(w.state)) clearInterval(poll);
      else catchUp();
    }, 5000);
    monitor.scrollIntoView({ block: "nearest" });
  }

  ctx.on((f) => {
    if (f.topic === "job_output") onOutput(f.data);
    if (f.topic === "job_status") {
      const known = jobs.get(f.data.job_id);
      if (known) { Object.assign(known, f.data); renderList(); } else refreshSoon();
      if (watched && watched.id === f.data.job_id) {
        setState(f.data);
        if (TERMINAL.has(f.data.state)) catchUp();
      }
    }
  });

  // ---- submission forms: a job, or a child endpoint in a batch job (same batch fields)
  const EXECUTORS = ["local", "slurm", "pbs", "lsf", "cobalt", "flux"];
  const listed = (name, list) => {  // an input offering the options of <datalist id=list>
    const box = input(name, { autocomplete: "off" });
    box.setAttribute("list", list);
    return box;
  };
  const batchFields = (prefix) => el("div", { className: "row" },
    field("Executor", el("select", { name: "executor" }, ...EXECUTORS.map((x) => el("option", { value: x, textContent: x })))),
    field("Queue", listed("queue_name", `${prefix}-queues`)),
    field("Account", listed("account", `${prefix}-accounts`)),
    field("Nodes", input("node_count", { type: "number", min: 1 })),
    field("Wall time (s)", input("duration", { type: "number", min: 1 })),
    el("datalist", { id: `${prefix}-queues` }), el("datalist", { id: `${prefix}-accounts` }));
  const env = keyValueRows("job-env", { add: "+ environment variable" });
  const custom = keyValueRows("job-custom", { key: "slurm.constraint", value: "gpu", add: "+ custom attribute" });
  const form = el("form", { id: "job-form" },
    field("Executable *", input("executable", { required: true, placeholder: "/bin/echo" })),
    field("Arguments (one per line)", el("textarea", { name: "arguments", rows: 3 })),
    field("Working directory", input("directory", { placeholder: "default: the plugin's job dir" })),
    batchFields("job"), el("h4", { textContent: "Environment" }), env.node,
    el("h4", { textContent: "Custom attributes (executor-specific)" }), custom.node,
    el("button", { type: "submit", textContent: "Submit job" }));
  const num = (x) => (x.value ? Number(x.value) : undefined);
  const batchSpec = (f) => ({
    resources: { node_count: num(f.node_count) },
    attributes: { queue_name: f.queue_name.value || undefined, account: f.account.value || undefined, duration: num(f.duration) },
  });
  const submitted = el("pre", { className: "result", hidden: true });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = form.elements;
    const spec = {
      executable: f.executable.value,
      arguments: f.arguments.value.split("\n").filter((a) => a !== ""),
      directory: f.directory.value || undefined,
      environment: env.value(),
      ...batchSpec(f),
    };
    spec.attributes.custom_attributes = custom.value();
    const job = show(submitted, await ctx.call("submit_job", { spec, executor: f.executor.value }), (j) => `submitted ${j.job_id} (${j.state})`);
    if (job) { jobs.set(job.job_id, job); renderList(); watch(job.job_id); }
  });

  const childEnv = keyValueRows("child-env", { add: "+ environment variable" });
  const child = el("form", { id: "child-form" },
    el("p", { className: "hint", textContent: "Starts an Orbit endpoint inside a batch job; it must be provisioned on the broker and its URL stored on this endpoint (see the psij plugin's README)." }),
    el("div", { className: "row" }, field("Name *", input("name", { required: true, placeholder: "hpc1-node" })),
      field("Plugins (comma separated)", input("plugins", { value: "sysinfo" })),
      field("Tunnel", el("select", { name: "tunnel" }, ...["none", "forward", "reverse"].map((x) => el("option", { value: x, textContent: x }))))),
    batchFields("child"), el("h4", { textContent: "Environment" }), childEnv.node,
    el("button", { type: "submit", textContent: "Launch child endpoint" }));
  child.elements.executor.value = "slurm";
  const launched = el("pre", { className: "result", hidden: true });
  child.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = child.elements;
    const args = { name: f.name.value.trim(), executor: f.executor.value, tunnel: f.tunnel.value,
      plugins: f.plugins.value.split(",").map((p) => p.trim()).filter(Boolean),
      spec: { ...batchSpec(f), environment: childEnv.value() } };
    const info = show(launched, await ctx.call("submit_endpoint", args), (c) => `child ${c.name} in job ${c.job_id} (${c.executor}${c.native_id ? ` ${c.native_id}` : ""})`);
    if (info) { await refresh(); watch(info.job_id); }
  });

  // queue_info (when the endpoint has it) pre-fills executor, queues and accounts
  const prefillHint = el("p", { className: "hint", id: "job-prefill" });
  async function prefill() {
    const info = await ctx.rpc("queue_info", "get_info", {});
    if (!info.ok || info.result.backend === "none") return;
    const queues = Object.values(info.result.queues);
    const accounts = await ctx.rpc("queue_info", "list_allocations", {});
    const names = accounts.ok ? [...new Set(accounts.result.allocations.map((a) => a.account))] : [];
    const byDefault = queues.find((q) => q.default);
    for (const [box, prefix] of [[form, "job"], [child, "child"]]) {
      const f = box.elements;
      fillList(box.querySelector(`#${prefix}-queues`), queues.map((q) => ({ value: q.name,
        label: `${q.state}, ${q.nodes_idle ?? "?"} of ${q.nodes_total ?? "?"} nodes idle, limit ${dur(q.time_limit)}` })));
      fillList(box.querySelector(`#${prefix}-accounts`), names.map((a) => ({ value: a })));
      f.executor.value = info.result.backend;
      if (byDefault && !f.queue_name.value) f.queue_name.value = byDefault.name;
      if (names.length === 1 && !f.account.value) f.account.value = names[0];
    }
    prefillHint.textContent = `from queue_info: ${info.result.backend}, ${queues.length} queues`
      + (byDefault ? `, default ${byDefault.name}` : "") + (names.length ? `, accounts ${names.join(", ")}` : "");
  }
  prefill().catch(() => {});

  refresh();
  const linked = ctx.params?.get("job");  // #/<endpoint>/psij?job=ID (the sidebar's links)
  if (linked) watch(linked);
  return [section("Submit a job", prefillHint, form, submitted),
    section("My jobs", button("Refresh", refresh), listBox), monitor, overTime.card,
    el("details", { className: "card", id: "child-launch" }, el("summary", { textContent: "Launch a child endpoint" }), child, launched)];
}
