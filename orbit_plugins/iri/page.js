// iri: DOE IRI facilities through this endpoint: pick one, connect with your token (memory only), see its status,
// resources, incidents, projects and allocations; submit PSI/J jobs, follow them live (job_status events), cancel.
import { badge, button, el, field, fillList, input, keyValueRows, section, show, table, when } from "../ui.js";

const FINAL = new Set(["completed", "failed", "canceled"]);
const HEALTH = { up: "online", degraded: "stale", down: "offline" };  // a resource's status -> badge colour
const chip = (text, colour) => el("span", { className: `badge ${colour}`, textContent: text });
const fail = (r, what = "") => el("p", { className: "error", textContent: `${what}[${r.error.code}] ${r.error.message}` });
const hint = (text) => el("p", { className: "hint", textContent: text });
const tail = (uri) => String(uri ?? "").split("/").pop();
const stateOf = (j) => String(j.status?.state ?? "unknown").toLowerCase();
const key = (j) => `${j.resource_id}/${j.id}`;
const some = (o) => {  // o without its unset fields; undefined when none is left (then nothing is sent)
  const kept = Object.entries(o).filter(([, v]) => v !== undefined && v !== "" && !(Array.isArray(v) && !v.length));
  return kept.length ? Object.fromEntries(kept) : undefined;
};
const listed = (name, list, attrs) => { const b = input(name, { autocomplete: "off", ...attrs }); b.setAttribute("list", list); return b; };
const pre = (id) => el("pre", { id, className: "result", hidden: true });

