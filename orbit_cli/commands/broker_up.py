"""``orbit broker up``: a private RabbitMQ node, provisioned, with a profile and a responder."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import localbroker, process, profile, render
from ..errors import CliError

if TYPE_CHECKING:
    from orbit_broker.local import LocalNode
    from orbit_broker.provision import Provisioner, ProvisionResult

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Node directory (default ~/.local/state/orbit/broker)."),
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port", min=1, max=65530, help="AMQP port (default 35672; management = port+1)."
    ),
]

UP_EPILOG = """\
[bold]Examples[/]

  [cyan]orbit broker up[/]                    node on 127.0.0.1:35672, vhost orbit, endpoint demo
  [cyan]orbit broker up --endpoint hpc1 --endpoint laptop[/]
  [cyan]ORBIT_PROFILE=/tmp/p.json orbit broker up --port 45672 --data-dir /tmp/orbit-node[/]
  [cyan]orbit broker up --tls --no-plaintext[/]    AMQPS only on port-1 (35671), CA in DATA/tls

Writes the profile file (0600) so that later commands need no flags."""


def up(
    data_dir: DataDirOpt = None,
    port: PortOpt = None,
    endpoint: Annotated[
        list[str] | None,
        typer.Option("--endpoint", "-e", help="Endpoints to provision (default: demo)."),
    ] = None,
    client: Annotated[
        str | None, typer.Option("--client", help="Your client user (default: your login name).")
    ] = None,
    responder: Annotated[
        bool, typer.Option("--responder/--no-responder", help="Run the dead-letter responder.")
    ] = True,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls/--no-tls",
            help="Also listen for AMQPS on port-1: a CA and certificates are generated in "
            "DATA/tls, clients need a certificate (verify_peer), x509/EXTERNAL login offered.",
        ),
    ] = False,
    plaintext: Annotated[
        bool,
        typer.Option(
            "--plaintext/--no-plaintext", help="Keep the plain AMQP listener (with --tls)."
        ),
    ] = True,
) -> None:
    """Start the private local RabbitMQ node, provision vhost [bold]orbit[/], topology,
    users and a default endpoint, start the dead-letter responder, write the profile."""
    from orbit_broker.provision import ClientSpec, EndpointSpec, ProvisionSpec
    from orbit_protocol import naming

    if not plaintext and not tls:
        raise CliError("--no-plaintext needs --tls", code="USAGE", exit_code=2)
    n = localbroker.node(data_dir, port)
    if tls:
        n.tls_port, n.plaintext = n.amqp_port - 1, plaintext
    else:
        apply_saved_tls(n)
    endpoints = [naming.validate_name(e) for e in (endpoint or ["demo"])]
    me = naming.validate_name(client or localbroker.default_client_name(), "user")
    if me in endpoints or me == naming.RESPONDER_USER:
        raise CliError(
            f"client name {me!r} clashes with an endpoint; pass --client NAME",
            code="USAGE",
            exit_code=2,
        )
    with render.err_console.status(f"starting RabbitMQ node {n.nodename} (≈10 s) …"):
        n.start(wait=True, timeout=120)
    listening = [f"AMQP 127.0.0.1:{n.amqp_port}"] if n.plaintext else []
    if n.tls_port is not None:
        listening.append(f"AMQPS 127.0.0.1:{n.tls_port}")
    render.success(f"RabbitMQ node {n.nodename} ready: {', '.join(listening)}")
    prov = localbroker.provisioner(n.management_url, n.amqp_url("/"), naming.DEFAULT_VHOST)
    spec = ProvisionSpec(
        endpoints=[EndpointSpec(e) for e in endpoints],
        clients=[ClientSpec(me, endpoints)],
        responder=responder,
    )
    result = prov.provision_sync(spec)
    render.success(f"vhost {prov.vhost}: {len(result.plan.actions)} change(s) applied")
    urls = _credentials(
        prov, n, result, [me, *endpoints] + ([naming.RESPONDER_USER] if responder else [])
    )
    path = _write_profile(n, prov.vhost, me, endpoints, urls)
    responder_note = _start_responder(n, urls.get(naming.RESPONDER_USER)) if responder else "off"
    render.console.print(_up_panel(n, prov.vhost, me, endpoints, urls[me], path, responder_note))


def _credentials(
    prov: Provisioner, n: LocalNode, result: ProvisionResult, users: list[str]
) -> dict[str, str]:
    """An AMQP URL per user: new passwords from provisioning, known ones from the profile,
    and a fresh password for a user that exists but whose password we no longer know."""
    import secrets

    known = _known_urls(n)
    urls: dict[str, str] = {}
    for user in users:
        if user in result.credentials:
            urls[user] = _user_url(n, prov.vhost, user, result.credentials[user].password)
        elif user in known and _login_ok(n, known[user]):
            urls[user] = known[user]
        else:
            password = secrets.token_urlsafe(24)
            prov.management.create_user(user, password)
            urls[user] = _user_url(n, prov.vhost, user, password)
    return urls


def _user_url(n: LocalNode, vhost: str, user: str, password: str) -> str:
    """The user's URL: AMQPS with its own client certificate when the node has TLS."""
    from orbit_broker.provision import make_url

    if n.tls_port is not None:
        return n.amqps_url(vhost, user, password)
    return make_url(n.amqp_url("/"), user, password, vhost)


def apply_saved_tls(n: LocalNode) -> None:
    """TLS settings remembered in the profile's broker section (by ``up --tls``)."""
    saved = profile.load().get("broker", {})
    if saved.get("tls_port") and saved.get("data_dir") == str(n.data_dir):
        n.tls_port, n.plaintext = int(saved["tls_port"]), bool(saved.get("plaintext", True))


