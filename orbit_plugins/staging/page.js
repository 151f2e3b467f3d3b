// staging: browse a directory, upload (PUT through the gateway), download, mkdir, remove.
import { button, bytes, el, input, section, show, table, when } from "../ui.js";

const join = (dir, name) => (dir.endsWith("/") ? dir + name : `${dir}/${name}`);
const parent = (dir) => dir.replace(/\/[^/]+\/?$/, "") || "/";
export const fileUrl = (endpoint, path) => `api/${endpoint}/files?path=${encodeURIComponent(path)}`;

export default function stagingPage(ctx) {
  let cwd = localStorage.getItem(`orbit.cwd.${ctx.endpoint}`) || "~";
  const where = input("path", { id: "staging-path", value: cwd });
  const listing = el("div", { id: "staging-list" });
  const status = el("pre", { id: "staging-status", className: "result", hidden: true });

  async function go(path) {
    const r = await ctx.call("list", { path });
    if (!r.ok) { show(status, r); return; }
    cwd = r.result.path;
    where.value = cwd;
    localStorage.setItem(`orbit.cwd.${ctx.endpoint}`, cwd);
    const entries = [...r.result.entries].sort((a, b) => (b.type === "dir") - (a.type === "dir") || a.name.localeCompare(b.name));
    listing.replaceChildren(table([
      ["name", (e) => (e.type === "dir"
        ? el("a", { href: "javascript:void 0", textContent: `${e.name}/`, onclick: () => go(join(cwd, e.name)) })
        : el("a", { href: fileUrl(ctx.endpoint, join(cwd, e.name)), download: e.name, textContent: e.name, className: "download" }))],
      ["size", (e) => (e.type === "file" ? bytes(e.size) : "")], ["modified", (e) => when(e.mtime)],
      ["", (e) => button("Delete", async () => {
        if (!confirm(`Delete ${join(cwd, e.name)}?`)) return;
        if (show(status, await ctx.call("remove", { path: join(cwd, e.name), recursive: e.type === "dir" }), (x) => `removed ${x.path}`)) go(cwd);
      }, { className: "danger small" })],
    ], entries, { empty: "empty directory" }));
    listing.dataset.path = cwd;
  }

  const file = el("input", { type: "file", id: "upload-file", multiple: true });
  const overwrite = el("input", { type: "checkbox", name: "overwrite" });
  async function upload() {
    for (const f of file.files) {
      const target = join(cwd, f.name);
      status.hidden = false; status.className = "result"; status.textContent = `uploading ${f.name} (${bytes(f.size)})…`;
      const res = await fetch(`${fileUrl(ctx.endpoint, target)}&overwrite=${overwrite.checked}`, { method: "PUT", body: f });
      const reply = await res.json().catch(() => ({ ok: false, error: { code: "HTTP", message: res.statusText } }));
      if (!reply.ok && !reply.error) reply.error = reply.detail || { code: "HTTP", message: res.statusText };
      if (!show(status, reply, (x) => `uploaded ${x.path} (${bytes(x.size)}, sha256 ${x.sha256.slice(0, 12)}…)`)) return;
    }
    file.value = "";
    go(cwd);
  }
  const newDir = input("mkdir", { placeholder: "new directory name" });

  ctx.on((f) => {
    if (f.topic === "progress" && !f.data.done) { status.hidden = false; status.textContent = `${f.data.path}: ${bytes(f.data.bytes)} of ${bytes(f.data.total)}`; }
  });

  go(cwd);
  return [el("div", { className: "card" },
    el("form", { className: "row", onsubmit: (ev) => { ev.preventDefault(); go(where.value); } },
      button("↑", () => go(parent(cwd)), { title: "parent directory" }), where, el("button", { type: "submit", textContent: "Open" })),
    listing),
  section("Upload here", el("div", { className: "row" }, file, el("label", { className: "inline" }, overwrite, " overwrite"),
    button("Upload", upload, { id: "upload-button" })),
  el("div", { className: "row" }, newDir, button("Create directory", async () => {
    if (newDir.value && show(status, await ctx.call("mkdir", { path: join(cwd, newDir.value) }), (x) => `created ${x.path}`)) { newDir.value = ""; go(cwd); }
  })), status)];
}
