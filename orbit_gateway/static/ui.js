// Small building blocks shared by the plugin pages: tables, fields, result boxes, formatting.
import { el } from "./forms.js";

export { el };

export const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "–");
export const bytes = (n) => {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
};
export const dur = (s) => (s == null ? "–" : s >= 3600 ? `${(s / 3600).toFixed(1)} h` : `${Math.round(s / 60)} min`);

// A <table> from rows of objects: columns = [[title, (row) => text or Node], ...].
export function table(columns, rows, { id, empty = "nothing here", onRow } = {}) {
  if (!rows.length) return el("p", { className: "hint", id: id || "", textContent: empty });
  const head = el("tr", {}, ...columns.map(([title]) => el("th", { textContent: title })));
  const body = rows.map((row) => {
    const tr = el("tr", {}, ...columns.map(([, get]) => {
      const v = get(row);
      return v instanceof Node ? el("td", {}, v) : el("td", { textContent: v ?? "–" });
    }));
    if (onRow) {  // by mouse, or by keyboard: Tab to the row, then Enter or Space
      tr.className = "clickable";
      tr.tabIndex = 0;
      tr.addEventListener("click", () => onRow(row));
      tr.addEventListener("keydown", (ev) => {
        if (ev.target === tr && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); onRow(row); }
      });
    }
    return tr;
  });
  return el("table", { id: id || "" }, el("thead", {}, head), el("tbody", {}, ...body));
}

export const field = (label, input) => el("label", {}, label, input);
export const input = (name, attrs = {}) => el("input", { name, ...attrs });
export const button = (text, onClick, attrs = {}) => {
  const b = el("button", { type: "button", textContent: text, ...attrs });
  b.addEventListener("click", onClick);
  return b;
};
export const badge = (state) => el("span", { className: `badge ${String(state).toLowerCase()}`, textContent: state });

// Show an Orbit reply (or error) in `box`; returns the result or null.
export function show(box, reply, ok = (r) => JSON.stringify(r, null, 2)) {
  box.hidden = false;
  if (reply.ok) { box.className = "result ok"; box.textContent = ok(reply.result); return reply.result; }
  box.className = "result fail";
  box.textContent = `[${reply.error.code}] ${reply.error.message}`;
  return null;
}

// `fn` at most once per `ms`: calls in a burst run it once, `ms` after the first.
export function coalesce(fn, ms) {
  let timer = null;
  return () => { timer ??= setTimeout(() => { timer = null; fn(); }, ms); };
}

export const section = (title, ...kids) => el("div", { className: "card" }, el("h3", { textContent: title }), ...kids);

// Editable NAME=value rows (environment, custom attributes): `.node` to show, `.value()` the object.
export function keyValueRows(id, { key = "NAME", value = "value", add = "+ add" } = {}) {
  const rows = el("div", { className: "kv-rows" });
  const row = () => {
    const r = el("div", { className: "row kv" }, input("key", { placeholder: key, ariaLabel: "name" }),
      input("value", { placeholder: value, ariaLabel: "value" }));
    r.append(button("×", () => r.remove(), { className: "small", title: "remove" }));
    rows.append(r);
  };
  const node = el("div", { id }, rows, button(add, row, { className: "small secondary" }));
  const valueOf = () => Object.fromEntries([...rows.querySelectorAll(".kv")]
    .map((r) => [r.querySelector("[name=key]").value.trim(), r.querySelector("[name=value]").value])
    .filter(([k]) => k));
  return { node, value: valueOf, clear: () => rows.replaceChildren() };
}

// Fill <datalist id=`id`> with options [{value, label}].
export const fillList = (list, options) => list.replaceChildren(...options.map((o) => el("option", { value: o.value, label: o.label || "" })));

// How far a job or task has come; states only move forward.
export const STATE_RANK = { NEW: 0, QUEUED: 1, ACTIVE: 2, RUNNING: 2, COMPLETED: 3, DONE: 3, FAILED: 3, CANCELED: 3 };
export const behind = (state, than) => (STATE_RANK[state] ?? 0) < (STATE_RANK[than] ?? 0);

// Put a listed record in `map` unless an event already brought it further (a list reply may
// be older than the events that arrived while it was on its way).
export function keepNewer(map, key, record) {
  const known = map.get(key);
  if (known && behind(record.state, known.state)) return;
  map.set(key, record);
}
