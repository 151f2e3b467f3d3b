"""``orbit queues EP``: partitions/queues of an endpoint's batch system (queue_info plugin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from orbit_cli.kit import EndpointArg, JsonOpt, TimeoutOpt, UrlOpt, render, session

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient

    from .schema import BatchJob, InfoResult

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit queues hpc[/]                     partitions/queues with nodes and limits
  [cyan]orbit queues hpc --jobs[/]              also your jobs in the batch system
  [cyan]orbit queues hpc --jobs --user '*'[/]   everybody's jobs
  [cyan]orbit queues hpc --force --json[/]      bypass the endpoint's 60 s cache"""


def queues(
    endpoint: EndpointArg,
    jobs: Annotated[bool, typer.Option("--jobs", help="Also list batch jobs.")] = False,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="Limits and jobs of this user ('*': everybody)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Bypass the endpoint's cache.")] = False,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Show the batch queues (Slurm partitions or PBS queues) of an endpoint's host."""

    async def work(client: AsyncOrbitClient) -> tuple[InfoResult, list[BatchJob] | None]:
        from .client import AsyncQueueInfo

        qi = AsyncQueueInfo(client, endpoint)
        info = await qi.get_info(user, force=force)
        return info, (await qi.list_all_jobs(user, force=force) if jobs else None)

    info, listed = session.run(work, url=url, timeout=timeout)
    if json_out:
        out: dict[str, Any] = {"info": info.model_dump(mode="json")}
        if listed is not None:
            out["jobs"] = {"jobs": [j.model_dump(mode="json") for j in listed]}
        render.print_json(out, raw=True)
        return
    from rich.table import Table

    table = Table(
        header_style="bold",
        title=f"[bold]{info.backend} queues on {endpoint}[/]",
        title_justify="left",
    )
    columns = (
        "queue",
        "state",
        "nodes idle/total",
        "cpus",
        "gpus",
        "mem",
        "time limit",
        "jobs/user",
    )
    for column in columns:
        table.add_column(column)
    for q in info.queues.values():
        table.add_row(
            f"[cyan]{escape(q.name)}[/]" + (" [dim](default)[/]" if q.default else ""),
            escape(q.state),
            f"{_n(q.nodes_idle)}/{_n(q.nodes_total)}",
            _n(q.cpus_per_node),
            _n(q.gpus_per_node),
            render.human_bytes(q.mem_per_node_mb * 2**20) if q.mem_per_node_mb else "–",
            render.human_duration(q.time_limit) if q.time_limit else "unlimited",
            _n(q.max_jobs_per_user),
        )
    render.console.print(table)
    if listed is not None:
        jt = Table(header_style="bold", title="[bold]Batch jobs[/]", title_justify="left")
        for column in ("job id", "name", "user", "queue", "state", "nodes", "used", "reason"):
            jt.add_column(column)
        for j in listed:
            jt.add_row(
                j.job_id,
                escape(j.name),
                j.user,
                j.queue,
                j.state,
                _n(j.nodes),
                render.human_duration(j.time_used) if j.time_used is not None else "–",
                escape(j.reason or ""),
            )
        render.console.print(jt)


def _n(value: int | None) -> str:
    return "–" if value is None else str(value)


def register(app: typer.Typer) -> None:
    """Add ``orbit queues`` (entry point group ``orbit.cli``)."""
    app.command("queues", epilog=EPILOG)(queues)