def _known_urls(n: LocalNode) -> dict[str, str]:
    """user → URL from the profile, for URLs that point at this node."""
    from urllib.parse import unquote, urlsplit

    data = profile.load()
    candidates = [data.get("client", {}).get("url"), data.get("responder", {}).get("url")]
    candidates += [e.get("url") for e in data.get("endpoints", {}).values() if isinstance(e, dict)]
    found: dict[str, str] = {}
    for url in filter(None, candidates):
        parts = urlsplit(url)
        if parts.port in (n.amqp_port, n.tls_port) and parts.username:
            found[unquote(parts.username)] = url
    return found


def _login_ok(n: LocalNode, url: str) -> bool:
    """True when ``url``'s user and password still log in (over TLS when it is amqps)."""
    import ssl
    from urllib.parse import parse_qs, unquote, urlsplit

    from orbit_amqp.probe import amqp_login_ok

    parts = urlsplit(url)
    context = None
    if parts.scheme == "amqps":
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            context = ssl.create_default_context(cafile=query.get("cafile"))
            if query.get("certfile"):
                context.load_cert_chain(query["certfile"], query.get("keyfile"))
        except (OSError, ssl.SSLError):
            return False
    return amqp_login_ok(
        parts.hostname or n.host,
        parts.port or n.amqp_port,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        3.0,
        unquote(parts.path[1:]) or "/",
        ssl_context=context,
    )


def _write_profile(
    n: LocalNode, vhost: str, me: str, endpoints: list[str], urls: dict[str, str]
) -> Path:
    from orbit_protocol import naming

    data = profile.load()
    eps = data.get("endpoints", {})
    for e in endpoints:
        eps[e] = {**eps.get(e, {}), "url": urls[e], "owner": me}
    data |= {"client": {**data.get("client", {}), "url": urls[me]}, "endpoints": eps}
    data["broker"] = localbroker.broker_section(n, vhost)
    if n.tls_port is not None:
        data["broker"] |= {
            "tls_port": n.tls_port,
            "plaintext": n.plaintext,
            "ca": str(n.certificate_authority().cert),
        }
    else:
        data["broker"] = {
            k: v for k, v in data["broker"].items() if k not in {"tls_port", "plaintext", "ca"}
        }
    if naming.RESPONDER_USER in urls:
        data["responder"] = {"url": urls[naming.RESPONDER_USER]}
    return profile.save(data)


def responder_paths(n: LocalNode) -> tuple[Path, Path]:
    return n.data_dir / "responder.pid", n.log_dir / "responder.log"


def _start_responder(n: LocalNode, url: str | None) -> str:
    """Run ``orbit broker serve`` in the background; wait until it consumes orbit.dead."""
    try:
        import orbit_broker.responder  # noqa: F401
    except ImportError:
        return "not available yet"
    if url is None:
        return "no credentials"
    pid_file, log_file = responder_paths(n)
    pid = process.read_pid(pid_file)
    if pid is not None:
        return f"running, pid {pid}"
    env = dict(os.environ) | {"ORBIT_RESPONDER_URL": url}
    proc = process.spawn(
        ["-m", "orbit_cli", "broker", "serve"], env=env, pid_file=pid_file, log_file=log_file
    )
    deadline = time.monotonic() + 15
    mgmt = localbroker.management(n.management_url)
    while time.monotonic() < deadline and proc.poll() is None:
        queue = mgmt.get_queue(profile.load().get("broker", {}).get("vhost", "orbit"), "orbit.dead")
        if queue is not None and queue.consumers > 0:
            return f"running, pid {proc.pid}"
        time.sleep(0.3)
    render.error(
        "UNAVAILABLE",
        f"dead-letter responder did not start; log {log_file}:\n{process.tail(log_file, 10)}",
    )
    return "[red]failed[/]"


def _up_panel(
    n: LocalNode, vhost: str, me: str, endpoints: list[str], url: str, path: Path, responder: str
) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    shown = render.mask_url(url).split("?")[0] + (
        "?cafile=…&certfile=…&keyfile=…" if "?" in url else ""
    )
    grid.add_row("client URL", f"{shown}  [dim](user {me})[/]")
    if n.tls_port is not None:
        plain = f"plain AMQP {n.amqp_port} also open" if n.plaintext else "plain AMQP off"
        grid.add_row(
            "TLS", f"AMQPS 127.0.0.1:{n.tls_port}, CA {n.tls_dir}/ca.pem  [dim]({plain})[/]"
        )
    grid.add_row("management", f"{n.management_url}  [dim](guest/guest, loopback only)[/]")
    grid.add_row("vhost", vhost)
    grid.add_row("endpoints", ", ".join(endpoints) + "  [dim](users and queues provisioned)[/]")
    grid.add_row("dead letters", f"responder {responder}")
    grid.add_row("data", str(n.data_dir))
    grid.add_row("profile", f"{path}  [dim](0600, holds the passwords)[/]")
    first = endpoints[0]
    steps = (
        "\n[bold]Next steps[/]\n"
        f"  [cyan]orbit endpoint start --name {first} --detach[/]\n"
        "  [cyan]orbit endpoints[/]\n"
        f"  [cyan]orbit call {first} orbit.ping[/]\n"
        f"  [cyan]orbit sysinfo {first}[/]\n"
        "  [cyan]orbit broker down[/]"
    )
    return Panel(
        Group(grid, steps),
        title="[bold green]Orbit broker is up[/]",
        title_align="left",
        expand=False,
    )


__all__ = ["UP_EPILOG", "DataDirOpt", "PortOpt", "apply_saved_tls", "responder_paths", "up"]