export default function iriPage(ctx) {
  const con = (method, args = {}) => ctx.rpc("iri_connect", method, args);
  let site = ctx.params?.get("site") || null, facilities = [], compute = [], gen = 0;
  const jobs = new Map();  // "<resource>/<job id>" -> Job of the chosen site, kept by job_status events
  const box = (id) => el("div", { id });
  const [picker, status, resources, incidents, projects, allocations, jobsBox, jobsNote] = ["iri-facilities",
    "iri-status", "iri-resources", "iri-incidents", "iri-projects", "iri-allocations", "iri-jobs", "iri-jobs-note"].map(box);
  const siteBoxes = [resources, incidents, projects, allocations, jobsBox];
  const [detail, resDetail, connectOut, submitted] = ["iri-job", "iri-resource", "iri-connect-result", "iri-job-result"].map(pre);
  const current = () => facilities.find((f) => f.site === site);

  // ---- facilities and the connection
  async function loadFacilities() {
    const r = await con("list_facilities");
    if (!r.ok) { picker.replaceChildren(fail(r)); return; }
    facilities = r.result.facilities;
    if (!current()) site = (facilities.find((f) => f.connected) || facilities[0])?.site ?? null;
    picker.replaceChildren(table([
      ["", (f) => (f.site === site ? "▶" : "")], ["site", (f) => f.site], ["facility", (f) => f.label], ["API", (f) => f.url],
      ["token", (f) => f.auth || "–"], ["", (f) => (f.connected ? chip("connected", "online") : chip("not connected", "unknown"))],
    ], facilities, { empty: `no facilities in ${r.result.config}`, onRow: (f) => pick(f.site) }));
  }

  function pick(name) {  // the choice goes into the page's address too (#/<endpoint>/iri?site=...)
    site = name; connectOut.hidden = true; submitted.hidden = true;
    history.replaceState(null, "", `#/${ctx.endpoint}/${ctx.plugin}?site=${encodeURIComponent(name)}`);
    loadFacilities(); loadSite();
  }

  const who = el("p", { id: "iri-site", className: "hint" });
  const connectForm = el("form", { id: "iri-connect" }, who, el("div", { className: "row" },
    field("Access token", input("token", { type: "password", autocomplete: "off", required: true })),
    el("button", { type: "submit", textContent: "Connect" }),
    button("Disconnect", disconnect, { id: "iri-disconnect", className: "secondary" }),
    button("Refresh", () => loadSite(), { className: "secondary" })));
  connectForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = connectForm.elements.token.value;
    connectForm.elements.token.value = "";  // not left in the page, never shown back
    const ok = show(connectOut, await con("connect", { site, token }),
      (c) => `${c.status === "token_updated" ? "token updated for" : "connected to"} ${c.label} (${c.url})`);
    if (ok) { await loadFacilities(); loadSite(); }
  });
  async function disconnect() {
    const ok = show(connectOut, await con("disconnect", { site }),
      (d) => `disconnected from ${d.site}; ${d.forgotten_jobs} job(s) no longer followed`);
    if (ok) { await loadFacilities(); loadSite(); }
  }

  async function loadStatus() {
    const r = await con("get_status", { site });
    if (!r.ok) { status.replaceChildren(fail(r)); return false; }
    const s = r.result;
    status.replaceChildren(el("table", {}, ...[["connection", s.connected ? `connected since ${when(s.connected_at)}` : "not connected"],
      ["jobs followed", s.connected ? s.watched_jobs : "–"], ["last poll error", s.last_error || "none"]]
      .map(([k, v]) => el("tr", {}, el("th", { textContent: k }), el("td", { textContent: String(v) })))));
    return s.connected;
  }

  // ---- what the facility says (status and account routes)
  async function loadSite() {
    const mine = ++gen, fresh = () => mine === gen;
    const f = current();
    who.textContent = f ? `${f.label} (${f.site}), ${f.url}${f.auth ? ` – token: ${f.auth}` : ""}` : "no facility chosen";
    jobs.clear(); detail.hidden = true; resDetail.hidden = true; jobsNote.replaceChildren();
    if (!f) return;
    const connected = await loadStatus();
    if (!fresh()) return;
    if (!connected) { for (const b of siteBoxes) b.replaceChildren(hint(`not connected to ${f.label}: connect with your token above`)); return; }
    await Promise.all([loadResources(fresh), loadIncidents(fresh), loadAccount(fresh)]);
    if (fresh()) refreshJobs();
  }

  async function loadResources(fresh) {
    const r = await ctx.call("list_resources", { site, resource_type: null });
    if (!fresh()) return;
    if (!r.ok) { resources.replaceChildren(fail(r)); return; }
    const items = r.result.items, kinds = items.filter((x) => x.resource_type === "compute");
    compute = kinds.map((x) => x.id);
    fillList(resList, kinds.map((x) => ({ value: x.id, label: `${x.name} (${x.current_status})` })));
    if (!compute.includes(form.elements.resource_id.value)) form.elements.resource_id.value = (kinds.find((x) => x.current_status === "up") || kinds[0])?.id ?? "";
    resources.replaceChildren(table([
      ["resource", (x) => x.id], ["name", (x) => x.name], ["type", (x) => x.resource_type], ["group", (x) => x.group],
      ["status", (x) => chip(x.current_status ?? "?", HEALTH[x.current_status] || "")], ["description", (x) => x.description],
    ], items, { empty: "no resources", onRow: async (x) => show(resDetail, await ctx.call("get_resource", { site, resource_id: x.id })) }));
  }

  async function loadIncidents(fresh) {
    const r = await ctx.call("list_incidents", { site });
    if (!fresh()) return;
    incidents.replaceChildren(r.ok ? table([
      ["incident", (i) => i.id], ["name", (i) => i.name], ["status", (i) => i.status], ["type", (i) => i.type],
      ["from", (i) => i.start], ["until", (i) => i.end ?? "open"], ["resolution", (i) => i.resolution],
      ["resources", (i) => (i.resource_uris || []).map(tail).join(", ")],
    ], r.result.items, { empty: "no incidents" }) : fail(r));
  }

  async function loadAccount(fresh) {
    const r = await ctx.call("list_projects", { site });
    if (!fresh()) return;
    if (!r.ok) { projects.replaceChildren(fail(r)); allocations.replaceChildren(fail(r)); return; }
    const list = r.result.items;
    fillList(accList, list.map((p) => ({ value: p.id, label: p.name })));
    if (list.length === 1 && !form.elements.account.value) form.elements.account.value = list[0].id;
    projects.replaceChildren(table([["project", (p) => p.id], ["name", (p) => p.name], ["description", (p) => p.description],
      ["users", (p) => (p.user_ids || []).length]], list, { empty: "no projects" }));
    const answers = await Promise.all(list.map((p) => ctx.call("list_allocations", { site, project_id: p.id })));
    if (!fresh()) return;
    const rows = [], failed = [];
    answers.forEach((a, i) => {
      if (!a.ok) { failed.push(fail(a, `${list[i].id}: `)); return; }
      for (const al of a.result.items) for (const e of al.entries?.length ? al.entries : [{}]) rows.push({ project: list[i].id, id: al.id, capability: tail(al.capability_uri), ...e });
    });
    allocations.replaceChildren(table([["project", (a) => a.project], ["allocation", (a) => a.id], ["capability", (a) => a.capability],
      ["used", (a) => a.usage], ["of", (a) => a.allocation], ["unit", (a) => a.unit],
      ["%", (a) => (a.allocation ? `${((100 * (a.usage ?? 0)) / a.allocation).toFixed(1)} %` : "–")],
    ], rows, { empty: "no allocations" }), ...failed);
  }

  // ---- jobs: the list (list_jobs per compute resource), job_status events, status, cancel
  const renderJobs = () => jobsBox.replaceChildren(table([
    ["job", (j) => j.id], ["name", (j) => j.job_spec?.name], ["resource", (j) => j.resource_id],
    ["command", (j) => [j.job_spec?.executable, ...(j.job_spec?.arguments || [])].filter(Boolean).join(" ")],
    ["state", (j) => badge(stateOf(j))], ["exit", (j) => j.status?.exit_code], ["message", (j) => j.status?.message],
    ["updated", (j) => when(j.status?.time)],
    ["", (j) => (FINAL.has(stateOf(j)) ? "" : button("Cancel", (ev) => { ev.stopPropagation(); cancel(j); }, { className: "danger small" }))],
  ], [...jobs.values()].sort((a, b) => String(b.id).localeCompare(String(a.id), undefined, { numeric: true })),
  { empty: "no jobs", onRow: (j) => inspect(j) }));

  async function inspect(j, follow = !FINAL.has(stateOf(j))) {  // follow: the poller reports it from now on
    const got = show(detail, await ctx.call("get_job_status", { site, resource_id: j.resource_id, job_id: j.id, follow }));
    detail.dataset.job = key(j);
    if (got) { jobs.set(key(got), got); renderJobs(); }
  }

  async function cancel(j) {
    const r = await ctx.call("cancel_job", { site, resource_id: j.resource_id, job_id: j.id });
    if (r.ok) inspect(j, true); else { show(detail, r); delete detail.dataset.job; }
  }

  const finished = el("input", { type: "checkbox", name: "historical", checked: true });
  finished.addEventListener("change", () => refreshJobs());
  async function refreshJobs() {
    const mine = gen;
    const answers = await Promise.all(compute.map((rid) => ctx.call("list_jobs", { site, resource_id: rid, historical: finished.checked })));
    if (mine !== gen) return;
    const notes = [];
    answers.forEach((r, i) => {
      if (!r.ok) { notes.push(fail(r, `jobs on ${compute[i]}: `)); return; }
      for (const k of [...jobs.keys()]) if (k.startsWith(`${compute[i]}/`)) jobs.delete(k);
      for (const j of r.result.jobs) jobs.set(key(j), j);
    });
    jobsNote.replaceChildren(...notes);
    renderJobs();
  }

  ctx.on((f) => {
    if (f.topic !== "job_status" || f.data.site !== site) return;
    const d = f.data, k = `${d.resource_id}/${d.job_id}`;
    const known = jobs.get(k) || { id: d.job_id, site: d.site, resource_id: d.resource_id, job_spec: { name: d.name } };
    jobs.set(k, { ...known, status: { ...known.status, ...d.details, state: d.state, exit_code: d.exit_code, message: d.message } });
    renderJobs();
    if (!detail.hidden && detail.dataset.job === k) inspect(jobs.get(k), false);
  });

  // ---- the job form (a PSI/J job spec as the IRI API takes it)
  const env = keyValueRows("iri-env", { add: "+ environment variable" });
  const resList = el("datalist", { id: "iri-resource-list" }), accList = el("datalist", { id: "iri-account-list" });
  const num = (name, label) => field(label, input(name, { type: "number", min: 1 }));
  const form = el("form", { id: "iri-job-form" },
    el("div", { className: "row" }, field("Compute resource *", listed("resource_id", "iri-resource-list", { required: true })),
      field("Name", input("name", { placeholder: "my-job" })), field("Working directory", input("directory"))),
    field("Executable *", input("executable", { required: true, placeholder: "/bin/hostname" })),
    field("Arguments (one per line)", el("textarea", { name: "arguments", rows: 3 })),
    el("div", { className: "row" }, num("node_count", "Nodes"), num("process_count", "Processes"),
      num("processes_per_node", "Processes per node"), num("cpu_cores_per_process", "CPU cores per process"),
      num("gpu_cores_per_process", "GPUs per process")),
    el("div", { className: "row" }, num("duration", "Wall time (s)"), field("Queue", input("queue_name", { placeholder: "debug" })),
      field("Account (project)", listed("account", "iri-account-list")), field("Reservation", input("reservation_id"))),
    el("div", { className: "row" }, field("stdout path", input("stdout_path")), field("stderr path", input("stderr_path"))),
    el("h4", { textContent: "Environment" }), env.node, resList, accList,
    el("button", { type: "submit", textContent: "Submit job" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = form.elements, s = (n) => f[n].value.trim() || undefined, n = (x) => (f[x].value ? Number(f[x].value) : undefined);
    const job_spec = some({
      executable: s("executable"), name: s("name"), directory: s("directory"), stdout_path: s("stdout_path"), stderr_path: s("stderr_path"),
      arguments: f.arguments.value.split("\n").filter((a) => a !== ""), environment: some(env.value()),
      resources: some(Object.fromEntries(["node_count", "process_count", "processes_per_node", "cpu_cores_per_process",
        "gpu_cores_per_process"].map((x) => [x, n(x)]))),
      attributes: some({ duration: n("duration"), queue_name: s("queue_name"), account: s("account"), reservation_id: s("reservation_id") }),
    });
    const job = show(submitted, await ctx.call("submit_job", { site, resource_id: s("resource_id"), job_spec }),
      (j) => `submitted job ${j.id} to ${j.resource_id} (${stateOf(j)}); its state follows below`);
    if (job) { jobs.set(key(job), { ...job, status: jobs.get(key(job))?.status ?? job.status }); renderJobs(); }  // an event may be first
  });

  loadFacilities().then(loadSite);
  return [section("IRI facilities", picker), section("Connection", connectForm, connectOut, status),
    section("Resources", resources, resDetail), section("Incidents", incidents),
    section("Projects", projects), section("Allocations", allocations), section("Submit a job", form, submitted),
    section("Jobs", el("div", { className: "row" }, button("Refresh", refreshJobs),
      el("label", { className: "inline" }, finished, " include finished jobs")), jobsBox, jobsNote, detail)];
}
