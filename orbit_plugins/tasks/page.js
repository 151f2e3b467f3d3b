// tasks: submit a command or a function, watch task_status events, inspect and cancel tasks;
// `?task=UID` in the page's address opens that task.
import { STATE_COLORS, countsCard } from "../chart.js";
import { badge, button, coalesce, el, field, input, keepNewer, section, show, table, when } from "../ui.js";

const FINAL = new Set(["DONE", "FAILED", "CANCELED"]);
const STATES = ["QUEUED", "RUNNING", "DONE", "FAILED", "CANCELED"];

export default function tasksPage(ctx) {
  const tasks = new Map();
  const listBox = el("div", { id: "tasks-list" });
  const detail = el("div", { id: "task-detail", className: "card", hidden: true });
  let shown = null;
  const overTime = countsCard(`tasks.${ctx.endpoint}`, STATES, () => [...tasks.values()],
    { id: "chart-tasks", colors: STATE_COLORS, title: "your latest tasks (up to 200) by state" });

  // a redraw between a button's press and release would swallow the click: wait for it
  let pressed = false, held = false;
  listBox.addEventListener("pointerdown", () => { pressed = true; });
  const release = () => {  // after the click that follows this release
    pressed = false;
    if (held) { held = false; setTimeout(render, 0); }
  };
  listBox.addEventListener("pointerup", release);
  listBox.addEventListener("pointerleave", release);

  const render = () => { overTime.record(); if (pressed) { held = true; return; } listBox.replaceChildren(table([
    ["task", (t) => t.uid], ["kind", (t) => t.kind], ["state", (t) => badge(t.state)], ["exit", (t) => t.exit_code],
    ["submitted", (t) => when(t.submitted)],
    ["", (t) => (FINAL.has(t.state) ? "" : button("Cancel", async (ev) => {
      ev.stopPropagation();
      const r = await ctx.call("cancel_task", { uid: t.uid });
      if (!r.ok) ctx.toast(`[${r.error.code}] ${r.error.message}`);
    }, { className: "danger small" }))],
  ], [...tasks.values()].sort((a, b) => b.submitted - a.submitted), { empty: "no tasks yet", onRow: (t) => open(t.uid) })); };

  const refreshSoon = coalesce(() => refresh(), 300);  // tasks not listed yet: one list_tasks for all

  async function refresh() {
    const r = await ctx.call("list_tasks", { limit: 200 });
    if (r.ok) { for (const t of r.result) keepNewer(tasks, t.uid, t); render(); }
  }

  async function open(uid) {
    shown = uid;
    const r = await ctx.call("get_task", { uid });
    if (!r.ok || shown !== uid) return;
    const t = r.result;
    tasks.set(uid, t);
    detail.hidden = false;
    detail.dataset.task = uid;
    detail.replaceChildren(el("h3", { textContent: `Task ${uid}` }), el("p", {}, badge(t.state), t.exit_code != null ? ` exit ${t.exit_code}` : ""),
      ...[["stdout", t.stdout], ["stderr", t.stderr], ["return value", t.return_value == null ? null : JSON.stringify(t.return_value, null, 2)],
        ["error", t.error && `${t.exception || ""} ${t.error}\n${t.traceback || ""}`]]
        .filter(([, v]) => v).flatMap(([k, v]) => [el("h4", { textContent: k }), el("pre", { className: "output", textContent: v })]));
  }

  const update = (change) => {
    const t = tasks.get(change.uid);
    if (t) Object.assign(t, change); else refreshSoon();
    if (shown === change.uid && FINAL.has(change.state)) open(change.uid);
  };
  ctx.on((f) => {
    if (f.topic === "task_status") update(f.data);
    if (f.topic === "task_status_batch") f.data.tasks.forEach(update);
    render();
  });

  const form = el("form", { id: "task-form" },
    field("Command (executable)", input("executable", { placeholder: "/bin/hostname" })),
    field("Arguments (one per line)", el("textarea", { name: "arguments", rows: 2 })),
    field("or a function (module:name)", input("function", { placeholder: "math:factorial" })),
    field("Function args (JSON list)", input("args", { placeholder: "[20]" })),
    field("Timeout (s)", input("timeout", { type: "number", min: 0, step: "any" })),
    el("button", { type: "submit", textContent: "Submit task" }));
  const out = el("pre", { className: "result", hidden: true });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = form.elements;
    let args = [];
    try { args = f.args.value ? JSON.parse(f.args.value) : []; } catch (err) {
      show(out, { ok: false, error: { code: "BAD_REQUEST", message: `function args are not JSON: ${err.message}` } });
      return;
    }
    const spec = f.function.value
      ? { function: f.function.value, args }
      : { executable: f.executable.value, arguments: f.arguments.value.split("\n").filter((a) => a !== "") };
    if (f.timeout.value) spec.timeout = Number(f.timeout.value);
    const r = show(out, await ctx.call("submit_tasks", { tasks: [spec] }), (res) => res.map((t) => `${t.uid} ${t.state}`).join("\n"));
    if (r) { await refresh(); open(r[0].uid); }
  });

  const cancelAll = button("Cancel all", async () => {
    if (!window.confirm(`Cancel every unfinished task of yours on ${ctx.endpoint}?`)) return;
    const r = await ctx.call("cancel_all_tasks");
    ctx.toast(r.ok ? `canceled ${r.result.cancelled} tasks` : `[${r.error.code}] ${r.error.message}`);
    refresh();
  }, { id: "tasks-cancel-all", className: "danger" });
  refresh();
  const linked = ctx.params?.get("task");  // #/<endpoint>/tasks?task=UID (the sidebar's links)
  if (linked) open(linked);
  return [section("Submit a task", form, out), section("My tasks", button("Refresh", refresh), cancelAll, listBox), detail, overTime.card];
}
