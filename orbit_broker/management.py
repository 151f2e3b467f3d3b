"""A small typed client over the RabbitMQ management HTTP API (httpx, synchronous).

Errors become :class:`~orbit_protocol.errors.BrokerError` (401 →
:class:`~orbit_protocol.errors.AuthenticationFailed`) carrying the HTTP status and the
broker's reason. Request bodies (which may hold passwords) never appear in errors or logs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from orbit_protocol.errors import AuthenticationFailed, BrokerError


def _q(name: str) -> str:
    return quote(name, safe="")


@dataclass(frozen=True)
class Permissions:
    """One user's configure/write/read regexes in one vhost."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class TopicPermission:
    """One user's topic-permission row on one topic exchange."""

    exchange: str
    write: str
    read: str


@dataclass(frozen=True)
class QueueInfo:
    name: str
    vhost: str
    durable: bool
    type: str
    arguments: dict[str, Any]
    consumers: int
    messages: int


@dataclass(frozen=True)
class ExchangeInfo:
    name: str
    vhost: str
    type: str
    durable: bool
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionInfo:
    name: str
    user: str
    vhost: str
    tls: bool = False
    auth_mechanism: str = ""


class ManagementClient:
    """``ManagementClient("http://127.0.0.1:35673", "guest", "guest")``; also a context manager."""

    def __init__(
        self, base_url: str, username: str, password: str, *, timeout: float = 10.0
    ) -> None:
        parts = urlsplit(base_url)
        if parts.username:  # credentials in the URL win over nothing, never get logged
            username = unquote(parts.username)
            password = unquote(parts.password or "")
        port = f":{parts.port}" if parts.port else ""
        self.base_url = f"{parts.scheme}://{parts.hostname}{port}{parts.path.rstrip('/')}"
        self.username = username
        self._http = httpx.Client(
            base_url=self.base_url, auth=(username, password), timeout=timeout
        )

    def __repr__(self) -> str:
        return f"ManagementClient({self.base_url!r}, user={self.username!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        ok_missing: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; ``None`` for 404 when ``ok_missing``; JSON (or None) otherwise."""
        try:
            resp = self._http.request(method, "/api" + path, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise BrokerError(
                f"management API {self.base_url} unreachable ({method} {path}): "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if resp.status_code == 404 and ok_missing:
            return None
        if resp.status_code >= 400:
            reason = _reason(resp)
            message = f"management API {method} {path}: HTTP {resp.status_code}: {reason}"
            details = {"status": resp.status_code, "path": path}
            if resp.status_code == 401:
                raise AuthenticationFailed(message, details)
            raise BrokerError(message, details)
        if not resp.content:
            return None
        return resp.json()

    # -- overview --------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/overview")
        return result

    def definitions(self) -> dict[str, Any]:
        """``GET /api/definitions``: users, vhosts, permissions, topic permissions, queues,
        exchanges, bindings, policies (password hashes included: never log it)."""
        result: dict[str, Any] = self._request("GET", "/definitions")
        return result

    # -- vhosts ----------------------------------------------------------------------------

    def vhost_exists(self, vhost: str) -> bool:
        return self._request("GET", f"/vhosts/{_q(vhost)}", ok_missing=True) is not None

    def create_vhost(self, vhost: str, description: str = "") -> None:
        """Create ``vhost`` (no-op when it exists)."""
        self._request("PUT", f"/vhosts/{_q(vhost)}", json={"description": description})

    def delete_vhost(self, vhost: str) -> None:
        """Delete ``vhost`` and everything in it (no-op when it does not exist)."""
        self._request("DELETE", f"/vhosts/{_q(vhost)}", ok_missing=True)

    # -- users -----------------------------------------------------------------------------

    def list_users(self) -> list[str]:
        return [u["name"] for u in self._request("GET", "/users")]

    def user_exists(self, user: str) -> bool:
        return self._request("GET", f"/users/{_q(user)}", ok_missing=True) is not None

    def create_user(self, user: str, password: str | None, tags: list[str] | None = None) -> None:
        """Create ``user`` or reset its password and tags (the password is never echoed).

        ``password=None`` makes a certificate-only user: no password login works, only
        x509/EXTERNAL over AMQPS."""
        body: dict[str, str] = {"tags": ",".join(tags or [])}
        if password is None:
            body["password_hash"] = ""
        else:
            body["password"] = password
        self._request("PUT", f"/users/{_q(user)}", json=body)

    def delete_user(self, user: str) -> None:
        """Delete ``user`` (no-op when missing); RabbitMQ closes its connections."""
        self._request("DELETE", f"/users/{_q(user)}", ok_missing=True)

    def get_user_limits(self, user: str) -> dict[str, int]:
        """The user's limits (``max-connections``, ``max-channels``); empty when none."""
        rows = self._request("GET", f"/user-limits/{_q(user)}", ok_missing=True) or []
        return {k: int(v) for row in rows for k, v in (row.get("value") or {}).items()}

    def set_user_limit(self, user: str, name: str, value: int) -> None:
        """Set ``max-connections`` or ``max-channels`` for ``user`` (all vhosts; -1 = none)."""
        self._request("PUT", f"/user-limits/{_q(user)}/{_q(name)}", json={"value": value})

    # -- permissions -----------------------------------------------------------------------

    def get_permissions(self, user: str, vhost: str) -> Permissions | None:
        row = self._request("GET", f"/permissions/{_q(vhost)}/{_q(user)}", ok_missing=True)
        if row is None:
            return None
        return Permissions(row["configure"], row["write"], row["read"])

    def set_permissions(self, user: str, vhost: str, permissions: Permissions) -> None:
        body = {
            "configure": permissions.configure,
            "write": permissions.write,
            "read": permissions.read,
        }
        self._request("PUT", f"/permissions/{_q(vhost)}/{_q(user)}", json=body)

    def get_topic_permissions(self, user: str, vhost: str) -> dict[str, TopicPermission]:
        """The user's topic-permission rows in ``vhost``, by exchange name."""
        rows = self._request("GET", f"/topic-permissions/{_q(vhost)}/{_q(user)}", ok_missing=True)
        return {
            r["exchange"]: TopicPermission(r["exchange"], r["write"], r["read"]) for r in rows or []
        }

    def list_topic_permissions(self, vhost: str) -> dict[str, dict[str, TopicPermission]]:
        """Every topic-permission row of ``vhost``: user → exchange → row."""
        rows = self._request("GET", f"/vhosts/{_q(vhost)}/topic-permissions", ok_missing=True)
        result: dict[str, dict[str, TopicPermission]] = {}
        for r in rows or []:
            result.setdefault(r["user"], {})[r["exchange"]] = TopicPermission(
                r["exchange"], r["write"], r["read"]
            )
        return result

    def set_topic_permission(self, user: str, vhost: str, row: TopicPermission) -> None:
        body = {"exchange": row.exchange, "write": row.write, "read": row.read}
        self._request("PUT", f"/topic-permissions/{_q(vhost)}/{_q(user)}", json=body)

    def clear_topic_permissions(self, user: str, vhost: str) -> None:
        """Remove all of the user's topic-permission rows in ``vhost``."""
        self._request("DELETE", f"/topic-permissions/{_q(vhost)}/{_q(user)}", ok_missing=True)

    # -- queues and exchanges --------------------------------------------------------------

    def get_queue(self, vhost: str, name: str) -> QueueInfo | None:
        row = self._request("GET", f"/queues/{_q(vhost)}/{_q(name)}", ok_missing=True)
        return None if row is None else _queue_info(row)

    def list_queues(self, vhost: str) -> list[QueueInfo]:
        return [_queue_info(r) for r in self._request("GET", f"/queues/{_q(vhost)}")]

    def peek(self, vhost: str, name: str) -> str | None:
        """The head message's payload, requeued (``None``: no queue, or it is empty)."""
        body = {"count": 1, "ackmode": "reject_requeue_true", "encoding": "auto"}
        path = f"/queues/{_q(vhost)}/{_q(name)}/get"
        rows = self._request("POST", path, json=body, ok_missing=True)
        return str(rows[0]["payload"]) if rows else None

    def get_exchange(self, vhost: str, name: str) -> ExchangeInfo | None:
        row = self._request("GET", f"/exchanges/{_q(vhost)}/{_q(name)}", ok_missing=True)
        if row is None:
            return None
        return ExchangeInfo(
            row["name"], row["vhost"], row["type"], row["durable"], row.get("arguments") or {}
        )

    def declare_queue(self, vhost: str, name: str, arguments: dict[str, Any]) -> None:
        """A durable queue; 400 (a ``BrokerError``) if it exists with other arguments."""
        body = {"durable": True, "auto_delete": False, "arguments": arguments}
        self._request("PUT", f"/queues/{_q(vhost)}/{_q(name)}", json=body)

    def delete_queue(self, vhost: str, name: str) -> None:
        """Delete a queue and its messages; a missing queue is no error."""
        self._request("DELETE", f"/queues/{_q(vhost)}/{_q(name)}", ok_missing=True)

    def bind_queue(self, vhost: str, exchange: str, queue: str, routing_key: str) -> None:
        path = f"/bindings/{_q(vhost)}/e/{_q(exchange)}/q/{_q(queue)}"
        self._request("POST", path, json={"routing_key": routing_key, "arguments": {}})

    def publish(
        self, vhost: str, routing_key: str, payload: str, properties: dict[str, Any]
    ) -> bool:
        """Publish through the default exchange (to queue ``routing_key``); routed or not."""
        body = {
            "properties": properties,
            "routing_key": routing_key,
            "payload": payload,
            "payload_encoding": "string",
        }
        answer = self._request("POST", f"/exchanges/{_q(vhost)}/amq.default/publish", json=body)
        return bool(answer and answer.get("routed"))

    def list_all_bindings(self, vhost: str) -> set[tuple[str, str, str]]:
        """(exchange, queue, routing key) of every queue binding in ``vhost``."""
        rows = self._request("GET", f"/bindings/{_q(vhost)}", ok_missing=True) or []
        return {
            (r["source"], r["destination"], r["routing_key"])
            for r in rows
            if r["source"] and r.get("destination_type") == "queue"
        }

    # -- connections -----------------------------------------------------------------------

    def list_connections(self, user: str | None = None) -> list[ConnectionInfo]:
        """Open AMQP connections, optionally only those of ``user``."""
        rows = self._request("GET", "/connections")
        conns = [
            ConnectionInfo(
                r["name"],
                r.get("user", ""),
                r.get("vhost", ""),
                tls=bool(r.get("ssl")),
                auth_mechanism=str(r.get("auth_mechanism") or ""),
            )
            for r in rows
        ]
        return [c for c in conns if user is None or c.user == user]

    def close_connection(self, name: str, reason: str = "closed by orbit") -> None:
        """Close connection ``name``; a connection that is already gone counts as closed.

        The broker answers 500 when the connection ends while it is being closed (e.g. the
        broker closes it itself because its user was just deleted); that is success too.
        """
        path = f"/connections/{_q(name)}"
        try:
            self._request("DELETE", path, ok_missing=True, headers={"X-Reason": reason})
        except BrokerError as exc:
            if exc.details.get("status") != 500:
                raise
            deadline = time.monotonic() + 3.0
            while self._connection_exists(path):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _connection_exists(self, path: str) -> bool:
        try:
            return self._request("GET", path, ok_missing=True) is not None
        except BrokerError as exc:
            if exc.details.get("status") == 500:  # still closing
                return True
            raise

    def close_user_connections(self, user: str, reason: str = "closed by orbit") -> int:
        """Close every connection of ``user``; returns how many were asked to close."""
        conns = self.list_connections(user)
        for conn in conns:
            self.close_connection(conn.name, reason)
        return len(conns)


def _reason(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.reason_phrase or "error"
    if isinstance(body, dict):
        return str(body.get("reason") or body.get("error") or resp.reason_phrase)
    return resp.reason_phrase or "error"


def _queue_info(row: dict[str, Any]) -> QueueInfo:
    return QueueInfo(
        name=row["name"],
        vhost=row["vhost"],
        durable=bool(row.get("durable")),
        type=str(row.get("type", "classic")),
        arguments=dict(row.get("arguments") or {}),
        consumers=int(row.get("consumers") or 0),
        messages=int(row.get("messages") or 0),
    )


__all__ = [
    "ConnectionInfo",
    "ExchangeInfo",
    "ManagementClient",
    "Permissions",
    "QueueInfo",
    "TopicPermission",
]
