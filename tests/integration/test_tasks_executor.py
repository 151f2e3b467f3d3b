"""``OrbitExecutor`` when the endpoint process is SIGKILLed mid-map, on a real broker (the rest
is tested on the memory broker in tests/local/test_tasks_executor.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from orbit_client import (
    AsyncOrbitClient,
    AsyncOrbitExecutor,
    TaskFailed,
)
from tests.local.test_tasks_executor import start

from .conftest import StartEndpoint

pytestmark = pytest.mark.rabbit


async def test_endpoint_killed_mid_map_every_task_answered(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient
) -> None:
    from orbit_plugins.tasks.client_tasks import map_specs

    ep = await start(start_endpoint, allow_cloudpickle=True)

    def nap(x: int) -> int:
        time.sleep(0.1)
        return x

    async with AsyncOrbitExecutor(client, "ep1", batch_size=10) as ex:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[object]] = []
        items = []
        for spec in map_specs(nap, [(x,) for x in range(60)]):
            future: asyncio.Future[object] = loop.create_future()
            futures.append(future)
            items.append((spec, ex_settle(future)))
        ex.run_many(items)  # what map does: 6 run_tasks batches
        while sum(f.done() for f in futures) < 10:
            await asyncio.sleep(0.05)
        ep.kill()  # SIGKILL mid-map
        await ep.start()  # its journal resumes the run_tasks requests and answers them
        outcomes = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 90)
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(e, TaskFailed) and "interrupted" in str(e) for e in failed), failed
    assert done == [x for x, o in zip(range(60), outcomes, strict=True) if o == x]
    assert len(done) + len(failed) == 60 and len(done) >= 10
    print(f"endpoint killed mid-map: {len(done)} results, {len(failed)} reported interrupted")


def ex_settle(future: asyncio.Future[object]) -> Callable[[bool, object], None]:
    def settle(ok: bool, value: object) -> None:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)  # type: ignore[arg-type]

    return settle
