"""``orbit endpoint start|stop|status|submit``: run an endpoint here, or in a batch job."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import parsing, process, profile, render, session
from ..errors import UsageError
from ..options import STATE, JsonOpt, NameOpt
from . import endpoint_run
from .endpoint_run import ENV_PREFIX, paths
from .endpoint_submit import SUBMIT_EPILOG, submit
from .endpoint_tunnel import ForwardTunnel

if TYPE_CHECKING:
    from orbit_endpoint.settings import EndpointSettings

app = typer.Typer(
    help="Run, stop and check an endpoint on this machine.",
    rich_markup_mode="rich",
    no_args_is_help=True,
)

StateDirOpt = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Journal directory (default ~/.local/state/orbit/endpoints)."),
]
PidFileOpt = Annotated[
    Path | None, typer.Option("--pid-file", help="Default: STATE_DIR/NAME/endpoint.pid.")
]

START_EPILOG = """\
[bold]Examples[/]

  [cyan]orbit endpoint start --name demo[/]                         foreground, Ctrl-C stops it
  [cyan]orbit endpoint start --name demo --plugins sysinfo --detach[/]
  [cyan]orbit endpoint start --name demo --plugins tasks --set tasks.allow_cloudpickle=true[/]
  [cyan]orbit endpoint start --name node7 --tunnel forward --tunnel-via login01 --detach[/]
  [cyan]orbit endpoint start --name hpc1 --url amqps://hpc1:…@host/orbit --allow alice[/]

URL, owner and allow-list default to the profile entry written by [bold]orbit broker up[/] /
[bold]orbit broker provision --profile-out[/]; every setting also reads ORBIT_ENDPOINT_<NAME>."""


def _log_level(value: str | None) -> str | None:
    """``--log-level``, checked against the endpoint setting's own choices."""
    from typing import get_args

    from orbit_endpoint.settings import LogLevel

    levels = get_args(LogLevel)
    if value is not None and value.upper() not in levels:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(levels)}")
    return value.upper() if value else None


@app.command("start", epilog=START_EPILOG)
def start(
    name: NameOpt,
    plugins: Annotated[
        str | None,
        typer.Option("--plugins", "-p", help="Comma-separated plugin names, e.g. sysinfo,psij."),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="User allowed to call (repeatable; '*' = anyone)."),
    ] = None,
    admin: Annotated[
        list[str] | None, typer.Option("--admin", help="Admin user (repeatable).")
    ] = None,
    pool: Annotated[
        list[str] | None, typer.Option("--pool", help="Also serve this pool (repeatable).")
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="PLUGIN.KEY=VALUE",
            help="Plugin setting (repeatable; JSON values), e.g. tasks.allow_cloudpickle=true;"
            " merged over ORBIT_ENDPOINT_PLUGIN_SETTINGS or the profile's.",
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="ORBIT_ENDPOINT_URL",
            show_envvar=True,
            help="AMQP URL of the endpoint's own user.",
        ),
    ] = None,
    state_dir: StateDirOpt = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background.")] = False,
    pid_file: PidFileOpt = None,
    log_file: Annotated[
        Path | None,
        typer.Option("--log-file", help="With --detach; default STATE_DIR/NAME/endpoint.log."),
    ] = None,
    wait: Annotated[
        float,
        typer.Option("--wait", min=1, help="With --detach: seconds to wait for the first ping."),
    ] = 30.0,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            metavar="LEVEL",
            callback=_log_level,
            help="DEBUG, INFO (default), WARNING or ERROR; also ORBIT_LOG_LEVEL.",
        ),
    ] = None,
    tunnel: Annotated[
        str,
        typer.Option(
            "--tunnel",
            help="none, or forward: reach the broker through ssh -L via --tunnel-via (kept up"
            " while the endpoint runs). Reverse tunnels need a parent: orbit endpoint submit.",
        ),
    ] = "none",
    tunnel_via: Annotated[
        str | None,
        typer.Option("--tunnel-via", metavar="HOST", help="The host ssh -L goes through."),
    ] = None,
    ssh_config: Annotated[
        Path | None, typer.Option("--ssh-config", help="ssh -F FILE for the tunnel.")
    ] = None,
) -> None:
    """Start an endpoint: in the foreground, or with [bold]--detach[/] as a background process."""
    flags: dict[str, Any] = {
        "url": url,
        "plugins": [p.strip() for p in plugins.split(",") if p.strip()] if plugins else None,
        "allowed_users": allow or None,
        "admins": admin or None,
        "pools": pool or None,
        "plugin_settings": _plugin_settings(name, setting) if setting else None,
        "state_dir": state_dir,
        "debug": True if STATE.debug else None,
        "log_level": log_level,
    }
    settings = resolve_settings(name, flags)
    forward = _tunnel(settings, tunnel, tunnel_via, ssh_config)
    if detach:
        endpoint_run.start_detached(settings, pid_file, log_file, wait, forward)
    else:
        endpoint_run.run_foreground(settings, forward)


