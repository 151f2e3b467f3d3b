"""``orbit broker provision|grant|revoke``: users, permissions and grants (management API)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from .. import localbroker, profile, render

if TYPE_CHECKING:
    from orbit_broker.provision import GrantResult, Plan, ProvisionResult

ManagementOpt = Annotated[
    str | None,
    typer.Option(
        "--management-url",
        envvar="ORBIT_MANAGEMENT_URL",
        show_envvar=True,
        help="Management API with admin credentials, http://user:pass@host:port "
        "(default: the local node).",
        rich_help_panel="Admin connection",
    ),
]
AdminOpt = Annotated[
    str | None,
    typer.Option(
        "--admin-url",
        envvar="ORBIT_ADMIN_URL",
        show_envvar=True,
        help="AMQP URL of an admin user, to declare the topology (default: local node).",
        rich_help_panel="Admin connection",
    ),
]
VhostOpt = Annotated[
    str | None,
    typer.Option(
        "--vhost", help="Virtual host (default: orbit).", rich_help_panel="Admin connection"
    ),
]

PROVISION_EPILOG = """\
[bold]Examples[/]

  [cyan]orbit broker provision --endpoint hpc1 --client alice --dry-run[/]      show the plan only
  [cyan]orbit broker provision --endpoint hpc1 --endpoint hpc2 --client alice --client bob[/]
  [cyan]orbit broker provision -e w1 -e w2 --pool batch -c alice --profile-out alice.json[/]

Every client named is granted every endpoint and pool named. New passwords are shown once
(or stored, mode 0600, with --profile-out); existing users keep theirs."""

GRANT_EPILOG = """\
[bold]Examples[/]

  [cyan]orbit broker grant bob demo[/]
  [cyan]orbit broker grant bob batch --pool[/]

The endpoint's own allow-list is the authorization: restart it with the printed --allow list."""

REVOKE_EPILOG = """\
[bold]Examples[/]

  [cyan]orbit broker revoke bob demo[/]
  [cyan]orbit broker revoke bob[/]            delete user bob (client or endpoint) entirely

Closes bob's connections so the revocation takes effect at once (clients reconnect; a
deleted user cannot)."""


def provision(
    endpoint: Annotated[
        list[str] | None, typer.Option("--endpoint", "-e", help="Endpoint (repeatable).")
    ] = None,
    client: Annotated[
        list[str] | None, typer.Option("--client", "-c", help="Client user (repeatable).")
    ] = None,
    pool: Annotated[
        list[str] | None, typer.Option("--pool", help="Shared pool queue (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan, change nothing.")
    ] = False,
    rotate: Annotated[
        bool, typer.Option("--rotate-passwords", help="New passwords for existing users too.")
    ] = False,
    profile_out: Annotated[
        Path | None,
        typer.Option(
            "--profile-out", help="Store the new credentials in this profile file (0600)."
        ),
    ] = None,
    client_connections: Annotated[
        int,
        typer.Option("--client-max-connections", min=-1, help="Per client user (-1: none)."),
    ] = 50,
    endpoint_connections: Annotated[
        int,
        typer.Option("--endpoint-max-connections", min=-1, help="Per endpoint user (-1: none)."),
    ] = 5,
    max_channels: Annotated[
        int, typer.Option("--max-channels", min=-1, help="Per user (-1: none).")
    ] = 200,
    management_url: ManagementOpt = None,
    admin_url: AdminOpt = None,
    vhost: VhostOpt = None,
) -> None:
    """Create vhost, topology, users, permissions and per-user limits idempotently; print
    the plan as a table."""
    from orbit_broker.provision import ClientSpec, EndpointSpec, ProvisionSpec, UserLimits

    from ..errors import UsageError

    if not (endpoint or client or pool):
        raise UsageError("nothing to provision: give --endpoint, --client and/or --pool")
    pools = pool or []
    spec = ProvisionSpec(
        endpoints=[EndpointSpec(e, pools) for e in endpoint or []],
        clients=[ClientSpec(c, endpoint or [], pools) for c in client or []],
        pools=pools,
        rotate_passwords=rotate,
        client_limits=UserLimits(client_connections, max_channels),
        endpoint_limits=UserLimits(endpoint_connections, max_channels),
    )
    prov = localbroker.provisioner(management_url, admin_url, vhost)
    result = prov.provision_sync(spec, dry_run=dry_run)
    render.console.print(plan_table(result.plan))
    if dry_run:
        render.info("dry run: nothing changed")
        return
    render.success(f"applied {len(result.plan.actions)} change(s) to vhost {prov.vhost}")
    if result.credentials:
        _credentials(result, prov.amqp_url, prov.vhost, client or [], profile_out)


def plan_table(plan: Plan) -> Any:
    from rich.table import Table

    table = Table(
        title=f"[bold]Plan for vhost {plan.vhost}[/]"
        + ("  [dim]nothing to do[/]" if plan.empty else ""),
        title_justify="left",
        header_style="bold",
    )
    for col in ("action", "target", "detail"):
        table.add_column(col)
    for action in plan.actions:
        table.add_row(f"[cyan]{action.kind}[/]", action.target, f"[dim]{action.detail}[/]")
    for conflict in plan.conflicts:
        table.add_row("[red]CONFLICT[/]", "", f"[red]{conflict}[/]")
    return table


