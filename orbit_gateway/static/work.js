// Your work in the sidebar: each endpoint's PSI/J jobs and task batches with live state badges.
// Loaded once per endpoint (list_jobs, list_tasks), then kept by job_status / task_status /
// task_status_batch events. The tasks of one submit_tasks call share their `submitted` time:
// they are shown as one batch.
import { rpc } from "./api.js";
import { badge, el, keepNewer } from "./ui.js";

const JOB_DONE = new Set(["COMPLETED", "FAILED", "CANCELED"]);
const TASK_DONE = new Set(["DONE", "FAILED", "CANCELED"]);
const SHOWN = 5;  // jobs and batches under each endpoint: the unfinished, then the newest
const jobs = {};  // endpoint -> Map(job_id -> {job_id, state, executable, submitted_at})
const tasks = {};  // endpoint -> Map(uid -> {uid, state, submitted})
const loaded = new Set();
const reloads = new Map();  // "endpoint plugin" -> timer: events about work we have not listed

const mapOf = (store, ep) => (store[ep] ??= new Map());

async function fetchLists(endpoint, psij, withTasks) {
  const [j, t] = await Promise.all([
    psij ? rpc(endpoint, "psij", "list_jobs") : null,
    withTasks ? rpc(endpoint, "tasks", "list_tasks", { limit: 500 }) : null,
  ]);
  if (j?.ok) for (const job of j.result.jobs) keepNewer(mapOf(jobs, endpoint), job.job_id, job);
  if (t?.ok) for (const task of t.result) keepNewer(mapOf(tasks, endpoint), task.uid, task);
  return Boolean(j?.ok || t?.ok);
}

// Fetch an endpoint's jobs and recent tasks once (again after `forget`); true if any came.
export async function loadWork(ep) {
  if (loaded.has(ep.endpoint)) return false;
  loaded.add(ep.endpoint);
  let got = false;
  try {
    got = await fetchLists(ep.endpoint, ep.plugins?.psij, ep.plugins?.tasks);
  } finally {
    if (!got) loaded.delete(ep.endpoint);  // try again with the next refresh
  }
  return got;
}

// Forget all work (another user logs in).
export function forget() {
  loaded.clear();
  for (const store of [jobs, tasks]) for (const ep of Object.keys(store)) delete store[ep];
  reloads.forEach(clearTimeout);
  reloads.clear();
}

// Apply one notification frame; `redraw` is called when the sidebar should be drawn again
// (at once, and after work it did not know of was listed: events carry no submission time).
export function trackEvent(f, redraw) {
  let unknown = false;
  const put = (store, key, data) => {
    const m = mapOf(store, f.endpoint);
    unknown ||= !m.has(data[key]);
    m.set(data[key], { ...(m.get(data[key]) || {}), ...data });
  };
  if (f.plugin === "psij" && f.topic === "job_status") put(jobs, "job_id", f.data);
  else if (f.plugin === "tasks" && f.topic === "task_status") put(tasks, "uid", f.data);
  else if (f.plugin === "tasks" && f.topic === "task_status_batch") f.data.tasks.forEach((t) => put(tasks, "uid", t));
  else return;
  redraw();
  const key = `${f.endpoint} ${f.plugin}`;
  if (unknown && !reloads.has(key)) {
    reloads.set(key, setTimeout(() => {
      reloads.delete(key);
      fetchLists(f.endpoint, f.plugin === "psij", f.plugin === "tasks").then(redraw, () => {});
    }, 500));
  }
}

function batches(endpoint) {
  const groups = new Map();
  for (const t of mapOf(tasks, endpoint).values()) {
    if (t.submitted == null) continue;  // heard of by an event only: shown once listed
    const key = t.submitted;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(t);
  }
  return [...groups.entries()].map(([at, list]) => ({ at, list, done: list.every((t) => TASK_DONE.has(t.state)) }));
}

// The newest first, unfinished ones before finished ones, at most SHOWN.
const pick = (items, done, at) => items.sort((a, b) => (done(a) - done(b)) || (at(b) - at(a))).slice(0, SHOWN);

function batchState(list) {
  const count = (s) => list.filter((t) => t.state === s).length;
  if (list.some((t) => !TASK_DONE.has(t.state))) return count("RUNNING") ? "RUNNING" : "QUEUED";
  return count("FAILED") ? "FAILED" : count("CANCELED") ? "CANCELED" : "DONE";
}

// The <ul> of work under one endpoint in the sidebar (null when there is none).
export function workList(endpoint) {
  const listed = [...mapOf(jobs, endpoint).values()].filter((j) => j.submitted_at != null);
  const js = pick(listed, (j) => JOB_DONE.has(j.state), (j) => j.submitted_at);
  const bs = pick(batches(endpoint), (b) => b.done, (b) => b.at);
  if (!js.length && !bs.length) return null;
  const item = (kind, id, href, label, state, title) => el("li", { className: "work", dataset: { [kind]: id, state } },
    badge(state), " ", el("a", { href, textContent: label, title }));
  return el("ul", { className: "work-list" },
    ...js.map((j) => item("job", j.job_id, `#/${endpoint}/psij?job=${j.job_id}`,
      `job ${j.job_id.slice(0, 8)}`, j.state, [j.executable, ...(j.arguments || [])].join(" "))),
    ...bs.map((b) => {
      const first = b.list.slice().sort((x, y) => x.uid.localeCompare(y.uid))[0];
      const label = b.list.length === 1 ? `task ${first.uid.replace(/^task\./, "").slice(0, 8)}` : `${b.list.length} tasks`;
      const left = b.list.filter((t) => !TASK_DONE.has(t.state)).length;
      return item("batch", first.uid, `#/${endpoint}/tasks?task=${first.uid}`, label, batchState(b.list),
        `${left} of ${b.list.length} unfinished, submitted ${new Date(b.at * 1000).toLocaleTimeString()}`);
    }));
}
