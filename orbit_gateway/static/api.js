// HTTP helpers: JSON RPC through the gateway, login, endpoints.
export async function rpc(endpoint, plugin, method, args = {}) {
  const res = await fetch(`api/${endpoint}/${plugin}/${method}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(args),
  });
  const body = await res.json().catch(() => ({ ok: false, error: { code: "HTTP", message: res.statusText } }));
  if (body.error && !body.error.message && body.detail) body.error = body.detail;
  if (!("ok" in body)) return { ok: false, status: res.status, error: body.detail || body };
  return { ...body, status: res.status };
}

export async function getJSON(path) {
  const res = await fetch(path);
  if (!res.ok) throw Object.assign(new Error(res.statusText), { status: res.status });
  return res.json();
}

export async function login(user, password) {
  const res = await fetch("api/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user, password }),
  });
  if (!res.ok) throw new Error((await res.json()).detail?.message || res.statusText);
  return res.json();
}

export const logout = () => fetch("api/logout", { method: "POST" });
