"""The built-in ``orbit`` plugin of every endpoint: ping, describe, cancel, requests, shutdown."""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import sys
import time
from typing import Any, Protocol

from pydantic import BaseModel, Field

from orbit_plugins.base import Call, NoArgs, Plugin, operation
from orbit_protocol import NotFound
from orbit_protocol.version import PROTOCOL_VERSION

from .journal import Journal
from .registry import LoadedPlugin, describe_plugin


def orbit_version() -> str:
    try:
        return importlib.metadata.version("orbit")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class Services(Protocol):
    """What the built-in plugin needs from the endpoint runtime."""

    name: str
    plugins: dict[str, LoadedPlugin]
    journal: Journal
    started_at: float

    def cancel(self, request_id: str) -> bool: ...

    def request_shutdown(self) -> None: ...


class PingResult(BaseModel):
    pong: bool = True
    endpoint: str
    time: float = Field(description="endpoint clock, epoch seconds")


class CancelArgs(BaseModel):
    request_id: str = Field(description="correlation id of the request to cancel")


class CancelResult(BaseModel):
    request_id: str
    cancelled: bool = Field(description="true when the request was running and is now cancelled")
    state: str


class RequestsArgs(BaseModel):
    limit: int = Field(default=50, ge=1, le=1000)


class OrbitPlugin(Plugin):
    """Endpoint introspection and control."""

    name = "orbit"
    version = orbit_version()
    description = "Built-in endpoint operations"

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    @operation(idempotent=True)
    async def ping(self) -> PingResult:
        """Answer at once: proves the endpoint is alive and reachable."""
        return PingResult(endpoint=self.services.name, time=time.time())

    @operation(idempotent=True)
    async def describe(self, call: Call) -> dict[str, Any]:
        """Plugins, their operations with JSON Schemas, and versions of this endpoint."""
        plugins: dict[str, Any] = {}
        for name, slot in sorted(self.services.plugins.items()):
            if slot.plugin is None:
                plugins[name] = {"available": False, "error": slot.error}
                continue
            plugins[name] = {"available": True, **describe_plugin(slot.plugin)}
        return {
            "endpoint": self.services.name,
            "protocol": PROTOCOL_VERSION,
            "versions": {
                "orbit": orbit_version(),
                "python": platform.python_version(),
                "cloudpickle": _package_version("cloudpickle"),
            },
            "host": socket.gethostname(),
            "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
            "python_executable": sys.executable,
            "started_at": self.services.started_at,
            "host_role": await self._host_role(call),
            "plugins": plugins,
        }

    async def _host_role(self, call: Call) -> str | None:
        """The sysinfo plugin's verdict (login, compute, batch-job, laptop), when it is loaded."""
        slot = self.services.plugins.get("sysinfo")
        spec = slot.plugin.operations().get("host_role") if slot and slot.plugin else None
        if slot is None or slot.plugin is None or spec is None:
            return None
        try:
            role = await slot.plugin.invoke(spec, NoArgs(), call)
        except Exception:  # describe must answer even if the probe fails
            return None
        return role.get("role") if isinstance(role, dict) else None

    @operation(idempotent=True)
    async def cancel(self, args: CancelArgs, call: Call) -> CancelResult:
        """Cancel one of your running requests (admins: anyone's)."""
        entry = self.services.journal.find(args.request_id)
        if entry is None or (entry.user != call.user and not call.is_admin):
            raise NotFound(f"no request {args.request_id!r} of yours on this endpoint")
        cancelled = entry.state == "accepted" and self.services.cancel(args.request_id)
        return CancelResult(request_id=args.request_id, cancelled=cancelled, state=entry.state)

    @operation(idempotent=True)
    async def requests(self, args: RequestsArgs, call: Call) -> list[dict[str, Any]]:
        """Your most recent requests from the journal (admins: everybody's)."""
        user = None if call.is_admin else call.user
        return [e.summary() for e in self.services.journal.recent(user, args.limit)]

    @operation(admin_only=True)
    async def shutdown(self) -> dict[str, bool]:
        """Stop the endpoint gracefully (admins only)."""
        self.services.request_shutdown()
        return {"stopping": True}


__all__ = ["OrbitPlugin", "Services", "orbit_version"]
