"""Every script in ``examples/`` runs as a user would run it (a subprocess, ``ORBIT_URL`` in its
environment) against real endpoint processes on the private node; Globus and IRI against
the local fakes of their HTTP APIs. ``pytest -k example`` selects them."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.globus_api import FakeTransfer
from tests.fakes.iri_api import FakeIri
from tests.testkit.cli import orbit

from .conftest import StartEndpoint
from .endpoints import ROOT

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]
EXAMPLES = ROOT / "examples"
TASKS = {"tasks": {"allow_cloudpickle": True}}


async def run_example(
    script: str, *args: str, url: str, env: dict[str, str] | None = None, timeout: float = 120
) -> str:
    """``python examples/<script> args…``; its stdout (the test fails on a non-zero exit)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / script),
        *args,
        env={**os.environ, "ORBIT_URL": url, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{out.decode()}{err.decode()}"
    return out.decode()


async def test_example_sysinfo(start_endpoint: StartEndpoint, amqp_url: str) -> None:
    await start_endpoint("ex-sys", plugins=["sysinfo"])
    out = await run_example("sysinfo.py", "ex-sys", url=amqp_url)
    assert out.startswith("ex-sys runs on ") and "logical cores" in out and "GiB free" in out


async def test_example_jobs_with_live_output(start_endpoint: StartEndpoint, amqp_url: str) -> None:
    await start_endpoint("ex-jobs", plugins=["psij"])
    out = await run_example("jobs.py", "ex-jobs", url=amqp_url)
    lines = out.splitlines()
    assert lines[0].startswith("submitted ") and lines[0].endswith(" to local on ex-jobs")
    assert [line.split(" from ")[0] for line in lines[1:4]] == ["line 1", "line 2", "line 3"]
    assert lines[4].endswith("ended FAILED with exit code 3")


async def test_example_tasks_and_executor(start_endpoint: StartEndpoint, amqp_url: str) -> None:
    await start_endpoint("ex-tasks", plugins=["tasks"], plugin_settings=TASKS)
    out = await run_example("tasks.py", "ex-tasks", url=amqp_url)
    assert "factorial(20) = 2432902008176640000" in out
    assert "squares: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]" in out and "sum of roots: 661.463" in out
    assert ": DONE exit 0 stdout='Linux" in out
    assert ": FAILED exit 2 stdout='' stderr='to stderr\\n'" in out


async def test_example_pool_spreads_tasks(start_endpoint: StartEndpoint, amqp_url: str) -> None:
    assert (await orbit(None, "pool", "create", "ex-pool", "--url", amqp_url)).rc == 0
    for name in ("ex-m1", "ex-m2"):
        await start_endpoint(name, plugins=["tasks"], pools=["ex-pool"], plugin_settings=TASKS)
    out = await run_example("pool.py", "ex-pool", "--count", "60", url=amqp_url)
    assert out.startswith("60 tasks through pool 'ex-pool', served by ")
    members = [line for line in out.splitlines()[1:] if line.strip()]
    assert 1 <= len(members) <= 2 and sum(int(m.rsplit(": ", 1)[1]) for m in members) == 60


async def test_example_staging_round_trip(
    start_endpoint: StartEndpoint, amqp_url: str, tmp_path: Path
) -> None:
    await start_endpoint("ex-st", plugins=["staging"])
    remote = tmp_path / "remote"
    out = await run_example(
        "staging.py", "ex-st", "--remote-dir", str(remote), "--size", "3000000", url=amqp_url
    )
    assert f"uploaded {remote}/data.bin: 3,000,000 bytes" in out
    assert "downloaded again: 3,000,000 bytes, identical: True" in out
    assert list(remote.iterdir()) == []  # the script removes its file again


async def test_example_events(start_endpoint: StartEndpoint, amqp_url: str) -> None:
    await start_endpoint(
        "ex-ev",
        plugins=["sysinfo", "tasks"],
        plugin_settings={"sysinfo": {"prefetch_interval": 0.5}},
    )
    out = await run_example("events.py", "ex-ev", "--count", "4", url=amqp_url)
    routes = [line.split()[1] for line in out.splitlines()]
    assert len(routes) == 4 and "ex-ev.sysinfo.metrics" in routes
    assert any(r.startswith("ex-ev.tasks.task_status") for r in routes)


async def test_example_raw_pika(start_endpoint: StartEndpoint, amqp_url: str) -> None:
    await start_endpoint("ex-raw", plugins=["sysinfo"], heartbeat=2)
    out = await run_example("raw_pika.py", amqp_url, "ex-raw", url=amqp_url)
    assert "orbit.ping -> {'pong': True, 'endpoint': 'ex-raw'" in out
    assert "plugins: orbit, sysinfo" in out
    assert "error reply: UNKNOWN_METHOD" in out and "ex-raw is online on " in out


@pytest.fixture
def globus_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTransfer]:
    with FakeTransfer("tok-" + secrets.token_hex(8), duration=1.0) as fake:
        monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", fake.url)  # the endpoint inherits it
        yield fake


async def test_example_globus_against_the_fake(
    start_endpoint: StartEndpoint, amqp_url: str, globus_fake: FakeTransfer
) -> None:
    local, remote = "11111111-2222-3333-4444-555555555555", "99999999-8888-7777-6666-555555555555"
    settings = {
        "transfer_base_url": globus_fake.url,
        "poll_interval": 0.3,
        "local_collection": local,
    }
    await start_endpoint("ex-gl", plugins=["globus"], plugin_settings={"globus": settings})
    out = await run_example(
        "globus.py",
        "ex-gl",
        remote,
        "/~/in/",
        "/data/in/",
        url=amqp_url,
        env={"GLOBUS_ACCESS_TOKEN": globus_fake.token},
    )
    assert "2 entries in local:" in out and "  SUCCEEDED: 1 file(s), 1,000 bytes" in out
    assert out.rstrip().endswith("ended SUCCEEDED")
    _, _, body = [r for r in globus_fake.requests if r[1] == "/v0.10/transfer"][-1]
    assert (body["source_endpoint"], body["destination_endpoint"]) == (local, remote)


async def test_example_iri_against_the_fake(
    start_endpoint: StartEndpoint, amqp_url: str, tmp_path: Path
) -> None:
    token = "iri-" + secrets.token_hex(8)
    with FakeIri(token, queued_for=0.5, active_for=0.5) as fake:
        config = tmp_path / "facilities.toml"
        config.write_text(f'[facilities.nersc]\nlabel = "NERSC"\nurl = "{fake.url}"\n')
        settings = {"iri_connect": {"config": str(config)}, "iri": {"poll_interval": 0.2}}
        await start_endpoint("ex-iri", plugins=["iri_connect", "iri"], plugin_settings=settings)
        out = await run_example(
            "iri.py", "ex-iri", "nersc", "perlmutter-cpu", url=amqp_url, env={"IRI_TOKEN": token}
        )
    assert f"connected to NERSC ({fake.url})" in out and "resource perlmutter-cpu: " in out
    assert out.rstrip().endswith("ended completed")
