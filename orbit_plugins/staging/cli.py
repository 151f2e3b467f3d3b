"""``orbit stage put|get|ls|mkdir|rm EP …``: files to and from an endpoint via ``staging``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from orbit_cli.kit import CliError, EndpointArg, JsonOpt, TimeoutOpt, UrlOpt, render, session

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient

T = TypeVar("T")
stage_app = typer.Typer(
    help="Move files to and from an endpoint through the broker (chunked, resumable, checked).",
    rich_markup_mode="rich",
    no_args_is_help=True,
    epilog="""\
[bold]Examples[/]

  [cyan]orbit stage put demo data.bin ~/in/[/]             upload (resumes if interrupted)
  [cyan]orbit stage get demo ~/out/result.h5 .[/]           download into the current directory
  [cyan]orbit stage ls demo ~/in[/]                         list a directory
  [cyan]orbit stage put demo x.bin /tmp/x.bin --overwrite[/] replace an existing file

Remote paths are absolute or ~/… and must lie inside the endpoint's staging roots
(default: its $HOME and temp dir). Run the same command again to resume.""",
)

OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace the target if it exists.")]
ParallelOpt = Annotated[
    int, typer.Option("--parallel", "-P", min=1, max=32, help="Chunks in flight.")
]
ChunkOpt = Annotated[
    float, typer.Option("--chunk-mib", min=0.0625, max=2.0, help="Chunk size in MiB.")
]
FreshOpt = Annotated[bool, typer.Option("--no-resume", help="Start afresh instead of resuming.")]


@contextmanager
def progress_bar(label: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A rich bar (bytes, rate, ETA) on stderr; yields the ``progress(done, total)`` callback."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=render.err_console,
        disable=quiet,
    )
    task = bar.add_task(label, total=None)
    started = False

    def update(done: int, total: int) -> None:
        nonlocal started
        if not started:  # shown once the transfer runs; resumed bytes are not in the rate
            bar.start()
            bar.reset(task, completed=done, total=total)
            started = True
        else:
            bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if started:
            bar.stop()


def run(
    work: Callable[[AsyncOrbitClient], Awaitable[T]], url: str | None, timeout: float | None
) -> T:
    """``session.run`` with a staging-specific hint for path-policy refusals."""
    from orbit_protocol import NotAuthorized

    try:
        return session.run(work, url=url, timeout=timeout)
    except NotAuthorized as exc:
        roots = exc.details.get("roots")
        if roots is None and "'..'" not in exc.message:
            raise
        hint = f"allowed roots on this endpoint: {', '.join(roots)}" if roots else None
        raise CliError(exc.message, code="NOT_AUTHORIZED", hint=hint, exit_code=2) from None


def _report(verb: str, result: dict[str, Any], seconds: float, json_out: bool) -> None:
    if json_out:
        render.print_json(result | {"seconds": round(seconds, 3)}, raw=True)
        return
    moved = result["size"] - result["resumed"]
    rate = render.human_bytes(moved / seconds if seconds > 0 else 0)
    resumed = f", resumed at {render.human_bytes(result['resumed'])}" if result["resumed"] else ""
    render.success(
        f"{verb} {result['path']} ({render.human_bytes(result['size'])}, {rate}/s{resumed});"
        f" sha256 {result['sha256'][:16]}…"
    )


@dataclass(frozen=True)
class _Options:
    overwrite: bool
    parallel: int
    chunk_mib: float
    resume: bool
    json_out: bool


def _move(
    transfer: Callable[..., Awaitable[dict[str, Any]]],
    endpoint: str,
    source: Any,
    target: Any,
    label: str,
    verb: str,
    o: _Options,
    url: str | None,
    timeout: float | None,
) -> None:
    """Run an upload or download with a progress bar, then report it."""

    async def work(client: AsyncOrbitClient) -> dict[str, Any]:
        with progress_bar(label, o.json_out) as progress:
            return await transfer(
                client,
                endpoint,
                source,
                target,
                overwrite=o.overwrite,
                progress=progress,
                chunk_size=int(o.chunk_mib * 1024 * 1024),
                parallel=o.parallel,
                resume=o.resume,
            )

    started = time.perf_counter()
    result = run(work, url, timeout)
    _report(verb, result, time.perf_counter() - started, o.json_out)


@stage_app.command("put")
def put(
    endpoint: EndpointArg,
    local: Annotated[Path, typer.Argument(help="Local file.", exists=True, dir_okay=False)],
    remote: Annotated[str, typer.Argument(help="Remote path; ending in / keeps the name.")],
    overwrite: OverwriteOpt = False,
    parallel: ParallelOpt = 8,
    chunk_mib: ChunkOpt = 1.0,
    no_resume: FreshOpt = False,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Upload a file; an interrupted upload of the same file continues where it stopped."""
    from orbit_plugins.staging.client import upload

    target = remote + local.name if remote.endswith("/") else remote
    options = _Options(overwrite, parallel, chunk_mib, not no_resume, json_out)
    _move(upload, endpoint, local, target, local.name, f"uploaded {local} →", options, url, timeout)


