"""Endpoints, clients and the CLI on the in-memory broker, all in the test's process.

For logic above the wire (plugins, client, CLI, gateway): no RabbitMQ node, no
subprocess, the same code paths as production from ``orbit_amqp`` up. Fixtures:

* ``local``: a fresh :class:`~orbit_amqp.memory.MemoryBroker` with the core topology;
* ``local_endpoint``: ``await local_endpoint("ep1", plugins=[...], **settings)`` runs an
  :class:`~orbit_endpoint.runtime.Endpoint` as a task (``.stop()``, ``.crash()``,
  ``.restart()``); its queue is declared first, as provisioning would;
* ``local_client``: a connected :class:`~orbit_client.AsyncOrbitClient`;
* ``cli``: ``await cli("call", "ep1", "orbit.ping")`` runs the ``orbit`` app in a thread
  (its own event loop, like the real command) against the memory broker;
* ``local.gateway(**settings)``: the gateway app served by uvicorn on a free loopback port,
  on this event loop (``.base`` is its URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio
from typer.testing import CliRunner

from orbit_amqp import declare_at
from orbit_amqp.memory import MemoryBroker
from orbit_broker.topology import declare_all
from orbit_client import AsyncOrbitClient
from orbit_endpoint.runtime import Endpoint
from orbit_endpoint.settings import EndpointSettings
from orbit_endpoint.testing import wait_accepting
from orbit_protocol import topology

KIT = "tests.testkit.plugin:KitPlugin"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


async def declare_queue(url: str, name: str, **queue_options: int) -> None:
    """Declare ``orbit.ep.<name>`` (as ``orbit broker provision`` would)."""
    await declare_at(url, topology.endpoint(name, **queue_options), name="orbit-test declare")


@dataclass
class LocalEndpoint:
    """An endpoint running as a task of this event loop; what this process logs at INFO while
    it runs goes to ``log_path`` (as an endpoint process's log would)."""

    settings: EndpointSettings
    endpoint: Endpoint | None = None
    task: asyncio.Task[None] | None = None
    starts: int = 0
    _log: logging.Handler | None = None
    _level: int = logging.WARNING

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir

    @property
    def log_path(self) -> Path:
        return self.settings.state_dir / f"{self.name}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _capture(self, on: bool) -> None:
        root = logging.getLogger()
        if on and self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = logging.FileHandler(self.log_path)
            self._log.setLevel(logging.INFO)
            self._log.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
            self._level = root.level
            root.setLevel(min(root.level or logging.WARNING, logging.INFO))
            root.addHandler(self._log)
        elif not on and self._log is not None:
            root.removeHandler(self._log)
            root.setLevel(self._level)
            self._log.close()
            self._log = None

    async def start(self, timeout: float = 10) -> LocalEndpoint:
        self._capture(True)
        self.endpoint = Endpoint(self.settings)
        self.task = asyncio.create_task(self.endpoint.run(), name=f"endpoint {self.name}")
        self.starts += 1
        await wait_accepting(self.endpoint, self.task, timeout)
        return self

    async def stop(self) -> int:
        """A graceful stop (as SIGTERM); 0 like a clean exit."""
        if self.endpoint is not None and self.task is not None and not self.task.done():
            self.endpoint.request_shutdown()
            await asyncio.wait_for(self.task, 30)
        self._capture(False)
        return 0

    async def crash(self) -> None:
        """As a SIGKILL would: no shutdown sequence; the broker sees the connections drop."""
        assert self.endpoint is not None and self.task is not None
        for link in (self.endpoint.consumer_link, self.endpoint.publisher.link):
            conn = link.connection
            if conn is not None:
                conn.lose(ConnectionResetError("killed"))  # type: ignore[attr-defined]
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        self.endpoint.journal.close()
        self._capture(False)

    async def restart(self) -> LocalEndpoint:
        await self.stop()
        return await self.start()


@dataclass
class Local:
    """The memory broker of one test and what runs on it."""

    broker: MemoryBroker
    tmp: Path
    endpoints: list[LocalEndpoint] = field(default_factory=list)
    gateways: list[LocalGateway] = field(default_factory=list)

    def url(self, user: str = "guest") -> str:
        return self.broker.url(user)

    async def endpoint(
        self,
        name: str = "ep1",
        *,
        queue: dict[str, int] | None = None,
        plugins: list[str] | None = None,
        **settings: Any,
    ) -> LocalEndpoint:
        await declare_queue(self.url(), name, **(queue or {}))
        values: dict[str, Any] = {
            "name": name,
            "url": self.url(settings.pop("user", "guest")),
            "plugins": plugins if plugins is not None else [KIT],
            "state_dir": self.tmp / name,
            "heartbeat": 2,
            "reconnect_min": 0.05,
            "reconnect_max": 0.5,
        }
        values.update(settings)
        ep = LocalEndpoint(EndpointSettings(**values))
        self.endpoints.append(ep)
        return await ep.start()

    async def gateway(self, **settings: Any) -> LocalGateway:
        return await start_gateway(self, **settings)


@dataclass
class LocalGateway:
    base: str
    server: Any
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


async def start_gateway(local: Local, **settings: Any) -> LocalGateway:
    import uvicorn

    from orbit_broker.local import free_port
    from orbit_gateway import GatewaySettings, create_app

    port = free_port()
    app = create_app(GatewaySettings(url=f"memory://{local.broker.name}/orbit", **settings))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    gateway = LocalGateway(f"http://127.0.0.1:{port}", server, task)
    local.gateways.append(gateway)
    return gateway


@pytest_asyncio.fixture
async def local(tmp_path: Path) -> AsyncIterator[Local]:
    broker = MemoryBroker(f"test-{secrets.token_hex(4)}")
    await declare_all(broker.url())
    env = Local(broker, tmp_path)
    try:
        yield env
    finally:
        for gateway in env.gateways:
            with contextlib.suppress(Exception):
                await gateway.stop()
        for ep in env.endpoints:
            with contextlib.suppress(Exception):
                await ep.stop()
        broker.close()


@pytest_asyncio.fixture
async def local_endpoint(local: Local) -> Callable[..., Awaitable[LocalEndpoint]]:
    return local.endpoint


@pytest_asyncio.fixture
async def local_client(local: Local) -> AsyncIterator[AsyncOrbitClient]:
    async with AsyncOrbitClient(url=local.url(), timeout=30, reconnect_interval=0.2) as client:
        yield client


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def rc(self) -> int:
        return self.exit_code


def local_env(url: str, tmp_path: Path) -> dict[str, str | None]:
    """The environment a user's shell would give ``orbit`` here (as ``testkit.cli.cli_env``)."""
    return {
        "ORBIT_URL": url,
        "ORBIT_PROFILE": str(tmp_path / "no-profile.json"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }


async def orbit_inprocess(env: dict[str, str | None] | None, *args: str) -> CliResult:
    """``orbit ARGS`` on a worker thread with its own event loop, as the console script runs;
    ``env`` is set for the run (``None`` values unset a variable)."""
    from orbit_cli.app import app

    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest_asyncio.fixture
async def cli(local: Local) -> Callable[..., Awaitable[CliResult]]:
    """Run ``orbit ARGS`` in-process against the memory broker (``ORBIT_URL`` set)."""
    env = local_env(local.url(), local.tmp)

    async def run(*args: str) -> CliResult:
        return await orbit_inprocess(env, *args)

    return run


__all__ = [
    "KIT",
    "CliResult",
    "Local",
    "LocalEndpoint",
    "LocalGateway",
    "declare_queue",
    "local_env",
    "orbit_inprocess",
]
