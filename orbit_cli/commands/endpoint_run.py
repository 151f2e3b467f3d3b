"""The running side of ``orbit endpoint start``: in the foreground, or detached with a
readiness check (``orbit.ping``); the environment a detached endpoint gets."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import process, render, session
from ..errors import CliError
from .endpoint_tunnel import PORT_FILE, ForwardTunnel

if TYPE_CHECKING:
    from orbit_client import ClientSettings
    from orbit_endpoint.settings import EndpointSettings

ENV_PREFIX = "ORBIT_ENDPOINT_"


def describe(settings: EndpointSettings) -> str:
    allowed = settings.allowed_users or [f"{settings.owner or settings.amqp_user} (owner only)"]
    return (
        f"endpoint [bold]{settings.name}[/] → {settings.safe_url}\n"
        f"  plugins: {', '.join(settings.plugins) or '–'} · allowed: {', '.join(allowed)}"
        + (f" · admins: {', '.join(settings.admins)}" if settings.admins else "")
    )


def run_foreground(settings: EndpointSettings, tunnel: ForwardTunnel | None = None) -> None:
    """Run the endpoint in this process until it stops (through ``tunnel`` when given)."""
    from pydantic import SecretStr

    from orbit_endpoint import service
    from orbit_plugins.psij.tunnel import TunnelError

    service.setup_logging(settings.effective_log_level)
    render.err_console.print(describe(settings) + "\n  [dim]Ctrl-C to stop[/]")
    if tunnel is not None:
        try:
            url = tunnel.open()
        except TunnelError as exc:
            raise CliError(str(exc), code="UNAVAILABLE") from None
        render.err_console.print(f"  tunnel via {tunnel.via}: broker at 127.0.0.1:{tunnel.port}")
        settings = settings.model_copy(update={"url": SecretStr(url)})
    try:
        code = service.run(settings)
    finally:
        if tunnel is not None:
            tunnel.close()
    if code:
        raise CliError(
            "endpoint stopped: the broker refused its credentials (see the log above)",
            code="AUTH",
            exit_code=2,
        )


def env_for(settings: EndpointSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    keep = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    dumped = settings.model_dump(mode="json")
    dumped["url"] = settings.url.get_secret_value()
    for key in (
        "name",
        "url",
        "plugins",
        "plugin_settings",
        "pools",
        "owner",
        "allowed_users",
        "admins",
        "state_dir",
        "debug",
        "log_level",
    ):
        value = dumped.get(key)
        if value is not None:
            keep[ENV_PREFIX + key.upper()] = value if isinstance(value, str) else json.dumps(value)
    return env | keep


def paths(settings_or_dir: EndpointSettings | Path, name: str) -> tuple[Path, Path]:
    base = settings_or_dir if isinstance(settings_or_dir, Path) else settings_or_dir.state_dir
    return base / name / "endpoint.pid", base / name / "endpoint.log"


def start_detached(
    settings: EndpointSettings,
    pid_file: Path | None,
    log_file: Path | None,
    wait: float,
    tunnel: ForwardTunnel | None = None,
) -> None:
    """Start the endpoint as a background process; return once it answers ``orbit.ping``.

    With a tunnel the background process is ``orbit endpoint start`` itself (it keeps the
    tunnel up), and the ping goes through the port it writes into its state directory."""
    default_pid, default_log = paths(settings, settings.name)
    pid_file, log_file = pid_file or default_pid, log_file or default_log
    command = ["-m", "orbit_endpoint"]
    if tunnel is not None:
        (tunnel.work_dir / PORT_FILE).unlink(missing_ok=True)
        command = ["-m", "orbit_cli", "endpoint", "start", "--name", settings.name]
        command += ["--tunnel", "forward", "--tunnel-via", tunnel.via]
        if tunnel.ssh_config is not None:
            command += ["--ssh-config", str(tunnel.ssh_config)]
    proc = process.spawn(command, env=env_for(settings), pid_file=pid_file, log_file=log_file)
    render.err_console.print(describe(settings))
    with render.err_console.status(f"waiting for {settings.name} to answer orbit.ping …"):
        port_file = None if tunnel is None else tunnel.work_dir / PORT_FILE
        answered, note = wait_ready(settings.name, proc.poll, wait, port_file)
    if not answered:
        if proc.poll() is None:
            process.stop(pid_file, timeout=5)
        raise CliError(
            f"endpoint {settings.name} did not come up ({note}); log {log_file}:\n"
            + process.tail(log_file),
            code="ENDPOINT_OFFLINE",
        )
    render.success(f"endpoint {settings.name} running, pid {proc.pid} ({note})")
    render.info(f"log {log_file} · stop with: orbit endpoint stop --name {settings.name}")


def wait_ready(
    name: str, exited: Any, timeout: float, port_file: Path | None = None
) -> tuple[bool, str]:
    """Ping until the endpoint answers, its process exits, or ``timeout`` passes; through the
    tunnel port that ``port_file`` names once it exists, when given."""
    from orbit_client import AsyncOrbitClient
    from orbit_protocol import BrokerError, NotAuthorized, OrbitError

    async def poll() -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        note = "no answer"
        client: AsyncOrbitClient | None = None
        try:
            while time.monotonic() < deadline:
                if exited() is not None:
                    return False, "the process exited"
                try:
                    if client is None:
                        client = await AsyncOrbitClient(_client_settings(port_file)).connect()
                    started = time.monotonic()
                    await client.call(name, "orbit.ping", timeout=3)
                    return True, f"ping {1000 * (time.monotonic() - started):.0f} ms"
                except NotAuthorized:
                    return (
                        True,
                        f"answering; user {client.user if client else '?'} is not allowed to call",
                    )
                except BrokerError as exc:
                    note, client = f"client cannot connect: {exc.message}", None
                except (OSError, ValueError):  # the tunnel port is not written yet
                    note, client = "the tunnel is not up yet", None
                except OrbitError as exc:
                    note = exc.message
                await asyncio.sleep(0.5)
            return False, note
        finally:
            if client is not None:
                await client.close()

    return asyncio.run(poll())


def _client_settings(port_file: Path | None) -> ClientSettings:
    """The profile's client; through the detached endpoint's tunnel port when there is one
    (``ValueError`` until the endpoint has written it)."""
    settings = session.client_settings()
    if port_file is None:
        return settings
    from pydantic import SecretStr

    from orbit_plugins.psij.tunnel import with_address

    port = int(port_file.read_text())  # FileNotFoundError (an OSError) until it is written
    url = with_address(settings.url.get_secret_value(), "127.0.0.1", port)
    return settings.model_copy(update={"url": SecretStr(url)})


__all__ = ["ENV_PREFIX", "describe", "env_for", "paths", "run_foreground", "start_detached"]
