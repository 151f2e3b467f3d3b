"""``orbit_plugins.psij.client``: the async JobHandle and its blocking twin against real PSI/J
local jobs through a real endpoint and broker."""

from __future__ import annotations

import asyncio
import contextlib
from importlib.util import find_spec

import pytest

from orbit_client import AsyncJobs, AsyncOrbitClient, Jobs, NotFound, OrbitClient, job_spec
from orbit_plugins.psij.client import OutputChunk

from .conftest import StartEndpoint

pytestmark = [
    pytest.mark.rabbit,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]

PSIJ = ["orbit_plugins.psij.plugin:PsijPlugin"]
FAST = {"psij": {"poll_interval": 0.1, "chunk_bytes": 4096}}


def joined(chunks: list[OutputChunk], stream: str) -> str:
    """The stream's text; also checks the chunks are contiguous and start at 0."""
    pos = 0
    text = ""
    for c in chunks:
        if c.stream == stream:
            assert c.offset == pos, f"gap or overlap at {pos}: {c.offset}"
            pos = c.end
            text += c.data
    return text


async def test_async_handle_stream_wait_status_cancel(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start_endpoint("jc1", plugins=PSIJ, plugin_settings=FAST)
    jobs = AsyncJobs(client, "jc1")
    # ~60 KB over several 4 KiB events, interleaved with stderr, then exit 5
    script = "for i in $(seq 1 3000); do echo line$i; [ $((i % 500)) = 0 ] && echo e$i >&2; done; "
    job = await jobs.submit(job_spec("bash", "-c", script + "exit 5"))
    assert job.info is not None and job.info.executable == "bash"
    chunks = [c async for c in job.stream(poll=1.0)]
    expected = "".join(f"line{i}\n" for i in range(1, 3001))
    assert joined(chunks, "stdout") == expected
    assert joined(chunks, "stderr") == "".join(f"e{i}\n" for i in range(500, 3001, 500))
    assert job.final is not None and (job.final.state, job.final.exit_code) == ("FAILED", 5)
    assert (await job.wait()).exit_code == 5  # again, after the end: at once
    st = await job.status()
    assert (st.state, st.stdout_size) == ("FAILED", sum(len(f"line{i}\n") for i in range(1, 3001)))

    # a late handle: wait() learns the end without output, then stream() still gets it all
    late = jobs.handle(job.job_id)
    assert (await late.wait()).stdout == "" and late.final is not None
    assert joined([c async for c in late.stream(poll=1.0)], "stdout") == expected

    sleeper = await jobs.submit(job_spec("bash", "-c", "echo up; sleep 60"))
    async with contextlib.aclosing(sleeper.stream(poll=1.0)) as output:
        first = await anext(output)
    assert first.data == "up\n"
    assert (await sleeper.cancel()).state == "CANCELED"
    assert (await sleeper.wait(poll=1.0)).state == "CANCELED"
    assert {j.job_id for j in await jobs.list()} == {job.job_id, sleeper.job_id}
    with pytest.raises(NotFound):
        await jobs.handle("no-such-job").status()


async def test_sync_jobs(start_endpoint: StartEndpoint, amqp_url: str) -> None:
    await start_endpoint("jc2", plugins=PSIJ, plugin_settings=FAST)

    def blocking() -> None:
        with OrbitClient(url=amqp_url, timeout=30) as client:
            jobs = Jobs(client, "jc2")
            job = jobs.submit(job_spec("bash", "-c", "for i in 1 2 3; do echo $i; done; exit 2"))
            text = "".join(c.data for c in job.stream(poll=1.0))
            assert text == "1\n2\n3\n"
            assert job.final is not None and job.final.exit_code == 2
            assert job.wait().state == "FAILED"
            assert job.status().exit_code == 2
            long = jobs.submit(job_spec("bash", "-c", "echo up; sleep 60"))
            for chunk in long.stream(poll=0.5):
                assert chunk.data == "up\n"
                break  # leaving early closes the subscription
            assert long.cancel().state == "CANCELED"
            assert [j.job_id for j in jobs.list()] == [job.job_id, long.job_id]

    await asyncio.to_thread(blocking)
