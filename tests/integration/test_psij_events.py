"""The psij plugin's event contracts, read straight off the broker: ``job_output`` chunks
(bounded, contiguous offsets per stream, nothing lost or doubled) and ``job_status`` events
(every field, states in order, the final one after the last chunk)."""

from __future__ import annotations

import asyncio
from importlib.util import find_spec
from typing import Any

import pytest

from orbit_client import AsyncOrbitClient
from orbit_plugins.psij.client import AsyncJobs
from orbit_plugins.psij.schema import JobSpec
from tests.testkit.eventually import eventually

from .conftest import StartEndpoint

pytestmark = [
    pytest.mark.rabbit,
    # find_spec, not importorskip: importing psij installs a SIGCHLD handler in pytest
    pytest.mark.skipif(find_spec("psij") is None, reason="psij-python is not installed"),
]

PSIJ = ["orbit_plugins.psij.plugin:PsijPlugin"]
CHUNK = 256  # the smallest chunk_bytes the plugin accepts: many chunks per job
RANK = {"NEW": 0, "QUEUED": 1, "ACTIVE": 2, "COMPLETED": 3, "FAILED": 3, "CANCELED": 3}
# 3-byte characters: chunk boundaries (256 bytes) fall inside them
STDOUT = "".join(f"{i:03d} {'✓' * 40}\n" for i in range(60))
STDERR = "".join(f"err {i} {'é' * 30}\n" for i in range(20))


def job(fail: bool) -> JobSpec:
    """Prints a first line, runs a while (so the monitor sees it ACTIVE), then writes the
    rest of its output in one burst just before it ends: the monitor sends most of it
    after the job has ended."""
    body = (
        f'printf %s "$OUT1"; sleep 1.5; printf %s "$OUT2"; printf %s "$ERR" >&2; '
        f"exit {3 if fail else 0}"
    )
    first, _, rest = STDOUT.partition("\n")
    return JobSpec(
        executable="bash",
        arguments=["-c", body],
        environment={"OUT1": first + "\n", "OUT2": rest, "ERR": STDERR},
    )


async def test_job_output_and_job_status_events(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    await start_endpoint(
        "jobs-events",
        plugins=PSIJ,
        plugin_settings={"psij": {"poll_interval": 0.1, "chunk_bytes": CHUNK}},
    )
    jobs = AsyncJobs(client, "jobs-events")
    sub = await client.subscribe("jobs-events", "psij")
    events: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    finished: set[str] = set()

    async def watch() -> None:
        async for event in sub:
            data = event.data
            events.setdefault(str(data["job_id"]), []).append((event.topic, data))
            if event.topic == "job_status" and data["state"] in ("COMPLETED", "FAILED"):
                finished.add(str(data["job_id"]))

    watcher = asyncio.create_task(watch())
    ok = await jobs.submit(job(fail=False))
    bad = await jobs.submit(job(fail=True))
    await eventually(lambda: finished >= {ok.job_id, bad.job_id}, timeout=60, what="both end")
    watcher.cancel()
    await sub.close()
    assert finished == {ok.job_id, bad.job_id}, events.keys()

    for handle, (state, code) in ((ok, ("COMPLETED", 0)), (bad, ("FAILED", 3))):
        assert handle.info is not None
        seen = events[handle.job_id]
        streams: dict[str, list[dict[str, Any]]] = {"stdout": [], "stderr": []}
        for topic, data in seen:
            if topic == "job_output":
                streams[data["stream"]].append(data)
        for name, expected in (("stdout", STDOUT), ("stderr", STDERR)):
            chunks = streams[name]
            assert len(chunks) >= len(expected.encode()) // CHUNK, (name, len(chunks))
            offset = 0
            for chunk in chunks:
                size = len(chunk["data"].encode())
                assert size <= CHUNK, chunk
                assert chunk["offset"] == offset, (name, [c["offset"] for c in chunks])
                assert chunk["end"] == offset + size, chunk
                offset = chunk["end"]
            assert "".join(c["data"] for c in chunks) == expected, name
            assert offset == len(expected.encode())

        statuses = [data for topic, data in seen if topic == "job_status"]
        for data in statuses:
            assert set(data) >= {"job_id", "native_id", "state", "exit_code"}, data
            assert data["job_id"] == handle.job_id
            assert data["native_id"] == handle.info.native_id is not None
        ranks = [RANK[d["state"]] for d in statuses]
        assert ranks == sorted(set(ranks)), [d["state"] for d in statuses]
        assert [d["state"] for d in statuses][-2:] == ["ACTIVE", state], statuses
        assert (statuses[0]["exit_code"], statuses[-1]["exit_code"]) == (None, code)
        assert statuses[-1]["stdout_size"] == len(STDOUT.encode())
        assert statuses[-1]["stderr_size"] == len(STDERR.encode())
        last_output = max(i for i, (topic, _) in enumerate(seen) if topic == "job_output")
        assert seen[-1][0] == "job_status" and last_output < len(seen) - 1, "status before output"
