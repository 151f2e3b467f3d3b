"""``orbit task submit|wait|list|get|cancel`` and ``orbit run``: an endpoint's ``tasks`` plugin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from orbit_cli.kit import (
    EndpointArg,
    JsonOpt,
    TimeoutOpt,
    UrlOpt,
    UsageError,
    key_values,
    render,
    session,
)

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit task submit demo -- hostname[/]                     one task; wait and show it
  [cyan]orbit task submit demo --count 100 -- sleep 1[/]          a batch, with a progress bar
  [cyan]orbit task submit demo --file tasks.json --detach[/]      JSON task list; print uids
  [cyan]orbit task submit demo --function math:factorial --arg 20[/]
  [cyan]orbit task wait demo UID ...[/]
  [cyan]orbit task list demo --state RUNNING[/]
  [cyan]orbit task cancel demo --all[/]
  [cyan]orbit run demo -- python -c 'print(6*7)'[/]                one-shot, exit code mirrored
  [cyan]orbit run hpc1 --mpi 4 -- ./solver input.nml[/]             4 MPI ranks (mpiexec -n 4)"""

task_app = typer.Typer(
    help="Run tasks (executables, functions) through an endpoint's tasks plugin.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    epilog=EPILOG,
)
STATE_STYLE = {"DONE": "green", "FAILED": "red", "CANCELED": "yellow", "RUNNING": "cyan"}
UidsArg = Annotated[list[str], typer.Argument(help="Task uids.", show_default=False)]
WaitTimeoutOpt = Annotated[
    float | None,
    typer.Option("--wait-timeout", help="Seconds to wait for the tasks (default: forever)."),
]


def build_specs(
    command: list[str],
    *,
    file: Path | None,
    function: str | None,
    arg: list[str],
    count: int,
    env: list[str],
    cwd: str | None,
    task_timeout: float | None,
) -> list[dict[str, Any]]:
    """Task specs from ``--file``, ``--function`` or the command after ``--``."""
    from .client_tasks import new_uid

    if sum(map(bool, (command, file, function))) != 1:
        raise UsageError("give exactly one of: a command after --, --file, --function")
    if file is not None:
        specs = json.loads(file.read_text())
        if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
            raise UsageError(f"{file}: expected a JSON list of task objects")
        return [{"uid": new_uid(), **s} for s in specs]
    environment = key_values(env, "--env {item!r}: use KEY=VALUE")
    base: dict[str, Any] = {"timeout": task_timeout} if task_timeout else {}
    if function is not None:
        base.update(function=function, args=[_json_or_str(a) for a in arg])
    else:
        base.update(executable=command[0], arguments=command[1:], environment=environment)
        if cwd:
            base["cwd"] = cwd
    return [{"uid": new_uid(), **base} for _ in range(count)]


def _json_or_str(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


async def submit_and_follow(
    client: AsyncOrbitClient,
    endpoint: str,
    specs: list[dict[str, Any]],
    *,
    wait: bool,
    wait_timeout: float | None,
    progress: bool,
) -> list[dict[str, Any]]:
    """Submit in batches of 1000; when ``wait``, follow events with a progress bar."""
    from .client_tasks import follow_tasks

    uids = [s["uid"] for s in specs]
    sub = await client.subscribe(endpoint, "tasks") if wait else None  # before submitting
    try:
        accepted = []
        for i in range(0, len(specs), 1000):
            accepted += await client.call(endpoint, "tasks.submit_tasks", tasks=specs[i : i + 1000])
        if not wait:
            return list(accepted)
        if not progress:
            return await follow_tasks(client, endpoint, uids, timeout=wait_timeout)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=render.err_console,
            transient=True,
        ) as bar:
            job = bar.add_task(f"{len(uids)} tasks on {endpoint}", total=len(uids))
            return await follow_tasks(
                client,
                endpoint,
                uids,
                timeout=wait_timeout,
                on_final=lambda n: bar.update(job, completed=n),
            )
    finally:
        if sub is not None:
            await sub.close()


def records_table(records: list[dict[str, Any]], title: str) -> Any:
    from rich.table import Table

    table = Table(title=f"[bold]{title}[/]", title_justify="left", header_style="bold")
    for name in ("uid", "kind", "state", "exit", "result / error", "took"):
        table.add_column(name, no_wrap=name != "result / error")
    for r in records:
        took = (r["finished"] - (r["started"] or r["submitted"])) if r.get("finished") else None
        if r["state"] == "DONE":
            shown = r.get("stdout") if r["kind"] == "executable" else r.get("return_value")
            result = render.summarize(
                shown if r["return_encoding"] != "cloudpickle" else "<pickled>"
            )
        else:
            result = r.get("error") or ""
        style = STATE_STYLE.get(r["state"], "")
        table.add_row(
            r["uid"],
            r["kind"],
            f"[{style}]{r['state']}[/]" if style else r["state"],
            "–" if r.get("exit_code") is None else str(r["exit_code"]),
            escape(str(result).strip()),
            render.human_duration(took) if took is not None else "–",
        )
    return table


def _exit_for(records: list[dict[str, Any]]) -> int:
    return 0 if all(r["state"] == "DONE" for r in records) else 1


