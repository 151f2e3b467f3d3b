"""A small fake of the DOE IRI Facility API (``/api/v1``) for the ``iri`` plugins.

Shapes follow doe-iri/iri-facility-api-python (routers status, account, compute):
resources and incidents are ``NamedObject``s, jobs are ``{id, status: {state, time,
message, exit_code}, job_spec}`` with lower-case PSI/J states. Account and compute routes
need ``Authorization: Bearer <token>`` (401 otherwise); a job spec with unknown fields is
refused with FastAPI's 422; an unknown resource or job is 404; ``Idempotency-Key`` on
submit returns the first answer again. The resource ``broken`` answers 500.

Jobs are ``queued`` for ``queued_for`` seconds, then ``active`` for ``active_for``, then
``completed`` (``failed`` with exit code 1 when the executable is ``/bin/false``).
Start it in a thread: ``with FakeIri(token) as fake: fake.url`` (``tls=`` a server
SSL context for HTTPS).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/api/v1"
JOBSPEC_FIELDS = {
    "executable",
    "container",
    "arguments",
    "directory",
    "name",
    "inherit_environment",
    "environment",
    "stdin_path",
    "stdout_path",
    "stderr_path",
    "resources",
    "attributes",
    "pre_launch",
    "post_launch",
    "launcher",
}
RESOURCES: list[dict[str, Any]] = [
    {
        "id": "perlmutter-cpu",
        "name": "Perlmutter CPU",
        "description": "CPU nodes",
        "last_modified": "2026-11-01T00:00:00Z",
        "group": "perlmutter",
        "current_status": "up",
        "resource_type": "compute",
        "site_uri": "/api/v1/facility/sites/nersc",
        "capability_uris": [],
    },
    {
        "id": "cfs",
        "name": "Community File System",
        "description": "project storage",
        "last_modified": "2026-11-01T00:00:00Z",
        "group": "storage",
        "current_status": "degraded",
        "resource_type": "storage",
        "site_uri": "/api/v1/facility/sites/nersc",
        "capability_uris": [],
    },
    {
        "id": "broken",
        "name": "Broken machine",
        "description": "answers 500",
        "last_modified": "2026-11-01T00:00:00Z",
        "group": "test",
        "current_status": "down",
        "resource_type": "compute",
        "site_uri": "/api/v1/facility/sites/nersc",
        "capability_uris": [],
    },
]
INCIDENTS = [
    {
        "id": "inc-1",
        "name": "CFS maintenance",
        "description": "degraded I/O",
        "last_modified": "2026-11-02T00:00:00Z",
        "status": "degraded",
        "start": "2026-11-02T08:00:00Z",
        "end": None,
        "type": "planned",
        "resolution": "pending",
        "resource_uris": ["/api/v1/status/resources/cfs"],
        "event_uris": [],
    }
]
PROJECTS = [{"id": "m1234", "name": "m1234", "description": "test project", "user_ids": ["u"]}]
ALLOCATIONS = {
    "m1234": [
        {
            "id": "m1234-cpu",
            "project_uri": "/api/v1/account/projects/m1234",
            "capability_uri": "/api/v1/account/capabilities/cpu",
            "entries": [{"allocation": 1000.0, "usage": 12.5, "unit": "node_hours"}],
        }
    ]
}


class FakeIri:
    """The fake facility: state, HTTP server and thread."""

    def __init__(
        self,
        token: str,
        queued_for: float = 0.5,
        active_for: float = 0.5,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.token = token
        self.queued_for = queued_for
        self.active_for = active_for
        self.incidents = list(INCIDENTS)
        self.jobs: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        if tls is not None:  # HTTPS with the caller's server certificate
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.root = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.root + PREFIX
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeIri:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- behaviour -------------------------------------------------------------------

    def submit(self, resource: str, spec: dict[str, Any]) -> dict[str, Any]:
        job_id = str(100000 + len(self.jobs))
        job = {"id": job_id, "_resource": resource, "_t0": time.monotonic(), "_spec": spec}
        job["_final"] = "failed" if spec.get("executable") == "/bin/false" else "completed"
        self.jobs[job_id] = job
        return self.view(job)

    def view(self, job: dict[str, Any]) -> dict[str, Any]:
        elapsed = time.monotonic() - job["_t0"]
        state, exit_code, message = "queued", None, "waiting in queue"
        if "_cancelled" in job:
            state, message = "canceled", "canceled by user"
        elif "_ended" in job or elapsed >= self.queued_for + self.active_for:
            job["_ended"] = True  # a finished job stays finished when the timings change
            state = job["_final"]
            exit_code = 0 if state == "completed" else 1
            message = f"finished with exit code {exit_code}"
        elif elapsed >= self.queued_for:
            state, message = "active", "running"
        status = {"state": state, "time": time.time(), "message": message, "exit_code": exit_code}
        return {"id": job["id"], "status": status, "job_spec": job["_spec"]}


def _handler(fake: FakeIri) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(code)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return self._send(400, {"detail": "body is not JSON"})
            visible = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            with fake.lock:
                fake.requests.append((method, parts.path, visible, body))
            if not parts.path.startswith(PREFIX + "/"):
                return self._send(404, {"detail": "Not Found"})
            path = [unquote(p) for p in parts.path[len(PREFIX) + 1 :].split("/")]
            authed = self.headers.get("Authorization") == f"Bearer {fake.token}"
            with fake.lock:
                code, answer = route(fake, method, path, query, body, authed, self.headers)
            self._send(code, answer)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler


def route(
    fake: FakeIri,
    method: str,
    path: list[str],
    query: dict[str, str],
    body: Any,
    authed: bool,
    headers: Any,
) -> tuple[int, Any]:
    """One request against the fake's state (called under ``fake.lock``)."""
    resources: dict[str, Any] = {str(r["id"]): r for r in RESOURCES}
    match method, path:
        case "GET", ["status", "resources"]:
            kind = query.get("resource_type")
            found = [r for r in RESOURCES if kind is None or r["resource_type"] == kind]
            return 200, found[: int(query.get("limit", 100))]
        case "GET", ["status", "resources", rid]:
            return (
                (200, resources[rid]) if rid in resources else (404, {"detail": "Item not found"})
            )
        case "GET", ["status", "incidents"]:
            about = query.get("resource_id")
            hits = [i for i in fake.incidents if about is None or about in str(i["resource_uris"])]
            return (200, hits) if hits else (404, {"detail": "No incidents found"})
    if not authed:
        return 401, {"detail": "Invalid or expired token"}
    match method, path:
        case "GET", ["account", "projects"]:
            return 200, PROJECTS
        case "GET", ["account", "projects", pid, "project_allocations"]:
            if pid not in ALLOCATIONS:
                return 404, {"detail": "Project not found"}
            return 200, ALLOCATIONS[pid]
        case _, ["compute", _, rid, *_] if rid not in resources:
            return 404, {"detail": "Item not found"}
        case _, ["compute", _, "broken", *_]:
            return 500, {"detail": "Internal Server Error"}
        case "POST", ["compute", "job", rid]:
            return submit(fake, rid, body, headers.get("Idempotency-Key"))
        case "GET", ["compute", "status", rid, jid]:
            job = fake.jobs.get(jid)
            if job is None or job["_resource"] != rid:
                return 404, {"detail": f"job {jid} not found"}
            return 200, fake.view(job)
        case "POST", ["compute", "status", rid]:
            historical = query.get("historical") == "true"
            views = [fake.view(j) for j in fake.jobs.values() if j["_resource"] == rid]
            if not historical:
                views = [v for v in views if v["status"]["state"] in ("queued", "active")]
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
            return 200, views[offset : offset + limit]
        case "DELETE", ["compute", "cancel", rid, jid]:
            job = fake.jobs.get(jid)
            if job is None or job["_resource"] != rid:
                return 404, {"detail": f"job {jid} not found"}
            job["_cancelled"] = True
            return 204, None
    return 404, {"detail": "Not Found"}


def submit(fake: FakeIri, resource: str, body: Any, key: str | None) -> tuple[int, Any]:
    if not isinstance(body, dict):
        return 422, {"detail": [{"loc": ["body"], "msg": "Field required", "type": "missing"}]}
    extra = sorted(set(body) - JOBSPEC_FIELDS)
    if extra:
        errors = [
            {"loc": ["body", k], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
            for k in extra
        ]
        return 422, {"detail": errors}
    if key is not None and key in fake.idempotency:
        return 200, fake.idempotency[key]
    answer = fake.submit(resource, body)
    if key is not None:
        fake.idempotency[key] = answer
    return 200, answer


__all__ = ["PREFIX", "FakeIri"]