def _tunnel(
    settings: EndpointSettings, kind: str, via: str | None, ssh_config: Path | None
) -> ForwardTunnel | None:
    if kind == "none":
        return None
    if kind == "reverse":
        raise UsageError(
            "a reverse tunnel is opened by a parent endpoint toward the job's node",
            hint="orbit endpoint submit PARENT --name NAME --tunnel reverse",
        )
    if kind != "forward":
        raise UsageError(f"--tunnel {kind!r}: use none or forward")
    if not via:
        raise UsageError("--tunnel forward needs --tunnel-via HOST (e.g. the login node)")
    work_dir = settings.state_dir / settings.name
    return ForwardTunnel(settings.url.get_secret_value(), via, work_dir, ssh_config)


def _plugin_settings(name: str, items: list[str]) -> dict[str, dict[str, Any]]:
    env = os.environ.get(ENV_PREFIX + "PLUGIN_SETTINGS")
    try:
        base = json.loads(env) if env else profile.endpoint_entry(name).get("plugin_settings", {})
    except json.JSONDecodeError as exc:
        raise UsageError(f"{ENV_PREFIX}PLUGIN_SETTINGS is not JSON: {exc}") from None
    return parsing.plugin_settings(items, base if isinstance(base, dict) else {})


def resolve_settings(name: str, flags: dict[str, Any]) -> EndpointSettings:
    """Flags > ``ORBIT_ENDPOINT_*`` environment > profile entry > defaults."""
    from orbit_endpoint.settings import EndpointSettings

    entry = profile.endpoint_entry(name)
    values: dict[str, Any] = {}
    for key in (
        "url",
        "owner",
        "plugins",
        "allowed_users",
        "admins",
        "pools",
        "plugin_settings",
        "state_dir",
        "debug",
        "log_level",
    ):
        if flags.get(key) is not None:
            values[key] = flags[key]
        elif ENV_PREFIX + key.upper() not in os.environ and key in entry:
            values[key] = entry[key]
    return EndpointSettings(name=name, **values)


def _state_dir(name: str, flag: Path | None) -> Path:
    if flag is not None:
        return flag
    env = os.environ.get(ENV_PREFIX + "STATE_DIR")
    if env:
        return Path(env)
    entry = profile.endpoint_entry(name)
    if "state_dir" in entry:
        return Path(entry["state_dir"])
    from orbit_endpoint.settings import default_state_dir

    return default_state_dir()


@app.command("stop", epilog="[bold]Examples[/]\n\n  [cyan]orbit endpoint stop --name demo[/]")
def stop(
    name: NameOpt,
    state_dir: StateDirOpt = None,
    pid_file: PidFileOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before SIGKILL.")] = 20.0,
) -> None:
    """Stop a detached endpoint (SIGTERM via its pid file; it finishes running work first)."""
    pid_file = pid_file or paths(_state_dir(name, state_dir), name)[0]
    pid = process.stop(pid_file, timeout=timeout)
    if pid is None:
        render.info(f"endpoint {name} is not running (no live pid in {pid_file})")
    else:
        render.success(f"endpoint {name} stopped (pid {pid})")


@app.command("status", epilog="[bold]Examples[/]\n\n  [cyan]orbit endpoint status --name demo[/]")
def status(
    name: NameOpt,
    state_dir: StateDirOpt = None,
    pid_file: PidFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Is the endpoint's process alive here, and does it answer through the broker?

    Exits 1 when it does not answer."""
    pid_file = pid_file or paths(_state_dir(name, state_dir), name)[0]
    report: dict[str, Any] = {
        "endpoint": name,
        "pid": process.read_pid(pid_file),
        "pid_file": str(pid_file),
    }
    report |= _probe(name)
    if json_out:
        render.print_json(report, raw=True)
    else:
        _print_status(report)
    if not report.get("answering"):
        raise typer.Exit(1)


def _probe(name: str) -> dict[str, Any]:
    from orbit_client import AsyncOrbitClient
    from orbit_protocol import OrbitError

    async def probe(client: AsyncOrbitClient) -> dict[str, Any]:
        found: dict[str, Any] = {"consumer": await client.is_online(name)}
        started = time.monotonic()
        try:
            info = await client.call(name, "orbit.describe", timeout=5)
        except OrbitError as exc:
            return found | {"answering": False, "error": str(exc)}
        return found | {
            "answering": True,
            "ping_ms": round(1000 * (time.monotonic() - started), 1),
            "host": info.get("host"),
            "version": info.get("versions", {}).get("orbit"),
            "plugins": sorted(info.get("plugins", {})),
        }

    try:
        return session.run(probe, timeout=5)
    except OrbitError as exc:
        return {"answering": False, "error": str(exc)}


def _print_status(r: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table.grid(padding=(0, 2))
    t.add_column(style="dim")
    t.add_column()
    t.add_row("endpoint", f"[bold]{r['endpoint']}[/]")
    t.add_row(
        "process",
        f"[green]running[/], pid {r['pid']}"
        if r["pid"]
        else f"[dim]not running here[/] ({r['pid_file']})",
    )
    t.add_row("consumer", render.yes_no(r.get("consumer")))
    if r.get("answering"):
        t.add_row("answers", f"[green]yes[/], {r['ping_ms']} ms")
        t.add_row("host", str(r.get("host")))
        t.add_row("version", str(r.get("version")))
        t.add_row("plugins", ", ".join(r.get("plugins", [])))
    else:
        t.add_row("answers", f"[red]no[/] {r.get('error', '')}")
    render.console.print(t)


app.command("submit", epilog=SUBMIT_EPILOG)(submit)