@task_app.command("submit", epilog=EPILOG)
def submit(
    endpoint: EndpointArg,
    command: Annotated[
        list[str] | None, typer.Argument(help="The command after [bold]--[/].", show_default=False)
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="JSON list of task specs.", exists=True)
    ] = None,
    function: Annotated[
        str | None, typer.Option("--function", help="Import path module:func to call.")
    ] = None,
    arg: Annotated[
        list[str] | None, typer.Option("--arg", help="Argument of --function (JSON or text).")
    ] = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Submit N copies.")] = 1,
    env: Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE; repeatable.")] = None,
    cwd: Annotated[str | None, typer.Option("--cwd", help="Working directory.")] = None,
    task_timeout: Annotated[
        float | None, typer.Option("--task-timeout", help="Kill each task after S seconds.")
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Print the uids and return.")] = False,
    wait_timeout: WaitTimeoutOpt = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Submit tasks; by default wait for them (progress bar) and show the results."""
    specs = build_specs(
        command or [],
        file=file,
        function=function,
        arg=arg or [],
        count=count,
        env=env or [],
        cwd=cwd,
        task_timeout=task_timeout,
    )

    async def work(client: AsyncOrbitClient) -> list[dict[str, Any]]:
        return await submit_and_follow(
            client,
            endpoint,
            specs,
            wait=not detach,
            wait_timeout=wait_timeout,
            progress=not json_out and sys.stderr.isatty(),
        )

    records = session.run(work, url=url, timeout=timeout)
    if json_out:
        render.print_json(records, raw=True)
    elif detach:
        for r in records:
            render.console.print(r["uid"], markup=False)
    else:
        render.console.print(records_table(records, f"{len(records)} task(s) on {endpoint}"))
    if not detach:
        raise typer.Exit(_exit_for(records))


@task_app.command("wait")
def wait(
    endpoint: EndpointArg,
    uids: UidsArg,
    wait_timeout: WaitTimeoutOpt = None,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Wait for tasks to finish and show them (exit 1 unless all are DONE)."""

    async def work(client: AsyncOrbitClient) -> list[dict[str, Any]]:
        from .client_tasks import follow_tasks

        return await follow_tasks(client, endpoint, uids, timeout=wait_timeout)

    records = session.run(work, url=url, timeout=timeout)
    if json_out:
        render.print_json(records, raw=True)
    else:
        render.console.print(records_table(records, f"tasks on {endpoint}"))
    raise typer.Exit(_exit_for(records))


@task_app.command("get")
def get(
    endpoint: EndpointArg,
    uid: Annotated[str, typer.Argument(help="Task uid.")],
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Show one task as JSON (stdout, stderr, return value, traceback)."""

    async def work(client: AsyncOrbitClient) -> Any:
        return await client.call(endpoint, "tasks.get_task", uid=uid)

    render.print_json(session.run(work, url=url, timeout=timeout), raw=False)


@task_app.command("list")
def list_tasks(
    endpoint: EndpointArg,
    state: Annotated[
        str | None, typer.Option("--state", help="QUEUED, RUNNING, DONE, FAILED or CANCELED.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 50,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Your most recent tasks on an endpoint, newest first."""

    async def work(client: AsyncOrbitClient) -> Any:
        args: dict[str, Any] = {"limit": limit} | ({"state": state.upper()} if state else {})
        return await client.call(endpoint, "tasks.list_tasks", **args)

    records = session.run(work, url=url, timeout=timeout)
    if json_out:
        render.print_json(records, raw=True)
    else:
        render.console.print(records_table(records, f"tasks on {endpoint}"))


@task_app.command("cancel")
def cancel(
    endpoint: EndpointArg,
    uids: Annotated[list[str] | None, typer.Argument(help="Task uids.", show_default=False)] = None,
    all_tasks: Annotated[bool, typer.Option("--all", help="Cancel all your tasks.")] = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Cancel queued or running tasks (running ones are killed)."""
    if bool(uids) == all_tasks:
        raise UsageError("give task uids or --all")

    async def work(client: AsyncOrbitClient) -> int:
        if all_tasks:
            return int((await client.call(endpoint, "tasks.cancel_all_tasks"))["cancelled"])
        results = [await client.call(endpoint, "tasks.cancel_task", uid=u) for u in uids or []]
        return sum(bool(r["cancelled"]) for r in results)

    render.success(f"{session.run(work, url=url, timeout=timeout)} task(s) cancelled")


def run(
    endpoint: EndpointArg,
    command: Annotated[list[str], typer.Argument(help="The command after [bold]--[/].")],
    env: Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE; repeatable.")] = None,
    cwd: Annotated[str | None, typer.Option("--cwd", help="Working directory.")] = None,
    task_timeout: Annotated[
        float | None, typer.Option("--task-timeout", help="Kill the task after S seconds.")
    ] = None,
    mpi: Annotated[
        int | None,
        typer.Option(
            "--mpi",
            metavar="RANKS",
            min=1,
            help="Run it as an MPI task with RANKS processes (the endpoint's mpi_launcher).",
        ),
    ] = None,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Run one command on an endpoint, print its output and exit with its exit code."""
    specs = build_specs(
        command,
        file=None,
        function=None,
        arg=[],
        count=1,
        env=env or [],
        cwd=cwd,
        task_timeout=task_timeout,
    )
    if mpi is not None:
        specs = [{**spec, "type": "mpi", "ranks": mpi} for spec in specs]

    async def work(client: AsyncOrbitClient) -> dict[str, Any]:
        [record] = await submit_and_follow(
            client, endpoint, specs, wait=True, wait_timeout=None, progress=False
        )
        return record

    record = session.run(work, url=url, timeout=timeout)
    sys.stdout.write(record.get("stdout") or "")
    sys.stderr.write(record.get("stderr") or "")
    if record["state"] != "DONE" and record.get("exit_code") is None:
        render.error(record["state"], record.get("error") or "the task did not finish")
    code = record.get("exit_code")
    raise typer.Exit(code if isinstance(code, int) and code >= 0 else 1)


def register(app: typer.Typer) -> None:
    """Add ``orbit task`` and ``orbit run`` (entry point group ``orbit.cli``)."""
    app.add_typer(task_app, name="task")
    app.command("run", epilog=EPILOG)(run)
