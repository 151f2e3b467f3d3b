"""``orbit job submit|status|list|cancel|logs``: jobs through an endpoint's ``psij`` plugin."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.markup import escape

from orbit_cli.kit import (
    EndpointArg,
    JsonOpt,
    TimeoutOpt,
    UrlOpt,
    UsageError,
    key_values,
    parse_duration,
    render,
    session,
)

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient

    from .client import JobHandle, JobInfo
    from .schema import JobSpec

EPILOG = """\
[bold]Examples[/]

  [cyan]orbit job submit demo -- bash -c 'for i in 1 2 3; do echo $i; sleep 1; done'[/]
  [cyan]orbit job submit hpc -e slurm -q debug -A m1234 -N 2 --time 10:00 -- ./run.sh[/]
  [cyan]orbit job submit demo --detach -- sleep 600[/]       print the job id and return
  [cyan]orbit job list demo[/]
  [cyan]orbit job logs demo JOB_ID --follow[/]
  [cyan]orbit job cancel demo JOB_ID[/]"""

job_app = typer.Typer(
    help="Run and manage jobs through an endpoint's psij plugin.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    epilog=EPILOG,
)

JobIdArg = Annotated[str, typer.Argument(help="Job id (as printed by submit/list).")]


def build_spec(
    command: list[str],
    *,
    directory: str | None,
    env: list[str],
    queue: str | None,
    account: str | None,
    nodes: int | None,
    duration: str | None,
) -> JobSpec:
    from .schema import Attributes, JobSpec, Resources

    if not command:
        raise UsageError("no command given: orbit job submit EP -- COMMAND [ARGS...]")
    environment = key_values(env, "--env {item!r}: use KEY=VALUE")
    from pydantic import ValidationError

    try:
        return JobSpec(
            executable=command[0],
            arguments=command[1:],
            directory=directory,
            environment=environment,
            resources=Resources(node_count=nodes),
            attributes=Attributes(
                queue_name=queue,
                account=account,
                duration=parse_duration(duration) if duration else None,
            ),
        )
    except ValidationError as exc:
        flags = {"node_count": "--nodes", "duration": "--time", "executable": "COMMAND"}
        problems = [
            f"{flags.get(str(e['loc'][-1]), e['loc'][-1])}: {e['msg']}" for e in exc.errors()
        ]
        raise UsageError("; ".join(problems)) from None


def exit_code_of(state: str, exit_code: int | None) -> int:
    """The shell exit code mirroring a finished job."""
    if exit_code is not None:
        return exit_code
    return 0 if state == "COMPLETED" else 130 if state == "CANCELED" else 1


async def follow(job: JobHandle) -> None:
    """Copy the job's output to our stdout/stderr as it arrives."""
    async for chunk in job.stream(poll=2.0):
        out = sys.stdout if chunk.stream == "stdout" else sys.stderr
        out.write(chunk.data)
        out.flush()


@job_app.command("submit", epilog=EPILOG)
def submit(
    endpoint: EndpointArg,
    command: Annotated[
        list[str] | None, typer.Argument(help="The command after [bold]--[/].", show_default=False)
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", "-e", help="local, slurm, pbs, lsf, cobalt or flux.")
    ] = "local",
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Queue/partition.")] = None,
    account: Annotated[str | None, typer.Option("--account", "-A", help="Account.")] = None,
    nodes: Annotated[int | None, typer.Option("--nodes", "-N", help="Node count.")] = None,
    duration: Annotated[
        str | None, typer.Option("--time", help="Wall time: seconds, MM:SS or HH:MM:SS.")
    ] = None,
    directory: Annotated[
        str | None, typer.Option("--dir", "-d", help="Working directory on the endpoint.")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="KEY=VALUE for the job; repeatable.")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Print the job id and return at once.")
    ] = False,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Submit a job, stream its output live and exit with its exit code."""
    spec = build_spec(
        command or [],
        directory=directory,
        env=env or [],
        queue=queue,
        account=account,
        nodes=nodes,
        duration=duration,
    )

    async def work(client: AsyncOrbitClient) -> tuple[str, str, int | None]:
        from .client import AsyncJobs

        job = await AsyncJobs(client, endpoint).submit(spec, executor)
        if detach:
            assert job.info is not None
            return job.job_id, job.info.state, None
        render.err_console.print(f"[dim]job {job.job_id} submitted to {endpoint}[/]")
        await follow(job)
        assert job.final is not None
        return job.job_id, job.final.state, job.final.exit_code

    job_id, state, code = session.run(work, url=url, timeout=timeout)
    if detach:
        if json_out:
            render.print_json({"job_id": job_id, "state": state}, raw=True)
        else:
            render.console.print(job_id, markup=False)
        return
    render.err_console.print(f"[dim]job {job_id} {state} (exit code {code})[/]")
    raise typer.Exit(exit_code_of(state, code))


@job_app.command("status")
def status(
    endpoint: EndpointArg,
    job_id: JobIdArg,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Show one job: state, exit code, native id, command, output sizes."""

    async def work(client: AsyncOrbitClient) -> Any:
        from .client import AsyncJobs

        return await AsyncJobs(client, endpoint).status(job_id)

    st = session.run(work, url=url, timeout=timeout)
    if json_out:
        render.print_json(st.model_dump(mode="json", exclude={"stdout", "stderr"}), raw=True)
        return
    from rich.table import Table

    table = Table(show_header=False, box=None, title=f"[bold]job {st.job_id}[/]")
    rows = {
        "state": _state(st.state),
        "exit code": "–" if st.exit_code is None else str(st.exit_code),
        "executor": st.executor,
        "native id": st.native_id or "–",
        "user": st.user,
        "command": escape(" ".join([st.executable, *st.arguments])),
        "submitted": render.clock(st.submitted_at),
        "output": f"stdout {render.human_bytes(st.stdout_size)}, "
        f"stderr {render.human_bytes(st.stderr_size)}",
    }
    rows.update(_batch_rows(st))
    rows["ran for" if st.done else "since submission"] = _ran(st)
    if st.message:
        rows["message"] = escape(st.message)
    for key, value in rows.items():
        table.add_row(f"[dim]{key}[/]", value)
    render.console.print(table)


