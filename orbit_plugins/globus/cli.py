"""``orbit transfer submit|status|wait|cancel|list|ls EP …``: Globus through an endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel

from orbit_cli.kit import CliError, EndpointArg, JsonOpt, TimeoutOpt, UrlOpt, render, session

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient
    from orbit_plugins.globus.client import AsyncGlobus
    from orbit_plugins.globus.schema import Listing, Outcome, Registered, Task

transfer_app = typer.Typer(
    help="Globus transfers driven by an endpoint's globus plugin (no data through Orbit).",
    rich_markup_mode="rich",
    no_args_is_help=True,
    epilog="""\
[bold]Examples[/]

  [cyan]export GLOBUS_ACCESS_TOKEN=…[/]                         a Transfer API access token
  [cyan]orbit transfer register hpc1 --refresh-token … --client-id …[/]   or: a renewable login
  [cyan]orbit transfer submit hpc1 local $DEST /~/run1/ /data/run1/ -r --wait[/]
  [cyan]orbit transfer status hpc1 TASK_ID[/]
  [cyan]orbit transfer ls hpc1 local /~/[/]

'local' is the endpoint's configured collection. The token (flag or environment) is sent
to the endpoint, which keeps it in memory only; without one the last registration is used.""",
)

TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="GLOBUS_ACCESS_TOKEN",
        show_envvar=True,
        help="Globus Transfer access token (registered with the endpoint first).",
    ),
]
TaskArg = Annotated[str, typer.Argument(help="Globus task id.")]


def _run(
    endpoint: str,
    token: str | None,
    url: str | None,
    timeout: float | None,
    work: Any,
) -> Any:
    from orbit_plugins.globus.client import AsyncGlobus

    async def main(client: AsyncOrbitClient) -> Any:
        transfers = AsyncGlobus(client, endpoint)
        if token:
            await transfers.register(access_token=token)
        return await work(transfers)

    return session.run(main, url=url, timeout=timeout)


def _json(model: BaseModel) -> None:
    render.print_json(model.model_dump(mode="json"), raw=True)


def _show_task(task: Task, json_out: bool) -> None:
    if json_out:
        _json(task)
        return
    colour = {"SUCCEEDED": "green", "FAILED": "red"}.get(task.status, "yellow")
    render.console.print(
        f"[bold]{task.task_id}[/]  [{colour}]{task.status}[/]"
        + (f" ({task.nice_status})" if task.nice_status else "")
        + f"  {task.files_transferred} file(s), {render.human_bytes(task.bytes_transferred)}"
        + (f"  [dim]{task.label}[/]" if task.label else "")
    )


@transfer_app.command("register")
def register_cmd(
    endpoint: EndpointArg,
    token: TokenOpt = None,
    refresh_token: Annotated[
        str | None,
        typer.Option(
            "--refresh-token",
            envvar="GLOBUS_REFRESH_TOKEN",
            show_envvar=True,
            help="Globus refresh token (with --client-id): the endpoint renews access itself.",
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id",
            envvar="GLOBUS_CLIENT_ID",
            show_envvar=True,
            help="Client id of the native app the refresh token was issued to.",
        ),
    ] = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Hand the endpoint your Globus credentials once (memory only); later commands use them."""
    if bool(token) == bool(refresh_token) or (refresh_token and not client_id):
        raise CliError(
            "give --token, or --refresh-token with --client-id", code="INVALID_ARGS", exit_code=2
        )

    async def work(t: AsyncGlobus) -> Registered:
        if token:
            return await t.register(access_token=token)
        return await t.register(refresh_token=refresh_token, client_id=client_id)

    result = _run(endpoint, None, url, timeout, work)
    if json_out:
        _json(result)
    else:
        render.success(f"registered {result.auth.replace('_', ' ')} for {result.user}")


