"""``orbit events [EP]``: live tail of ``orbit.events``."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from .. import render, session
from ..errors import CliError
from ..options import JsonOpt, UrlOpt

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient, Subscription
    from orbit_protocol import Event

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit events demo[/]                              everything endpoint demo publishes
  [cyan]orbit events demo --plugin sysinfo[/]             only the sysinfo plugin's events
  [cyan]orbit events --topic presence[/]                  presence of every endpoint
  [cyan]orbit events demo --count 1 --timeout 30[/]       wait for one event, at most 30 s
  [cyan]orbit events demo --json | jq .data[/]            one JSON object per line

Presence events come every heartbeat (10 s); plugins publish their own topics."""


def _line(event: Event) -> str:
    key = f"{event.endpoint}.{event.plugin}.{event.topic}"
    colour = "magenta" if event.plugin == "orbit" else "cyan"
    summary = render.summarize(event.data)
    return f"[dim]{render.clock(event.ts)}[/]  [{colour}]{key}[/]  {_escape(summary)}"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def events(
    endpoint: Annotated[
        str | None, typer.Argument(help="Endpoint to follow (default: all you may see).")
    ] = None,
    plugin: Annotated[str | None, typer.Option("--plugin", "-p", help="Only this plugin.")] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="Only this topic.")] = None,
    count: Annotated[
        int | None, typer.Option("--count", "-n", min=1, help="Stop after N events.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", "-t", min=0.1, help="Give up after this many seconds (exit 1)."),
    ] = None,
    json_out: JsonOpt = False,
    url: UrlOpt = None,
) -> None:
    """Print events as they arrive: time, [bold]endpoint.plugin.topic[/], data summary.

    Runs until Ctrl-C, [bold]--count[/] events or [bold]--timeout[/] seconds.
    """
    from orbit_protocol import naming

    if endpoint is not None:
        naming.validate_name(endpoint)

    async def work(client: AsyncOrbitClient) -> int:
        sub = await _subscribe(client, endpoint, plugin, topic)
        seen = 0
        if not json_out:
            pattern = naming.event_pattern(endpoint, plugin, topic)
            render.info(f"following {pattern} … (Ctrl-C to stop)")
        try:
            async with asyncio.timeout(timeout):
                while count is None or seen < count:
                    event = await sub.get()
                    seen += 1
                    if json_out:
                        sys.stdout.write(json.dumps(event.model_dump(mode="json")) + "\n")
                        sys.stdout.flush()
                    else:
                        render.console.print(_line(event), soft_wrap=True)
        except TimeoutError:
            if count is not None:
                raise CliError(
                    f"only {seen} of {count} event(s) within {timeout} s",
                    code="DEADLINE_EXCEEDED",
                ) from None
        finally:
            await sub.close()
        return seen

    session.run(work, url=url)


async def _subscribe(
    client: AsyncOrbitClient, endpoint: str | None, plugin: str | None, topic: str | None
) -> Subscription:
    from orbit_protocol import NotAuthorized

    try:
        return await client.subscribe(endpoint, plugin, topic)
    except NotAuthorized:
        what = f"endpoint {endpoint!r}" if endpoint else "all endpoints"
        hint = (
            "ask the broker admin: orbit broker grant CLIENT ENDPOINT"
            if endpoint
            else "name an endpoint you were granted, e.g. orbit events demo"
        )
        raise CliError(
            f"user {client.user!r} may not follow the events of {what}",
            code="NOT_AUTHORIZED",
            hint=hint,
            exit_code=2,
        ) from None
