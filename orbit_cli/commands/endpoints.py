"""``orbit endpoints``: every endpoint and pool you were granted, online or not."""

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

    from orbit_client import AsyncOrbitClient, DirectoryEntry, Subscription

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit endpoints[/]                 your endpoints and pools, at once
  [cyan]orbit endpoints hpc1 hpc2[/]       only these
  [cyan]orbit endpoints --watch[/]         live table until Ctrl-C
  [cyan]orbit endpoints --json[/]          for scripts

The broker keeps a directory for every user made by `orbit broker provision` (or `orbit
broker up`): the endpoints and pools granted to you, each endpoint's last presence and
whether it consumes its queue now. A user without one (the dev `guest`) is shown what it
hears of presence within one heartbeat (10 s), or within --wait seconds."""

STATES = {
    "online": "[green]● online[/]",
    "offline": "[red]○ offline[/]",
    "stale": "[yellow]○ stale[/]",
    "unknown": "[dim]○ never seen[/]",
}


def endpoints(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Only these endpoints or pools.", show_default=False),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Live-updating table until Ctrl-C.")
    ] = False,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait", min=0, help="Without a directory: seconds to collect presence (default 11)."
        ),
    ] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """List endpoints and pools with state, host, plugins, version, backlog and last seen."""
    from orbit_protocol import naming

    wanted = [naming.validate_name(name) for name in names or []]

    async def collect(client: AsyncOrbitClient) -> list[DirectoryEntry]:
        found = await _entries(client, wanted, wait, quiet=json_out)
        if watch:
            await _watch(client, wanted, found)
        return found

    try:
        found = session.run(collect, url=url)
    except KeyboardInterrupt:
        if watch:
            return
        raise
    if json_out:
        render.print_json([entry.as_dict() for entry in found], raw=True)
        return
    if not found:
        render.info(
            "no endpoint announced itself and the broker keeps no directory for you;"
            " name the endpoints you were granted: orbit endpoints EP …"
        )
        raise typer.Exit(1)
    render.console.print(table(found))


async def _entries(
    client: AsyncOrbitClient, wanted: list[str], wait: float | None, *, quiet: bool
) -> list[DirectoryEntry]:
    """From the directory; without one, from presence heard within ``wait`` seconds."""
    from orbit_protocol import NotFound

    try:
        entries = await client.directory()
    except NotFound:
        pass
    else:
        return [e for e in entries if not wanted or e.name in wanted]
    seconds = client.settings.heartbeat + 1 if wait is None else wait
    await _feed_presence(client, wanted)  # the pumps end with the command's event loop
    if quiet:
        await _gather(client, wanted, seconds)
    else:
        with render.err_console.status(f"listening for presence (up to {seconds:g} s) …"):
            await _gather(client, wanted, seconds)
    return _heard(client, wanted)


def _heard(client: AsyncOrbitClient, wanted: list[str]) -> list[DirectoryEntry]:
    found = client.endpoints()
    return [i.as_entry() for n, i in sorted(found.items()) if not wanted or n in wanted]


async def _gather(client: AsyncOrbitClient, wanted: list[str], seconds: float) -> None:
    """Wait ``seconds``, or less once every wanted endpoint has been heard from."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if wanted and all(name in client.endpoints() for name in wanted):
            return
        await asyncio.sleep(0.2)


async def _feed_presence(client: AsyncOrbitClient, names: list[str]) -> list[asyncio.Task[None]]:
    """Follow presence of ``names``, or of everybody; users who may not follow everybody
    fall back to the endpoints of their profile. Returns the pump tasks."""
    from orbit_protocol import NotAuthorized

    from .. import profile

    if not names:
        try:
            await client.subscribe(None, "orbit", "presence")
            return []  # the client's own presence watcher sees everybody
        except NotAuthorized:
            names = sorted(profile.load().get("endpoints", {}))
    tasks = []
    for name in names:
        sub = await client.subscribe(name, "orbit", "presence")
        tasks.append(asyncio.create_task(_pump(client, sub)))
    return tasks


async def _pump(client: AsyncOrbitClient, sub: Subscription) -> None:
    while True:
        event, sender = await sub.get_with_sender()
        with contextlib.suppress(ValueError):
            client.presence.update(event, sender)


def table(found: list[DirectoryEntry]) -> Table:
    from rich.table import Table

    t = Table(header_style="bold", title="[bold]Endpoints[/]", title_justify="left")
    for column in ("endpoint", "state", "host", "plugins", "version", "backlog", "last seen"):
        t.add_column(column)
    for entry in sorted(found, key=lambda e: (e.kind, e.name)):
        p = entry.presence
        if entry.kind == "pool":
            plugins = f"pool of {entry.consumers} member{'s' * (entry.consumers != 1)}"
        else:
            known = p.plugins.items() if p else ()
            plugins = ", ".join(f"{k} {v}" for k, v in sorted(known) if k != "orbit") or "–"
        seen = "–" if entry.last_seen is None else render.ago(time.time() - entry.last_seen)
        if not entry.provisioned:
            seen = "[red]not provisioned[/]"
        t.add_row(
            f"[bold]{entry.name}[/]",
            STATES[entry.state],
            p.host if p else "–",
            plugins,
            p.version if p else "–",
            str(entry.backlog),
            seen,
        )
    return t


async def _watch(client: AsyncOrbitClient, wanted: list[str], found: list[DirectoryEntry]) -> None:
    from rich.live import Live

    from orbit_protocol import NotFound

    async def refresh() -> list[DirectoryEntry]:
        with contextlib.suppress(NotFound):
            return [e for e in await client.directory() if not wanted or e.name in wanted]
        return _heard(client, wanted)

    def view(entries: list[DirectoryEntry]) -> Any:
        return table(entries) if entries else "waiting for presence events … (Ctrl-C to stop)"

    with Live(view(found), console=render.console, refresh_per_second=2) as live:
        while True:
            await asyncio.sleep(1.0)
            live.update(view(await refresh()))
