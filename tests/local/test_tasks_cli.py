"""``orbit run`` and ``orbit task …`` in-process against an endpoint on the memory broker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.local.conftest import StartEndpoint
from tests.testkit.local import local_env
from tests.testkit.local import orbit_inprocess as run_orbit

TASKS = ["orbit_plugins.tasks.plugin:TasksPlugin"]


def cli_env(amqp_url: str, tmp_path: Path) -> dict[str, str | None]:
    return local_env(amqp_url, tmp_path)


async def orbit(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    ran = await run_orbit(env, *args)
    return ran.rc, ran.stdout, ran.stderr


async def test_run_submit_list_cancel(
    start_endpoint: StartEndpoint, amqp_url: str, tmp_path: Path
) -> None:
    await start_endpoint("ep1", plugins=TASKS)
    env = cli_env(amqp_url, tmp_path)
    code, out, err = await orbit(
        env, "run", "ep1", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3"
    )
    assert (code, out, err) == (3, "hi\n", "oops\n")

    code, out, _ = await orbit(env, "task", "submit", "ep1", "-n", "5", "--json", "--", "echo", "x")
    records = json.loads(out)
    assert code == 0 and [r["state"] for r in records] == ["DONE"] * 5
    assert {r["stdout"] for r in records} == {"x\n"}

    code, out, _ = await orbit(
        env, "task", "submit", "ep1", "--function", "math:factorial", "--arg", "5"
    )
    assert code == 0 and "120" in out and "DONE" in out

    code, out, _ = await orbit(env, "task", "submit", "ep1", "--detach", "--", "sleep", "30")
    [uid] = out.split()
    assert code == 0 and uid.startswith("task.")
    code, out, err = await orbit(env, "task", "cancel", "ep1", "--all")
    assert code == 0 and "1 task(s) cancelled" in out + err
    code, out, _ = await orbit(env, "task", "wait", "ep1", uid, "--json")
    assert code == 1 and json.loads(out)[0]["state"] == "CANCELED"
    code, out, _ = await orbit(env, "task", "list", "ep1", "--state", "DONE", "--json")
    assert code == 0 and len(json.loads(out)) == 6

    code, out, _ = await orbit(env, "task", "submit", "ep1", "--", "/no/such/program")
    assert code == 1 and "FAILED" in out  # the table (its width is the console's)
    code, out, _ = await orbit(env, "task", "submit", "ep1", "--json", "--", "/no/such/program")
    [failed] = json.loads(out)
    assert code == 1 and failed["state"] == "FAILED" and "cannot start" in failed["error"]


@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="needs an MPI launcher (openmpi-bin)")
async def test_run_mpi_ranks(start_endpoint: StartEndpoint, amqp_url: str, tmp_path: Path) -> None:
    launcher = ["mpiexec", "--allow-run-as-root", "--oversubscribe", "-n", "{ranks}"]
    settings = {"tasks": {"mpi_launcher": launcher}}
    await start_endpoint("ep-mpi", plugins=TASKS, plugin_settings=settings)
    env = cli_env(amqp_url, tmp_path)
    report = "echo rank $OMPI_COMM_WORLD_RANK"
    code, out, err = await orbit(env, "run", "ep-mpi", "--mpi", "2", "--", "sh", "-c", report)
    assert code == 0, err
    assert sorted(out.splitlines()) == ["rank 0", "rank 1"]
