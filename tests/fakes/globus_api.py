"""A small fake of the Globus Transfer API (v0.10) for the real globus-sdk client.

Start it in a thread (``with FakeTransfer(token="t") as fake:``) and point the SDK at
``fake.url`` (``TransferClient(base_url=...)`` or ``GLOBUS_SDK_SERVICE_URL_TRANSFER``).
Tasks become ``SUCCEEDED`` ``duration`` seconds after submission (never, when infinite);
the collection id ``NEEDS_CONSENT`` answers every operation with ``ConsentRequired``.
Every request is recorded in ``requests`` as ``(method, path, body)``.

The same server fakes the Globus Auth token endpoint (``POST /v2/oauth2/token``, point the
SDK at it with ``GLOBUS_SDK_SERVICE_URL_AUTH``): a refresh-token grant with the fake's
``refresh_token`` and ``client_id`` issues a new access token for Transfer, valid
``expires_in`` seconds (``issued`` lists them; ``revoke_access_tokens`` expires them early,
as Globus does). With ``rotate`` (default) every grant also replaces the refresh token.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TRANSFER_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"

NEEDS_CONSENT = "00000000-0000-0000-0000-00000000c0de"
CONSENT_SCOPE = (
    f"urn:globus:auth:scope:transfer.api.globus.org:all"
    f"[*https://auth.globus.org/scopes/{NEEDS_CONSENT}/data_access]"
)


class FakeTransfer:
    """The fake service: state, HTTP server and thread."""

    def __init__(self, token: str, duration: float = 1.0) -> None:
        self.token = token
        self.duration = duration
        self.refresh_token = "ref-" + secrets.token_hex(16)
        self.client_id = str(uuid.uuid4())
        self.expires_in = 3600
        self.rotate = True
        self.issued: list[str] = []
        self.refresh_tokens = [self.refresh_token]
        self.valid: set[str] = set()
        self.grants = 0
        self.tasks: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeTransfer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- behaviour -------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        token = (header or "").removeprefix("Bearer ")
        with self.lock:
            return token == self.token or token in self.valid

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far stops working (the refresh token still does)."""
        with self.lock:
            self.valid.clear()

    def token_grant(self, form: dict[str, str]) -> tuple[int, Any]:
        """``POST /v2/oauth2/token`` with ``grant_type=refresh_token`` (native app client)."""
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        if (form.get("refresh_token"), form.get("client_id")) != (
            self.refresh_token,
            self.client_id,
        ):
            return 401, {"error": "invalid_grant", "error_description": "invalid refresh token"}
        access = "acc-" + secrets.token_hex(16)
        with self.lock:
            self.grants += 1
            self.issued.append(access)
            self.valid.add(access)
            if self.rotate:  # refresh token rotation: the old one stops working
                self.refresh_token = "ref-" + secrets.token_hex(16)
                self.refresh_tokens.append(self.refresh_token)
        return 200, {
            "access_token": access,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "resource_server": "transfer.api.globus.org",
            "scope": TRANSFER_SCOPE,
            "token_type": "Bearer",
            "other_tokens": [],
        }

    def new_task(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        task_id = str(uuid.uuid4())
        items = body.get("DATA", [])
        task = {
            "DATA_TYPE": "task",
            "task_id": task_id,
            "type": kind,
            "label": body.get("label"),
            "status": "ACTIVE",
            "nice_status": "Queued",
            "source_endpoint_id": body.get("source_endpoint") or body.get("endpoint"),
            "destination_endpoint_id": body.get("destination_endpoint"),
            "sync_level": body.get("sync_level"),
            "files": len(items),
            "files_transferred": 0,
            "bytes_transferred": 0,
            "request_time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            "completion_time": None,
            "_started": time.monotonic(),
            "_items": items,
        }
        with self.lock:
            self.tasks[task_id] = task
        return task

    def view(self, task: dict[str, Any]) -> dict[str, Any]:
        if task["status"] == "ACTIVE":
            elapsed = time.monotonic() - task["_started"]
            if not math.isinf(self.duration) and elapsed >= self.duration:
                task.update(
                    status="SUCCEEDED",
                    nice_status=None,
                    files_transferred=task["files"],
                    bytes_transferred=1000 * task["files"],
                    completion_time=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                )
            elif elapsed > 0.2:
                task.update(nice_status="OK", bytes_transferred=500)
        return {k: v for k, v in task.items() if not k.startswith("_")}

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p][1:]  # drop "v0.10"
        if NEEDS_CONSENT in parts:
            return 403, {
                "code": "ConsentRequired",
                "message": "Missing required data_access consent",
                "request_id": "r1",
                "required_scopes": [CONSENT_SCOPE],
                "authorization_parameters": {"required_scopes": [CONSENT_SCOPE]},
            }
        match method, parts:
            case "GET", ["submission_id"]:
                return 200, {"value": str(uuid.uuid4())}
            case "POST", ["transfer" | "delete" as kind]:
                created = self.new_task(kind.upper(), body)
                return 202, {
                    "DATA_TYPE": f"{kind}_result",
                    "code": "Accepted",
                    "message": "The transfer has been accepted",
                    "task_id": created["task_id"],
                    "submission_id": body.get("submission_id"),
                    "request_id": "r1",
                }
            case "GET", ["task", task_id]:
                task = self.tasks.get(task_id)
                if task is None:
                    return 404, {"code": "TaskNotFound", "message": f"Task {task_id} not found"}
                return 200, self.view(task)
            case "POST", ["task", task_id, "cancel"]:
                task = self.tasks.get(task_id)
                if task is None:
                    return 404, {"code": "TaskNotFound", "message": f"Task {task_id} not found"}
                if task["status"] == "ACTIVE":
                    task.update(status="FAILED", nice_status="CANCELED")
                return 200, {"code": "Canceled", "message": "The task has been cancelled."}
            case "GET", ["task_list"]:
                limit = int(query.get("limit", 100))
                data = [self.view(t) for t in list(self.tasks.values())[:limit]]
                return 200, {"DATA_TYPE": "task_list", "DATA": data, "limit": limit, "offset": 0}
            case "GET", ["operation", "endpoint", _, "ls"]:
                where = query.get("path", "/~/")
                entries = [
                    {"DATA_TYPE": "file", "name": "data", "type": "dir", "size": 4096},
                    {"DATA_TYPE": "file", "name": "a.txt", "type": "file", "size": 12},
                ]
                if where.rstrip("/").endswith("/data"):  # one level down, for browsing
                    entries = [
                        {"DATA_TYPE": "file", "name": "run1.h5", "type": "file", "size": 2**20}
                    ]
                return 200, {"DATA_TYPE": "file_list", "path": where, "DATA": entries}
            case "POST", ["operation", "endpoint", _, "mkdir"]:
                return 202, {"code": "DirectoryCreated", "message": "The directory was created"}
            case "POST", ["operation", "endpoint", _, "rename"]:
                return 200, {"code": "FileRenamed", "message": "File or directory renamed"}
            case "GET", ["endpoint_search"]:
                text = query.get("filter_fulltext", "")
                found = {"id": str(uuid.uuid4()), "display_name": f"{text} collection"}
                return 200, {"DATA_TYPE": "endpoint_list", "DATA": [found]}
            case "GET", ["endpoint", endpoint_id]:
                return 200, {"DATA_TYPE": "endpoint", "id": endpoint_id, "display_name": "fake"}
        return 404, {"code": "ClientError.NotFound", "message": f"no route {method} {path}"}


def _handler(fake: FakeTransfer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if url.path == "/v2/oauth2/token":
                form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                fake.requests.append((method, url.path, form))
                status, answer = fake.token_grant(form)
            else:
                body = json.loads(raw) if raw else None
                fake.requests.append((method, url.path, body))
                status, answer = self._transfer(method, url.path, query, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _transfer(
            self, method: str, path: str, query: dict[str, str], body: Any
        ) -> tuple[int, Any]:
            if not fake.authorized(self.headers.get("Authorization")):
                return 401, {"code": "AuthenticationFailed", "message": "Token invalid"}
            return fake.route(method, path, query, body)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


__all__ = ["CONSENT_SCOPE", "NEEDS_CONSENT", "TRANSFER_SCOPE", "FakeTransfer"]