@transfer_app.command("submit")
def submit(
    endpoint: EndpointArg,
    source: Annotated[str, typer.Argument(help="Source collection UUID or 'local'.")],
    destination: Annotated[str, typer.Argument(help="Destination collection UUID or 'local'.")],
    source_path: Annotated[str, typer.Argument(help="Path on the source collection.")],
    destination_path: Annotated[str, typer.Argument(help="Path on the destination collection.")],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="A directory.")] = False,
    label: Annotated[str | None, typer.Option("--label", help="Task label.")] = None,
    sync_level: Annotated[
        str | None, typer.Option("--sync-level", help="exists, size, mtime or checksum.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the task to end.")] = False,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Submit a Globus transfer (optionally wait for it)."""
    from orbit_plugins.globus.schema import Submitted

    async def work(t: AsyncGlobus) -> Submitted | Task:
        items = [(source_path, destination_path, recursive)]
        submitted = await t.submit(source, destination, items, label=label, sync_level=sync_level)
        if not wait:
            return submitted
        return await t.wait(submitted.task_id)

    result = _run(endpoint, token, url, timeout, work)
    if not isinstance(result, Submitted):
        _show_task(result, json_out)
    elif json_out:
        _json(result)
    else:
        render.success(f"submitted task {result.task_id} ({result.status})")


@transfer_app.command("status")
def status(
    endpoint: EndpointArg,
    task_id: TaskArg,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Show a task's status."""

    async def work(t: AsyncGlobus) -> Task:
        return await t.status(task_id)

    _show_task(_run(endpoint, token, url, timeout, work), json_out)


@transfer_app.command("wait")
def wait_cmd(
    endpoint: EndpointArg,
    task_id: TaskArg,
    max_wait: Annotated[
        float, typer.Option("--max-wait", min=1, help="Give up after this many seconds.")
    ] = 3600,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Wait until a task ends (exit 1 if it failed or is still running at --max-wait)."""

    async def work(t: AsyncGlobus) -> Task:
        return await t.wait(task_id, timeout=max_wait, polling_interval=2)

    task = _run(endpoint, token, url, timeout, work)
    _show_task(task, json_out)
    if task.status != "SUCCEEDED":
        raise typer.Exit(1)


@transfer_app.command("cancel")
def cancel(
    endpoint: EndpointArg,
    task_id: TaskArg,
    token: TokenOpt = None,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Cancel a task."""

    async def work(t: AsyncGlobus) -> Outcome:
        return await t.cancel(task_id)

    result = _run(endpoint, token, url, timeout, work)
    render.success(f"{result.code}: {result.message}")


@transfer_app.command("list")
def list_tasks(
    endpoint: EndpointArg,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    token: TokenOpt = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Your recent Globus tasks."""

    async def work(t: AsyncGlobus) -> list[Task]:
        return await t.tasks(limit)

    tasks = _run(endpoint, token, url, timeout, work)
    if json_out:
        render.print_json([task.model_dump(mode="json") for task in tasks], raw=True)
        return
    for task in tasks:
        _show_task(task, False)


@transfer_app.command("ls")
def ls(
    endpoint: EndpointArg,
    collection: Annotated[str, typer.Argument(help="Collection UUID or 'local'.")],
    path: Annotated[str, typer.Argument(help="Directory on the collection.")] = "/~/",
    token: TokenOpt = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """List a directory on a Globus collection."""
    from rich.table import Table

    async def work(t: AsyncGlobus) -> Listing:
        return await t.ls(collection, path)

    listing = _run(endpoint, token, url, timeout, work)
    if json_out:
        _json(listing)
        return
    table = Table(title=f"[bold]{listing.collection}:{listing.path}[/]", title_justify="left")
    for column in ("name", "type", "size", "modified"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for e in listing.entries:
        size = render.human_bytes(e.get("size")) if e.get("type") == "file" else ""
        table.add_row(e.get("name", ""), e.get("type", ""), size, str(e.get("last_modified") or ""))
    render.console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``orbit transfer`` (entry point group ``orbit.cli``)."""
    app.add_typer(transfer_app, name="transfer")


__all__ = ["register", "transfer_app"]
