"""Job events are visible to every user allowed on the endpoint (they are the endpoint's
events), not to others; a job's status and output calls stay with its owner."""

from __future__ import annotations

import secrets
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from orbit_broker.provision import ClientSpec, EndpointSpec, Provisioner, ProvisionSpec
from orbit_client import AsyncJobs, AsyncOrbitClient, NotFound, job_spec

from .endpoints import EndpointProcess
from .test_isolation import BROKER_REFUSALS

pytestmark = [
    pytest.mark.rabbit,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]


async def test_job_events_reach_every_allowed_user_only(
    broker: Any, vhost: str, tmp_path: Path
) -> None:
    tag = secrets.token_hex(2)
    ep, alice, bob, carol = f"hpc-{tag}", f"alice-{tag}", f"bob-{tag}", f"carol-{tag}"
    result = await Provisioner(broker.management, broker.amqp_url(), vhost).provision(
        ProvisionSpec(
            endpoints=[EndpointSpec(ep)],
            clients=[ClientSpec(alice, [ep]), ClientSpec(bob, [ep]), ClientSpec(carol, [])],
            responder_user=f"responder-{tag}",
        )
    )
    url = {n: c.url(broker.amqp_url(), vhost) for n, c in result.credentials.items()}
    proc = EndpointProcess(
        ep,
        url[ep],
        tmp_path / ep,
        plugins=["orbit_plugins.psij.plugin:PsijPlugin"],
        allowed_users=[alice, bob],
        plugin_settings={"psij": {"poll_interval": 0.1}},
    )
    await proc.start()
    try:
        async with (
            AsyncOrbitClient(url=url[alice], timeout=30) as a,
            AsyncOrbitClient(url=url[bob], timeout=30) as b,
            AsyncOrbitClient(url=url[carol], timeout=30) as c,
        ):
            watching = await b.subscribe(ep, "psij", "job_status")
            with pytest.raises(BROKER_REFUSALS):
                await c.subscribe(ep, "psij", "job_status")
            job = await AsyncJobs(a, ep).submit(job_spec("bash", "-c", "echo secret; exit 2"))
            assert (await job.wait(poll=1.0)).exit_code == 2
            seen: dict[str, Any] = {}
            while seen.get("state") not in ("COMPLETED", "FAILED"):
                event = await watching.get(timeout=30)
                if event.data["job_id"] == job.job_id:
                    seen = event.data
            assert (seen["user"], seen["state"], seen["exit_code"]) == (alice, "FAILED", 2)
            with pytest.raises(NotFound):  # events are shared; the job's output is not
                await AsyncJobs(b, ep).status(job.job_id, max_bytes=100)
            await watching.close()
    finally:
        await proc.stop()
        for name in result.credentials:
            broker.management.delete_user(name)
