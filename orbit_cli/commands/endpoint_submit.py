"""``orbit endpoint submit``: start a child endpoint inside a batch job through a parent's psij."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer

from .. import render, session
from ..errors import CliError
from ..options import EndpointArg, JsonOpt, NameOpt, TimeoutOpt, UrlOpt

SUBMIT_EPILOG = """\
[bold]Examples[/]

  [cyan]orbit endpoint submit perlmutter --name pm-job1 --nodes 2 --time 30:00 -q debug -A m1234[/]
  [cyan]orbit endpoint submit odo --name odo-job1 --tunnel reverse --plugins sysinfo,psij[/]
  [cyan]orbit endpoint submit aurora --name a1 --setup 'module load frameworks'[/]

The parent endpoint EP (its psij plugin) submits a batch job that runs the child endpoint NAME.
NAME must be provisioned (orbit broker provision --endpoint NAME) and its URL stored on the
parent's host in ~/.config/orbit/children/NAME.url (mode 0600). [bold]--tunnel forward[/]: the
child opens ssh -L through the login node; [bold]reverse[/]: the parent opens ssh -R to the
compute node. Waits until the child answers, then prints its host and allocation."""


def submit(
    endpoint: EndpointArg,
    name: NameOpt,
    nodes: Annotated[int, typer.Option("--nodes", "-N", min=1, help="Node count.")] = 1,
    duration: Annotated[
        str, typer.Option("--time", help="Wall time: seconds, MM:SS or HH:MM:SS.")
    ] = "30:00",
    tunnel: Annotated[
        str, typer.Option("--tunnel", help="none, forward (ssh -L) or reverse (ssh -R).")
    ] = "none",
    plugins: Annotated[
        str, typer.Option("--plugins", "-p", help="The child's plugins, comma-separated.")
    ] = "sysinfo",
    executor: Annotated[
        str, typer.Option("--executor", "-e", help="slurm, pbs, lsf or local.")
    ] = "slurm",
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Queue/partition.")] = None,
    account: Annotated[str | None, typer.Option("--account", "-A", help="Account.")] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="Another user who may call the child (repeatable)."),
    ] = None,
    setup: Annotated[
        str | None,
        typer.Option(
            "--setup",
            help="Shell lines run in the job before the child starts, e.g. 'module load"
            " python; source ~/orbit-venv/bin/activate' (default: the parent's"
            " children.setup).",
        ),
    ] = None,
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to wait for the child (0: return).")
    ] = 600.0,
    json_out: JsonOpt = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
) -> None:
    """Start endpoint NAME inside a batch job through endpoint EP; wait until it is online."""
    from ..parsing import parse_duration

    spec = {
        "resources": {"node_count": nodes},
        "attributes": {
            "duration": parse_duration(duration),
            "queue_name": queue,
            "account": account,
        },
    }
    args = {
        "spec": spec,
        "name": name,
        "plugins": [p.strip() for p in plugins.split(",") if p.strip()],
        "tunnel": tunnel,
        "executor": executor,
        "allowed_users": allow or [],
        "setup": setup,
    }

    async def work(client: Any) -> dict[str, Any]:
        info: dict[str, Any] = await client.call(endpoint, "psij.submit_endpoint", **args)
        native = f" ({executor} job {info['native_id']})" if info.get("native_id") else ""
        render.err_console.print(
            f"[dim]job {info['job_id']}{native} submitted to {endpoint};"
            f" child {name}, tunnel {tunnel}[/]"
        )
        if wait <= 0:
            return {"job": info}
        with render.err_console.status(f"waiting for {name} to come online …"):
            about = await _wait_child(client, endpoint, info["job_id"], name, wait)
        return {"job": info, "child": about}

    result = session.run(work, url=url, timeout=timeout)
    if json_out:
        render.print_json(result, raw=True)
        return
    about = result.get("child")
    if about is None:
        render.console.print(result["job"]["job_id"], markup=False)
        return
    alloc = about.get("allocation") or {}
    where = (
        f"{alloc.get('job_id')} on {','.join(alloc.get('nodelist') or [])}"
        if alloc
        else "none (not in a batch job)"
    )
    for line in (
        f"endpoint {name} online on {about['host']} (tunnel {about['tunnel']})",
        f"allocation {where}",
        f"broker via {about['broker']}",
    ):
        render.console.print(line, markup=False, soft_wrap=True)
    job_id = result["job"]["job_id"]
    render.info(f"try: orbit call {name} orbit.ping · stop: orbit job cancel {endpoint} {job_id}")


async def _wait_child(
    client: Any, parent: str, job_id: str, name: str, wait: float
) -> dict[str, Any]:
    """Ping the child until it answers; fail when its job ends or ``wait`` passes."""
    from orbit_protocol import OrbitError

    deadline = time.monotonic() + wait
    while True:
        try:
            await client.call(name, "orbit.ping", timeout=5)
            about: dict[str, Any] = await client.call(name, "child.info", timeout=10)
            return about
        except OrbitError:
            pass
        status = await client.call(parent, "psij.get_job_status", job_id=job_id, max_bytes=4096)
        if status["state"] in ("COMPLETED", "FAILED", "CANCELED"):
            why = status.get("message") or (status.get("stderr") or "").strip()[-500:]
            raise CliError(
                f"the job of {name} ended {status['state']} before the child came online:"
                f" {why or 'no message'}",
                code="ENDPOINT_OFFLINE",
            )
        if time.monotonic() > deadline:
            raise CliError(
                f"{name} not online after {wait:.0f} s (job {job_id} is {status['state']})",
                code="ENDPOINT_OFFLINE",
                hint=f"orbit job status {parent} {job_id}",
            )
        await asyncio.sleep(1.0)


__all__ = ["SUBMIT_EPILOG", "submit"]
