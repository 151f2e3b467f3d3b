"""``orbit broker up|down|status|serve`` (+ provision/grant/revoke from ``broker_access``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import localbroker, process, profile, render
from ..errors import CliError
from ..options import DebugOpt, JsonOpt
from . import broker_access, gateway
from .broker_up import UP_EPILOG, DataDirOpt, PortOpt, apply_saved_tls, responder_paths, up

if TYPE_CHECKING:
    pass

app = typer.Typer(
    help="Run a private RabbitMQ node and manage users, permissions and grants.",
    rich_markup_mode="rich",
    no_args_is_help=True,
)
app.command("provision", epilog=broker_access.PROVISION_EPILOG)(broker_access.provision)
app.command("grant", epilog=broker_access.GRANT_EPILOG)(broker_access.grant)
app.command("revoke", epilog=broker_access.REVOKE_EPILOG)(broker_access.revoke)
app.command("asyncapi", epilog=gateway.ASYNCAPI_EPILOG)(gateway.asyncapi)

app.command("up", epilog=UP_EPILOG)(up)


@app.command("down", epilog="[bold]Examples[/]\n\n  [cyan]orbit broker down[/]")
def down(data_dir: DataDirOpt = None, port: PortOpt = None) -> None:
    """Stop the dead-letter responder and the local node (data is kept for the next [bold]up[/])."""
    n = localbroker.node(data_dir, port)
    pid = process.stop(responder_paths(n)[0], timeout=10)
    if pid:
        render.success(f"dead-letter responder stopped (pid {pid})")
    if not n.is_running():
        render.info(f"RabbitMQ node {n.nodename} is not running")
        return
    with render.err_console.status(f"stopping RabbitMQ node {n.nodename} …"):
        n.stop()
    render.success(f"RabbitMQ node {n.nodename} stopped (data kept in {n.data_dir})")


@app.command(
    "rotate-cert",
    epilog="[bold]Examples[/]\n\n  [cyan]orbit broker rotate-cert[/]",
)
def rotate_cert(data_dir: DataDirOpt = None, port: PortOpt = None) -> None:
    """Give the local node's TLS listener a new server key and certificate (same CA).

    New connections get it at once; connected endpoints and clients keep their sessions."""
    from cryptography import x509

    n = localbroker.node(data_dir, port)
    apply_saved_tls(n)
    if not n.is_running():
        raise CliError(f"RabbitMQ node {n.nodename} is not running", code="UNAVAILABLE")
    cert = x509.load_pem_x509_certificate(n.rotate_server_certificate().read_bytes())
    render.success(
        f"new server certificate for {n.nodename}: serial {cert.serial_number:x},"
        f" valid until {cert.not_valid_after_utc:%Y-%m-%d}; connected clients keep theirs"
    )


@app.command(
    "status",
    epilog="[bold]Examples[/]\n\n  [cyan]orbit broker status[/]\n  [cyan]orbit broker status --json[/]",  # noqa: E501
)
def status(
    data_dir: DataDirOpt = None,
    port: PortOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the local node, the responder and the request queues (exit 1 when the node is down)."""
    n = localbroker.node(data_dir, port)
    apply_saved_tls(n)
    st = n.status()
    report: dict[str, Any] = {
        "node": st.node,
        "running": st.running,
        "ready": st.ready,
        "pid": st.pid,
        "version": st.version,
        "amqp": f"127.0.0.1:{st.amqp_port}" if n.plaintext else "off",
        "amqps": f"127.0.0.1:{n.tls_port}" if n.tls_port is not None else None,
        "management": n.management_url,
        "data_dir": str(st.data_dir),
        "responder_pid": process.read_pid(responder_paths(n)[0]),
        "queues": [],
    }
    if st.ready:
        vhost = profile.load().get("broker", {}).get("vhost", "orbit")
        queues = localbroker.management(n.management_url).list_queues(vhost)
        report["queues"] = [
            {"queue": q.name, "type": q.type, "consumers": q.consumers, "messages": q.messages}
            for q in queues
            if q.name.startswith(("orbit.ep.", "orbit.pool.", "orbit.dead"))
        ]
    if json_out:
        render.print_json(report, raw=True)
    else:
        _print_status(report)
    if not st.ready:
        raise typer.Exit(1)


