// globus: register a token, browse collections (search, directories, pick source and destination
// for the transfer form), submit a transfer, list transfers with live transfer_status updates.
import { badge, button, bytes, el, field, input, section, show, table } from "../ui.js";

export default function globusPage(ctx) {
  const tasks = new Map();
  const listBox = el("div", { id: "globus-tasks" });
  const detail = el("pre", { id: "globus-task", className: "result", hidden: true });
  const render = () => listBox.replaceChildren(table([
    ["task", (t) => t.task_id], ["label", (t) => t.label], ["status", (t) => badge(t.status)],
    ["files", (t) => t.files_transferred], ["bytes", (t) => bytes(t.bytes_transferred)], ["requested", (t) => t.request_time],
    ["", (t) => (t.status === "ACTIVE" ? button("Cancel", async (ev) => {
      ev.stopPropagation(); show(detail, await ctx.call("cancel_task", { task_id: t.task_id }));
    }, { className: "danger small" }) : "")],
  ], [...tasks.values()], { empty: "no transfers", onRow: async (t) => show(detail, await ctx.call("get_task", { task_id: t.task_id })) }));

  async function refresh() {
    const r = await ctx.call("list_tasks", { limit: 100 });
    if (r.ok) { tasks.clear(); for (const t of r.result.tasks) tasks.set(t.task_id, t); render(); }
    else listBox.replaceChildren(el("p", { className: "error", textContent: `[${r.error.code}] ${r.error.message}` }));
  }
  ctx.on((f) => { if (f.topic === "transfer_status") { tasks.set(f.data.task_id, f.data); render(); } });

  const reg = el("form", { id: "globus-register" },
    field("Access token", input("access_token", { type: "password", autocomplete: "off" })),
    field("Local collection (UUID)", input("local_collection")), el("button", { type: "submit", textContent: "Register token" }));
  const regOut = el("pre", { className: "result", hidden: true });
  reg.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = reg.elements;
    const ok = show(regOut, await ctx.call("register", { access_token: f.access_token.value, local_collection: f.local_collection.value || undefined }),
      (r) => `registered for ${r.user} (${r.auth})`);
    f.access_token.value = "";
    if (ok) refresh();
  });

  const form = el("form", { id: "transfer-form" },
    el("div", { className: "row" }, field("Source collection *", input("source", { required: true, placeholder: "UUID or local" })),
      field("Destination collection *", input("destination", { required: true, placeholder: "UUID or local" }))),
    el("div", { className: "row" }, field("Source path *", input("src", { required: true })), field("Destination path *", input("dst", { required: true }))),
    el("label", { className: "inline" }, el("input", { type: "checkbox", name: "recursive" }), " recursive"),
    field("Label", input("label")), el("button", { type: "submit", textContent: "Submit transfer" }));
  const out = el("pre", { className: "result", hidden: true });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = form.elements;
    const r = show(out, await ctx.call("submit_transfer", {
      source: f.source.value, destination: f.destination.value, label: f.label.value || undefined,
      items: [{ source: f.src.value, destination: f.dst.value, recursive: f.recursive.checked }],
    }), (s) => `task ${s.task_id}: ${s.status}`);
    if (r) refresh();
  });

  refresh();
  return [section("Globus token", reg, regOut), section("Collections", ...browser(ctx, form)),
    section("New transfer", form, out), section("Transfers", button("Refresh", refresh), listBox, detail)];
}

// The collection browser: search (endpoint_search) or type a collection, walk its directories
// (ls, mkdir), and hand the current directory or the chosen file to the transfer form.
function browser(ctx, form) {
  const found = el("div", { id: "globus-found" });
  const listing = el("div", { id: "globus-listing" });
  const where = el("p", { id: "globus-where", className: "hint", textContent: "pick a collection" });
  const at = { collection: null, path: "/~/", picked: null };
  const fail = (box, r) => box.replaceChildren(el("p", { className: "error", textContent: `[${r.error.code}] ${r.error.message}` }));

  async function open(collection, path) {
    const r = await ctx.call("ls", { collection, path });
    if (!r.ok) {  // nothing of the old place stays chosen
      fail(listing, r);
      Object.assign(at, { collection: null, picked: null });
      where.textContent = "pick a collection";
      return;
    }
    Object.assign(at, { collection: r.result.collection, path: r.result.path, picked: null });
    where.textContent = `${collection} : ${at.path}`;
    const dir = (e) => e.type === "dir";
    listing.replaceChildren(table([
      ["name", (e) => (dir(e) ? `${e.name}/` : e.name)], ["size", (e) => (dir(e) ? "" : bytes(e.size))],
      ["modified", (e) => e.last_modified ?? ""],
    ], r.result.entries, { id: "globus-entries", empty: "empty directory", onRow: (e) => {
      if (dir(e)) { open(collection, `${at.path.replace(/\/?$/, "/")}${e.name}/`); return; }
      at.picked = `${at.path.replace(/\/?$/, "/")}${e.name}`;
      where.textContent = `${collection} : ${at.picked}`;
    } }));
  }

  const search = el("form", { id: "globus-search", className: "row" },
    input("filter_text", { placeholder: "search collections, or a UUID / local", required: true }),
    el("button", { type: "submit", textContent: "Search" }),
    button("Open", () => open(search.elements.filter_text.value.trim(), "/~/"), { className: "secondary" }));
  search.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await ctx.call("endpoint_search", { filter_text: search.elements.filter_text.value });
    if (!r.ok) { fail(found, r); return; }
    found.replaceChildren(table([["collection", (c) => c.display_name], ["id", (c) => c.id]], r.result.items,
      { empty: "no collection matches", onRow: (c) => open(c.id, "/~/") }));
  });
  const up = button("Up", () => at.collection && open(at.collection, at.path.replace(/[^/]+\/?$/, "") || "/"));
  const mkdir = button("New folder", async () => {
    const name = at.collection && window.prompt(`New folder in ${at.path}`);
    if (!name) return;
    const r = await ctx.call("mkdir", { collection: at.collection, path: `${at.path.replace(/\/?$/, "/")}${name}` });
    ctx.toast(r.ok ? r.result.message : `[${r.error.code}] ${r.error.message}`);
    if (r.ok) open(at.collection, at.path);
  }, { className: "secondary" });
  const use = (side) => button(`Use as ${side}`, () => {
    if (!at.collection) return;
    const f = form.elements;
    f[side].value = at.collection;
    f[side === "source" ? "src" : "dst"].value = side === "source" && at.picked ? at.picked : at.path;
    if (side === "source") f.recursive.checked = !at.picked;
  }, { id: `globus-use-${side}` });
  return [search, found, where, el("div", { className: "row" }, up, mkdir, use("source"), use("destination")), listing];
}