@stage_app.command("get")
def get(
    endpoint: EndpointArg,
    remote: Annotated[str, typer.Argument(help="Remote file (absolute or ~/…).")],
    local: Annotated[
        Path, typer.Argument(help="Local file or existing directory (default: .).")
    ] = Path("."),
    overwrite: OverwriteOpt = False,
    parallel: ParallelOpt = 8,
    chunk_mib: ChunkOpt = 1.0,
    no_resume: FreshOpt = False,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Download a file; an interrupted download of the same file continues where it stopped."""
    from orbit_plugins.staging.client import download

    target = local / Path(remote).name if local.is_dir() else local
    options = _Options(overwrite, parallel, chunk_mib, not no_resume, json_out)
    _move(
        download,
        endpoint,
        remote,
        target,
        target.name,
        f"downloaded {remote} →",
        options,
        url,
        timeout,
    )


@stage_app.command("ls")
def ls(
    endpoint: EndpointArg,
    path: Annotated[str, typer.Argument(help="Remote directory.")] = "~",
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """List a remote directory."""
    from rich.table import Table

    async def work(client: AsyncOrbitClient) -> Any:
        return await client.call(endpoint, "staging.list", path=path)

    listing = run(work, url, timeout)
    if json_out:
        render.print_json(listing, raw=True)
        return
    table = Table(title=f"[bold]{endpoint}:{listing['path']}[/]", title_justify="left")
    table.add_column("name")
    table.add_column("type")
    table.add_column("size", justify="right")
    table.add_column("modified")
    for e in listing["entries"]:
        name = f"[bold blue]{e['name']}/[/]" if e["type"] == "dir" else e["name"]
        size = render.human_bytes(e["size"]) if e["type"] == "file" else ""
        modified = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["mtime"]))
        table.add_row(name, e["type"], size, modified)
    render.console.print(table)


@stage_app.command("mkdir")
def mkdir(
    endpoint: EndpointArg,
    path: Annotated[str, typer.Argument(help="Remote directory to create (with parents).")],
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Create a remote directory."""

    async def work(client: AsyncOrbitClient) -> Any:
        return await client.call(endpoint, "staging.mkdir", path=path)

    render.success(f"created {run(work, url, timeout)['path']}")


@stage_app.command("rm")
def rm(
    endpoint: EndpointArg,
    path: Annotated[str, typer.Argument(help="Remote file or directory.")],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Remove a directory tree.")
    ] = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Remove a remote file, symlink or directory."""

    async def work(client: AsyncOrbitClient) -> Any:
        return await client.call(endpoint, "staging.remove", path=path, recursive=recursive)

    render.success(f"removed {run(work, url, timeout)['path']}")


def register(app: typer.Typer) -> None:
    """Add ``orbit stage`` (entry point group ``orbit.cli``)."""
    app.add_typer(stage_app, name="stage")


__all__ = ["register", "stage_app"]