def _batch_rows(job: JobInfo) -> dict[str, str]:
    """Where and how big the job was asked to run, for the fields it has."""
    rows = {
        "queue": job.queue_name,
        "account": job.account,
        "nodes": None if job.node_count is None else str(job.node_count),
        "wall time": None if job.duration is None else render.human_duration(job.duration),
        "directory": job.directory,
    }
    return {key: escape(value) for key, value in rows.items() if value}


def _exit(job: JobInfo) -> str:
    """`` 3`` after the state of a job that ended with exit code 3; nothing otherwise."""
    return "" if job.exit_code is None else f" {job.exit_code}"


def _ran(job: JobInfo) -> str:
    """How long since submission: until it ended, or until now."""
    end = job.finished_at if job.finished_at is not None else time.time()
    return render.human_duration(max(0.0, end - job.submitted_at))


@job_app.command("list")
def list_jobs(
    endpoint: EndpointArg,
    all_users: Annotated[
        bool, typer.Option("--all-users", help="Every user's jobs (endpoint admins only).")
    ] = False,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """List your jobs on an endpoint."""

    async def work(client: AsyncOrbitClient) -> list[JobInfo]:
        from .client import AsyncJobs

        return await AsyncJobs(client, endpoint).list(all_users=all_users)

    jobs = session.run(work, url=url, timeout=timeout)
    if json_out:
        render.print_json([j.model_dump(mode="json") for j in jobs], raw=True)
        return
    from rich.table import Table

    table = Table(
        header_style="bold",
        title=f"[bold]Jobs on {endpoint}[/]",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    rows = [
        [
            j.job_id,
            j.state + _exit(j),
            j.executor,
            j.native_id or "–",
            "/".join(x for x in (j.queue_name, j.account) if x) or "–",
            "–" if j.node_count is None else str(j.node_count),
            time.strftime("%H:%M:%S", time.localtime(j.submitted_at)),
        ]
        for j in jobs
    ]
    headers = (
        "job id",
        "state exit",
        "executor",
        "native id",
        "queue/account",
        "nodes",
        "submitted",
    )
    for i, column in enumerate(headers):  # these keep their width; the command gets the rest
        width = max([len(column), *(len(row[i]) for row in rows)])
        table.add_column(column, no_wrap=True, min_width=width)
    table.add_column("command", no_wrap=True, overflow="ellipsis")
    for j, row in zip(jobs, rows, strict=True):
        cells = [escape(cell) for cell in row]
        cells[1] = _state(j.state) + _exit(j)  # the plain text measured the width
        table.add_row(*cells, escape(" ".join([j.executable, *j.arguments])))
    render.console.print(table)


@job_app.command("cancel")
def cancel(
    endpoint: EndpointArg,
    job_id: JobIdArg,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Cancel a job (a finished job is left as it is)."""

    async def work(client: AsyncOrbitClient) -> Any:
        from .client import AsyncJobs

        return await AsyncJobs(client, endpoint).cancel(job_id)

    result = session.run(work, url=url, timeout=timeout)
    if json_out:
        render.print_json(result.model_dump(mode="json"), raw=True)
    else:
        render.console.print(f"job {result.job_id}: {_state(result.state)}")


@job_app.command("logs")
def logs(
    endpoint: EndpointArg,
    job_id: JobIdArg,
    follow_output: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming until the job ends.")
    ] = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Print a job's stdout (and stderr, to stderr); --follow streams until it ends."""

    async def work(client: AsyncOrbitClient) -> None:
        from .client import AsyncJobs

        jobs = AsyncJobs(client, endpoint)
        job = jobs.handle(job_id)
        if follow_output:
            await follow(job)
            return
        offsets = {"stdout": 0, "stderr": 0}
        while True:
            st = await jobs.status(job_id, offsets["stdout"], offsets["stderr"], 512 * 1024)
            sys.stdout.write(st.stdout)
            sys.stderr.write(st.stderr)
            if (st.stdout_offset, st.stderr_offset) == (offsets["stdout"], offsets["stderr"]):
                break
            offsets = {"stdout": st.stdout_offset, "stderr": st.stderr_offset}
        sys.stdout.flush()

    session.run(work, url=url, timeout=timeout)


def _state(state: str) -> str:
    color = {"COMPLETED": "green", "FAILED": "red", "CANCELED": "yellow"}.get(state, "cyan")
    return f"[{color}]{state}[/]"


def register(app: typer.Typer) -> None:
    """Add ``orbit job`` (entry point group ``orbit.cli``)."""
    app.add_typer(job_app, name="job")
