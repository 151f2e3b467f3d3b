// psij: submit a job, list my jobs, monitor one with live output (job_output events) and cancel;
// `?job=ID` in the page's address opens that job's monitor.
import { badge, button, el, field, input, section, show, table, when } from "../ui.js";

const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELED"]);

export default function psijPage(ctx) {
  const jobs = new Map();  // job_id -> JobInfo (updated by job_status events)
  const listBox = el("div", { id: "psij-jobs" });
  const monitor = el("div", { id: "job-monitor", className: "card", hidden: true });
  let watched = null;  // { id, out: {stdout, stderr}, offsets, busy, queue }

  const renderList = () => listBox.replaceChildren(table([
    ["job", (j) => j.job_id.slice(0, 8)], ["command", (j) => [j.executable, ...j.arguments].join(" ")],
    ["executor", (j) => j.executor], ["queue", (j) => j.queue_name ?? ""], ["account", (j) => j.account ?? ""],
    ["nodes", (j) => j.node_count ?? ""], ["state", (j) => badge(j.state)], ["exit", (j) => j.exit_code],
    ["submitted", (j) => when(j.submitted_at)],
  ], [...jobs.values()].sort((a, b) => b.submitted_at - a.submitted_at),
  { empty: "no jobs yet", onRow: (j) => watch(j.job_id) }));

  async function refresh() {
    const r = await ctx.call("list_jobs", {});
    if (r.ok) { for (const j of r.result.jobs) jobs.set(j.job_id, j); renderList(); }
  }

  // ---- monitor: status + output, kept exact by byte offsets
  function setState(s) {
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
    w.busy = true;
    const r = await ctx.call("get_job_status", { job_id: w.id, stdout_offset: w.offsets.stdout, stderr_offset: w.offsets.stderr });
    if (w !== watched) return;
    if (r.ok) {
      const s = r.result;
      if (s.stdout) append("stdout", s.stdout, s.stdout_offset);
      if (s.stderr) append("stderr", s.stderr, s.stderr_offset);
      setState(s);
    } else monitor.querySelector(".state").textContent = `[${r.error.code}] ${r.error.message}`;
    w.busy = false;
    if (r.ok && (r.result.stdout_offset < r.result.stdout_size || r.result.stderr_offset < r.result.stderr_size)) {
      catchUp();  // more than one reply's worth (max_bytes) of output: keep reading
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
    monitor.scrollIntoView({ block: "nearest" });
  }

  ctx.on((f) => {
    if (f.topic === "job_output") onOutput(f.data);
    if (f.topic === "job_status") {
      const known = jobs.get(f.data.job_id);
      if (known) { Object.assign(known, f.data); renderList(); } else refresh();
      if (watched && watched.id === f.data.job_id) {
        setState(f.data);
        if (TERMINAL.has(f.data.state)) catchUp();
      }
    }
  });

  // ---- submission form
  const form = el("form", { id: "job-form" },
    field("Executable *", input("executable", { required: true, placeholder: "/bin/echo" })),
    field("Arguments (one per line)", el("textarea", { name: "arguments", rows: 3 })),
    field("Working directory", input("directory", { placeholder: "default: the plugin's job dir" })),
    field("Executor", el("select", { name: "executor" }, ...["local", "slurm", "pbs", "lsf", "cobalt", "flux"].map((x) => el("option", { value: x, textContent: x })))),
    el("div", { className: "row" },
      field("Queue", input("queue_name")), field("Account", input("account")),
      field("Nodes", input("node_count", { type: "number", min: 1 })),
      field("Wall time (s)", input("duration", { type: "number", min: 1 }))),
    el("button", { type: "submit", textContent: "Submit job" }));
  const submitted = el("pre", { className: "result", hidden: true });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = form.elements;
    const num = (x) => (x.value ? Number(x.value) : undefined);
    const spec = {
      executable: f.executable.value,
      arguments: f.arguments.value.split("\n").filter((a) => a !== ""),
      directory: f.directory.value || undefined,
      resources: { node_count: num(f.node_count) },
      attributes: { queue_name: f.queue_name.value || undefined, account: f.account.value || undefined, duration: num(f.duration) },
    };
    const job = show(submitted, await ctx.call("submit_job", { spec, executor: f.executor.value }), (j) => `submitted ${j.job_id} (${j.state})`);
    if (job) { jobs.set(job.job_id, job); renderList(); watch(job.job_id); }
  });

  refresh();
  const linked = ctx.params?.get("job");  // #/<endpoint>/psij?job=ID (the sidebar's links)
  if (linked) watch(linked);
  return [section("Submit a job", form, submitted),
    section("My jobs", button("Refresh", refresh), listBox), monitor];
}
