"""``orbit call EP plugin.method key=value …``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import render, session
from ..options import EndpointArg, JsonOpt, TimeoutOpt, UrlOpt
from ..parsing import build_args, split_operation

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit call demo orbit.ping[/]
  [cyan]orbit call demo sysinfo.metrics fresh=true sections='["cpu","memory"]'[/]
  [cyan]orbit call demo sysinfo.homedir --json | jq -r .path[/]
  [cyan]orbit call demo psij.submit_job --args-json @job.json --idempotency-key job-42[/]

Values are parsed as JSON when they can be (42, true, null, [..], {..}), else taken as strings.
Key=value pairs override keys of --args-json."""


def call(
    endpoint: EndpointArg,
    operation: Annotated[str, typer.Argument(help="[bold]plugin.method[/], e.g. orbit.ping.")],
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="Arguments as KEY=VALUE (VALUE parsed as JSON when possible).", show_default=False
        ),
    ] = None,
    args_json: Annotated[
        str | None,
        typer.Option(
            "--args-json", help="Arguments as one JSON object ([bold]@file[/] reads a file)."
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key", help="Re-sending with the same key runs the call only once."
        ),
    ] = None,
    queue: Annotated[
        bool,
        typer.Option("--queue", help="Queue the call even if the endpoint is offline right now."),
    ] = False,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Call an operation on an endpoint and print its result.

    The reply is pretty-printed; with [bold]--json[/] it is printed as compact JSON for
    scripts. An error reply prints [red]\\[CODE] message[/] on stderr and exits 1.
    """
    split_operation(operation)
    arguments = build_args(args or [], args_json)

    async def work(client: AsyncOrbitClient) -> Any:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        reply = await client.request(
            endpoint,
            operation,
            arguments,
            idempotency_key=idempotency_key,
            wait_for_endpoint=queue,
            **extra,
        )
        return reply.unwrap()

    result = session.run(work, url=url, timeout=timeout)
    if not json_out and isinstance(result, str):
        render.console.print(result, markup=False)
    else:
        render.print_json(result, raw=json_out)
