"""``orbit run`` and ``orbit task …`` as a user runs them, against a real endpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.testkit.cli import orbit as run_orbit

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit
TASKS = ["orbit_plugins.tasks.plugin:TasksPlugin"]


def cli_env(amqp_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORBIT_")}
    return env | {
        "ORBIT_URL": amqp_url,
        "ORBIT_PROFILE": str(tmp_path / "no-profile.json"),
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }


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
    assert code == 1 and "FAILED" in out and "cannot start" in out
