"""``orbit endpoints``: who is online, from presence events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import render, session
from ..options import JsonOpt, UrlOpt

if TYPE_CHECKING:
    from rich.table import Table

    from orbit_client import AsyncOrbitClient, EndpointInfo, Subscription

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit endpoints[/]                 wait one heartbeat, then list endpoints
  [cyan]orbit endpoints --wait 3[/]        list what was heard within 3 s
  [cyan]orbit endpoints --watch[/]         live table until Ctrl-C
  [cyan]orbit endpoints --json[/]          for scripts

Endpoints announce themselves every heartbeat (10 s); an endpoint not heard from for two
heartbeats is shown offline. Restricted users see only the endpoints granted to them."""


def endpoints(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Only these endpoints (needed by users who may not watch all).", show_default=False
        ),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Live-updating table until Ctrl-C.")
    ] = False,
    wait: Annotated[
        float | None,
        typer.Option("--wait", min=0, help="Seconds to collect presence (default: one heartbeat)."),
    ] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """List endpoints with their state, host, plugins, version and when they were last seen."""
    from orbit_protocol import naming

    for name in names or []:
        naming.validate_name(name)

    async def collect(client: AsyncOrbitClient) -> dict[str, EndpointInfo]:
        wanted, tasks = await _feed_presence(client, names or [])
        try:
            if watch:
                await _watch(client)
            seconds = client.settings.heartbeat + 1 if wait is None else wait
            if json_out:
                return await _gather(client, wanted, seconds)
            with render.err_console.status(f"listening for presence (up to {seconds:g} s) …"):
                return await _gather(client, wanted, seconds)
        finally:
            for task in tasks:
                task.cancel()

    try:
        found = session.run(collect, url=url)
    except KeyboardInterrupt:
        if watch:
            return
        raise
    if json_out:
        render.print_json([info.as_dict() for info in found.values()], raw=True)
        return
    if not found:
        render.info(
            "no endpoint announced itself; name the ones you were granted: orbit endpoints EP …"
        )
        raise typer.Exit(1)
    render.console.print(table(found))


async def _gather(
    client: AsyncOrbitClient, wanted: list[str], seconds: float
) -> dict[str, EndpointInfo]:
    """Wait ``seconds``, or less once every wanted endpoint has been heard from."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if wanted and all(name in client.endpoints() for name in wanted):
            break
        await asyncio.sleep(0.2)
    found = client.endpoints()
    return {n: i for n, i in found.items() if not wanted or n in wanted}


async def _feed_presence(
    client: AsyncOrbitClient, names: list[str]
) -> tuple[list[str], list[asyncio.Task[None]]]:
    """Follow presence of ``names``, or of everybody; users who may not follow everybody
    fall back to the endpoints of their profile. Returns (wanted names, pump tasks)."""
    from orbit_protocol import NotAuthorized

    from .. import profile

    if not names:
        try:
            await client.subscribe(None, "orbit", "presence")
            return [], []  # the client's own presence watcher sees everybody
        except NotAuthorized:
            names = sorted(profile.load().get("endpoints", {}))
            if not names:
                return [], []
    tasks = []
    for name in names:
        sub = await client.subscribe(name, "orbit", "presence")
        tasks.append(asyncio.create_task(_pump(client, sub)))
    return names, tasks


async def _pump(client: AsyncOrbitClient, sub: Subscription) -> None:
    while True:
        event, sender = await sub.get_with_sender()
        with contextlib.suppress(ValueError):
            client.presence.update(event, sender)


def table(found: dict[str, EndpointInfo]) -> Table:
    from rich.table import Table

    t = Table(header_style="bold", title="[bold]Endpoints[/]", title_justify="left")
    for column in ("endpoint", "online", "host", "plugins", "version", "user", "last seen"):
        t.add_column(column)
    now = time.monotonic()
    for name, info in sorted(found.items()):
        p = info.presence
        state = (
            "[green]● online[/]"
            if info.online
            else f"[red]○ {p.state if p.state == 'offline' else 'stale'}[/]"
        )
        plugins = ", ".join(f"{k} {v}" for k, v in sorted(p.plugins.items()) if k != "orbit")
        t.add_row(
            f"[bold]{name}[/]",
            state,
            p.host,
            plugins,
            p.version,
            info.user or "–",
            render.ago(now - info.seen_at),
        )
    return t


async def _watch(client: AsyncOrbitClient) -> None:
    from rich.live import Live
    from rich.text import Text

    def view() -> Any:
        found = client.endpoints()
        return (
            table(found)
            if found
            else Text("waiting for presence events … (Ctrl-C to stop)", style="dim")
        )

    with Live(view(), console=render.console, refresh_per_second=2) as live:
        while True:
            await asyncio.sleep(0.5)
            live.update(view())
