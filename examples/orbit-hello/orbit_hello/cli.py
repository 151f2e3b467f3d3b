"""``orbit hello greet EP NAME``: the CLI side, added to ``orbit`` by the entry point."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from orbit_cli.kit import EndpointArg, JsonOpt, TimeoutOpt, UrlOpt, render, session

from .client import AsyncHello
from .schema import Greeting

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient

app = typer.Typer(help="Greetings from an endpoint's hello plugin (an example plugin).")


@app.command("greet")
def greet(
    endpoint: EndpointArg,
    name: Annotated[str, typer.Argument(help="Who to greet.")],
    shout: Annotated[bool, typer.Option("--shout", help="Upper-case the greeting.")] = False,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Ask ENDPOINT to greet NAME."""

    async def work(client: AsyncOrbitClient) -> Greeting:
        return await AsyncHello(client, endpoint).greet(name, shout=shout)

    greeting = session.run(work, url=url, timeout=timeout)
    if json_out:
        render.print_json(greeting.model_dump(), raw=True)
    else:
        render.console.print(f"[bold]{greeting.text}[/] (greeting {greeting.count} of {endpoint})")


def register(target: typer.Typer) -> None:
    """Entry point ``orbit.cli``: add ``orbit hello``."""
    target.add_typer(app, name="hello")
