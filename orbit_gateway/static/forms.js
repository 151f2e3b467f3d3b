// A form for any operation, rendered from its JSON Schema (as `orbit.describe` returns it).
const el = (tag, { dataset, ...attrs } = {}, ...kids) => {
  const node = Object.assign(document.createElement(tag), attrs);
  Object.assign(node.dataset, dataset || {});
  node.append(...kids.filter((k) => k !== null && k !== undefined));
  return node;
};
export { el };

function resolve(schema, root) {
  if (schema && schema.$ref) return resolve(root.$defs?.[schema.$ref.split("/").pop()] || {}, root);
  if (schema && schema.anyOf) {  // Optional[X]: use X
    const real = schema.anyOf.filter((s) => s.type !== "null");
    if (real.length === 1) return { ...resolve(real[0], root), default: schema.default };
  }
  return schema || {};
}

function input(name, schema, required) {
  const value = schema.default;
  if (schema.enum) {
    const select = el("select", { name });
    for (const opt of schema.enum) select.append(el("option", { value: opt, textContent: opt }));
    if (value !== undefined) select.value = value;
    return [select, "enum"];
  }
  if (schema.const !== undefined) return [el("input", { name, value: schema.const, readOnly: true }), "string"];
  switch (schema.type) {
    case "boolean": return [el("input", { name, type: "checkbox", checked: !!value }), "boolean"];
    case "integer": case "number":
      return [el("input", { name, type: "number", step: schema.type === "integer" ? 1 : "any",
        value: value ?? "", required, min: schema.minimum ?? "", max: schema.maximum ?? "" }), schema.type];
    case "string": return [el("input", { name, value: value ?? "", required }), "string"];
    default:
      return [el("textarea", { name, rows: 2, placeholder: "JSON",
        value: value === undefined || value === null ? "" : JSON.stringify(value) }), "json"];
  }
}

export function operationForm(opName, op, onSubmit) {
  const root = op.args || {};
  const required = new Set(root.required || []);
  const form = el("form", { className: "card op", id: `op-${opName}` }, el("h3", { textContent: opName }));
  if (op.doc) form.append(el("p", { className: "hint", textContent: op.doc.replace(/``/g, "`") }));
  const kinds = {};
  for (const [name, raw] of Object.entries(root.properties || {})) {
    const schema = resolve(raw, root);
    const [field, kind] = input(name, schema, required.has(name));
    kinds[name] = kind;
    const label = el("label", {}, `${schema.title || raw.title || name}${required.has(name) ? " *" : ""}`);
    if (kind === "boolean") label.prepend(field); else label.append(field);
    const doc = (raw.description || schema.description || "").replace(/``/g, "`");
    if (doc) label.append(el("span", { className: "doc", textContent: doc }));
    form.append(label);
  }
  const out = el("pre", { className: "result", hidden: true });
  form.append(el("button", { type: "submit", textContent: "Call" }), out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const args = {};
    try {
      for (const [name, kind] of Object.entries(kinds)) {
        const f = form.elements[name];
        if (kind === "boolean") args[name] = f.checked;
        else if (f.value === "") continue;
        else if (kind === "integer" || kind === "number") args[name] = Number(f.value);
        else if (kind === "json") args[name] = JSON.parse(f.value);
        else args[name] = f.value;
      }
    } catch (err) { out.hidden = false; out.className = "result fail"; out.textContent = `bad JSON: ${err.message}`; return; }
    out.hidden = false; out.className = "result"; out.textContent = "…";
    const reply = await onSubmit(args);
    out.className = reply.ok ? "result ok" : "result fail";
    out.textContent = JSON.stringify(reply.ok ? reply.result : reply.error, null, 2);
  });
  return form;
}