def _credentials(
    result: ProvisionResult, base_url: str, vhost: str, clients: list[str], out: Path | None
) -> None:
    from rich.table import Table

    urls = {user: c.url(base_url, vhost) for user, c in result.credentials.items()}
    table = Table(title="[bold]New credentials[/]", title_justify="left", header_style="bold")
    table.add_column("user")
    table.add_column("AMQP URL")
    for user, url in sorted(urls.items()):
        table.add_row(user, render.mask_url(url) if out else url)
    render.console.print(table)
    if out is None:
        render.err_console.print(
            "[yellow]These passwords are shown once and stored nowhere.[/] "
            "Use --profile-out FILE next time to keep them in a 0600 file."
        )
        return
    path = profile.update(_profile_data(urls, clients, result, out), out)  # others kept
    render.success(f"credentials stored in {path} (0600); use it with ORBIT_PROFILE={path}")


def _profile_user(file: Path) -> str | None:
    """The client user of the profile ``file`` (``None``: it has none)."""
    from urllib.parse import unquote, urlsplit

    url = profile.load(file).get("client", {}).get("url")
    return unquote(urlsplit(url).username or "") or None if isinstance(url, str) else None


def _profile_data(
    urls: dict[str, str], clients: list[str], result: ProvisionResult, out: Path
) -> dict[str, Any]:
    from orbit_protocol import naming

    eps = [
        a.target
        for a in result.plan.actions
        if a.kind in ("create-user", "rotate-password") and "(endpoint)" in a.detail
    ]
    data: dict[str, Any] = {}
    first = next((c for c in clients if c in urls), None)
    if first:
        data["client"] = {"url": urls[first]}
    if known := {c: urls[c] for c in clients if c in urls}:
        data["clients"] = known
    # who may call the new endpoints: the new clients, else the profile's own client user
    access: dict[str, Any] = {"allowed_users": clients} if clients else {}
    if not clients and (owner := _profile_user(out)):
        access = {"owner": owner}
    if made := {e: {"url": urls[e], **access} for e in eps if e in urls}:
        data["endpoints"] = made
    if naming.RESPONDER_USER in urls:
        data["responder"] = {"url": urls[naming.RESPONDER_USER]}
    return data


def grant(
    client: Annotated[
        str, typer.Argument(help="Client user, or an endpoint whose plugins call ENDPOINT.")
    ],
    endpoint: Annotated[str, typer.Argument(help="Endpoint (or pool with --pool).")],
    pool: Annotated[bool, typer.Option("--pool", help="ENDPOINT names a pool.")] = False,
    management_url: ManagementOpt = None,
    admin_url: AdminOpt = None,
    vhost: VhostOpt = None,
) -> None:
    """Let CLIENT call ENDPOINT at the broker; print the endpoint-side allow-list.

    CLIENT may be an endpoint: its plugins then call ENDPOINT as that endpoint's own
    broker user (docs/plugins/orchestration.md)."""
    prov = localbroker.provisioner(management_url, admin_url, vhost)
    result = prov.grant(client, endpoint, pool=pool)
    verb = "may now call" if result.changed else "could already call"
    render.success(f"{client} {verb} {'pool ' if pool else ''}{endpoint}")
    _allow_list(result, pool)


def revoke(
    client: Annotated[str, typer.Argument(help="Client user (any user without ENDPOINT).")],
    endpoint: Annotated[
        str | None, typer.Argument(help="Endpoint (or pool with --pool); omit to delete USER.")
    ] = None,
    pool: Annotated[bool, typer.Option("--pool", help="ENDPOINT names a pool.")] = False,
    management_url: ManagementOpt = None,
    admin_url: AdminOpt = None,
    vhost: VhostOpt = None,
) -> None:
    """Stop CLIENT calling ENDPOINT at the broker and print the endpoint-side allow-list;
    with no ENDPOINT, delete the user and close its connections at once."""
    prov = localbroker.provisioner(management_url, admin_url, vhost)
    if endpoint is None:
        if not prov.management.user_exists(client):
            render.info(f"user {client} does not exist")
            return
        closed = prov.revoke_user(client)
        render.success(f"user {client} deleted; {closed} connection(s) closed")
        return
    result = prov.revoke(client, endpoint, pool=pool)
    verb = "may no longer call" if result.changed else "could not call"
    render.success(f"{client} {verb} {'pool ' if pool else ''}{endpoint}")
    _allow_list(result, pool)


def _allow_list(result: GrantResult, pool: bool) -> None:
    """Print the endpoint-side line and keep the local profile's allow-list in step."""
    if pool:
        render.info(
            f"{result.client} may call: {', '.join(result.endpoints) or '–'}; "
            f"pools: {', '.join(result.pools) or '–'}"
        )
        return
    users = list(result.allowed_users)
    render.console.print(f"endpoint side ({result.target}):  [bold]{escape(result.hint)}[/]")
    flags = " ".join(f"--allow {u}" for u in users) or "(no --allow: owner only)"
    render.console.print(
        f"  restart it with: [cyan]orbit endpoint start --name {result.target} {flags}[/]"
    )
    if result.target in profile.load().get("endpoints", {}):
        profile.update(
            {
                "endpoints": {
                    result.target: {**profile.endpoint_entry(result.target), "allowed_users": users}
                }
            }
        )
        render.info(
            f"profile {profile.path()} updated: endpoint {result.target} allowed_users = {users}"
        )
