"""``orbit pool create|status``: shared request queues ``orbit.pool.<pool>`` (docs/protocol.md).

Pool queues have the endpoint queues' arguments minus ``x-single-active-consumer``: every
member consumes at once (competing consumers), each holding at most its capacity of
un-acked requests; a member that dies leaves its un-acked requests to the others.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from .. import render, session
from ..options import JsonOpt, UrlOpt

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit pool create work[/]          declare orbit.pool.work (needs configure rights)
  [cyan]orbit endpoint start --name a --pool work[/]   (more members the same way)
  [cyan]orbit pool status work[/]          pending requests, live members"""

app = typer.Typer(
    help="Pools: a shared request queue served by several endpoints.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    epilog=EPILOG,
)
PoolArg = Annotated[str, typer.Argument(help="Pool name.", show_default=False)]


def _url(url: str | None) -> str:
    return session.client_settings(url).url.get_secret_value()


@app.command("create")
def create(pool: PoolArg, url: UrlOpt = None) -> None:
    """Declare the pool's quorum queue and its binding (idempotent)."""
    from orbit_broker.topology import declare_all
    from orbit_protocol import naming

    naming.validate_name(pool, "pool")
    asyncio.run(declare_all(_url(url), pools=[pool]))
    render.success(f"pool {pool}: queue {naming.pool_queue(pool)} bound with key pool.{pool}")


@app.command("status")
def status(pool: PoolArg, json_out: JsonOpt = False, url: UrlOpt = None) -> None:
    """Pending requests (waiting in the queue, not yet taken by a member) and live members."""
    from orbit_amqp import EntityNotFound, connect
    from orbit_protocol import NotFound, naming

    queue_name = naming.pool_queue(pool)

    async def work() -> dict[str, Any]:
        connection = await connect(_url(url), name="orbit-cli pool")
        try:
            channel = await connection.channel()
            try:
                state = await channel.declare_queue(queue_name, passive=True)
            except EntityNotFound:
                raise NotFound(
                    f"no pool {pool!r}: create it with `orbit pool create {pool}`"
                ) from None
            return {
                "pool": pool,
                "queue": queue_name,
                "pending": state.messages,
                "members": state.consumers,
            }
        finally:
            await connection.close()

    info = asyncio.run(work())
    if json_out:
        render.print_json(info, raw=True)
        return
    members = info["members"]
    shown = f"[green]{members}[/]" if members else "[red]none[/]"
    render.console.print(
        f"pool [bold]{pool}[/] ({queue_name}): {info['pending']} pending request(s),"
        f" live members: {shown}"
    )