def _print_status(r: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title="[bold]Local broker[/]", title_justify="left", show_header=False)
    t.add_column(style="dim")
    t.add_column()
    state = (
        "[green]ready[/]"
        if r["ready"]
        else ("[yellow]starting/unresponsive[/]" if r["running"] else "[red]stopped[/]")
    )
    rows = [
        ("node", r["node"]),
        ("state", state),
        ("version", r["version"] or "–"),
        ("pid", str(r["pid"] or "–")),
        ("amqp", r["amqp"]),
        ("amqps", r["amqps"] or "–"),
        ("management", r["management"]),
        ("data", r["data_dir"]),
        ("responder", f"pid {r['responder_pid']}" if r["responder_pid"] else "[dim]not running[/]"),
    ]
    for key, value in rows:
        t.add_row(key, value)
    render.console.print(t)
    if r["queues"]:
        q = Table(title="[bold]Queues[/]", title_justify="left", header_style="bold")
        for col in ("queue", "type", "consumers", "messages"):
            q.add_column(col, justify="right" if col in {"consumers", "messages"} else "left")
        for row in r["queues"]:
            q.add_row(row["queue"], row["type"], str(row["consumers"]), str(row["messages"]))
        render.console.print(q)


SERVE_EPILOG = """\
[bold]Examples[/]

  [cyan]orbit broker serve[/]                                     uses the profile's responder URL
  [cyan]ORBIT_RESPONDER_URL=amqp://orbit-responder:…@host/orbit orbit broker serve[/]

[bold]orbit broker up[/] starts it in the background for the local node."""


@app.command("serve", epilog=SERVE_EPILOG)
def serve(
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="ORBIT_RESPONDER_URL",
            show_envvar=True,
            help="AMQP URL of the orbit-responder user.",
        ),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Run the dead-letter responder in the foreground: every request that dies in the broker
    (expired, poison, rejected) gets an error reply instead of leaving its caller waiting."""
    import asyncio
    import logging
    import signal

    try:
        from orbit_broker.responder import Responder
    except ImportError:
        raise CliError(
            "the dead-letter responder is not available yet", code="UNAVAILABLE"
        ) from None
    url = url or profile.load().get("responder", {}).get("url")
    if not url:
        raise CliError(
            "no responder URL: pass --url or run `orbit broker up` first", code="USAGE", exit_code=2
        )
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Responder(url).run(stop)

    from orbit_protocol import AuthenticationFailed

    try:
        asyncio.run(main())
    except AuthenticationFailed:
        raise AuthenticationFailed("the broker refused the responder's credentials") from None


LINT_EPILOG = """\
[bold]Examples[/]

  [cyan]orbit broker lint[/]                                   the local node, vhost orbit
  [cyan]orbit broker lint --management-url http://admin:…@rabbit:15672 --vhost orbit --json[/]

Exit code 1 when there is a finding. Rules: every user has a topic-permission row on every
topic exchange; no tenant may configure shared objects or write to the default exchange."""


@app.command("lint", epilog=LINT_EPILOG)
def lint(
    management_url: broker_access.ManagementOpt = None,
    vhost: broker_access.VhostOpt = None,
    admin: Annotated[
        list[str] | None,
        typer.Option("--admin", help="Users exempt from the rules (besides administrators)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a live broker's definitions (permissions, topic permissions, tags) for grants
    that would break tenant isolation."""
    from orbit_broker.lint import lint_broker
    from orbit_protocol import naming

    mgmt = localbroker.management(management_url)
    name = vhost or profile.load().get("broker", {}).get("vhost") or naming.DEFAULT_VHOST
    findings = lint_broker(mgmt, name, admin or ())
    if json_out:
        render.print_json(
            [
                {"rule": f.rule, "user": f.user, "target": f.target, "message": f.message}
                for f in findings
            ],
            raw=True,
        )
    elif findings:
        from rich.table import Table

        table = Table(title=f"[bold]Lint of vhost {name}[/]", title_justify="left")
        for col in ("rule", "user", "target", "finding"):
            table.add_column(col)
        for f in findings:
            table.add_row(f"[red]{f.rule}[/]", f.user, f.target, f.message)
        render.console.print(table)
    else:
        render.success(f"vhost {name}: no findings (users, permissions and topic permissions)")
    if findings:
        raise typer.Exit(1)
