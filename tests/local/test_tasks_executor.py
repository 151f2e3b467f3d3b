"""``OrbitExecutor`` / ``AsyncOrbitExecutor`` against an endpoint on the memory broker with its
real worker pool (the endpoint kill is in tests/integration/test_tasks_executor.py)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orbit_client import (
    AsyncOrbitClient,
    AsyncOrbitExecutor,
    NotAuthorized,
    OrbitClient,
    OrbitExecutor,
    RemoteTraceback,
    TaskFailed,
    VersionMismatch,
)
from tests.local.conftest import StartEndpoint

TASKS = "orbit_plugins.tasks.plugin:TasksPlugin"


async def start(start_endpoint: StartEndpoint, name: str = "ep1", **tasks: object) -> object:
    return await start_endpoint(
        name, plugins=[TASKS], plugin_settings={"tasks": {"workers": 2, **tasks}}
    )


async def test_map_1000_functions_in_order_and_remote_exceptions(
    start_endpoint: StartEndpoint, amqp_url: str
) -> None:
    await start(start_endpoint, allow_cloudpickle=True)

    def square(x: int) -> tuple[int, int]:
        return x * x, os.getpid()

    def fail(x: int) -> None:
        raise ValueError(f"bad {x}")

    def run() -> tuple[list[tuple[int, int]], BaseException, float]:
        with OrbitExecutor("ep1", client_settings={"url": amqp_url}) as ex:
            started = time.monotonic()
            results = list(ex.map(square, range(1000), timeout=60))
            elapsed = time.monotonic() - started
            error = ex.submit(fail, 7).exception(30)
            assert error is not None
            assert ex.submit("operator:add", 2, 3).result(30) == 5
        return results, error, elapsed

    results, error, elapsed = await asyncio.to_thread(run)
    assert [r[0] for r in results] == [x * x for x in range(1000)]
    pids = {r[1] for r in results}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # the endpoint's worker processes
    assert isinstance(error, ValueError) and str(error) == "bad 7"
    assert isinstance(error.__cause__, RemoteTraceback) and "in fail" in str(error.__cause__)
    print(f"1000 function tasks via OrbitExecutor.map: {elapsed:.2f} s")


async def test_cloudpickle_refused_and_version_check(
    start_endpoint: StartEndpoint, client: AsyncOrbitClient, amqp_url: str
) -> None:
    await start(start_endpoint)  # cloudpickle not enabled
    async with AsyncOrbitExecutor(client, "ep1") as ex:
        with pytest.raises(NotAuthorized, match="allow_cloudpickle"):
            await ex.submit(lambda: 1)
        assert await ex.map("math:factorial", [3, 4, 5]) == [6, 24, 120]
        with pytest.raises(TaskFailed, match="ZeroDivisionError") as info:
            await ex.submit("operator:truediv", 1, 0)
        assert info.value.exception == "ZeroDivisionError"

    # a mismatching endpoint (faked through its describe answer) is refused before sending
    real_call = client.call

    async def fake_call(endpoint: str, operation: str, /, **kw: object) -> object:
        answer = await real_call(endpoint, operation, **kw)
        if operation == "orbit.describe":
            answer["versions"] |= {"python": "3.99.0", "cloudpickle": "0.1"}
        return answer

    client.call = fake_call  # type: ignore[method-assign]
    try:
        async with AsyncOrbitExecutor(client, "ep1") as ex:
            with pytest.raises(VersionMismatch, match=r"Python 3\.99\.0 there.*cloudpickle 0\.1"):
                await ex.submit(lambda: 1)
        async with AsyncOrbitExecutor(client, "ep1", check_versions=False) as ex:
            with pytest.raises(NotAuthorized):  # sent anyway; this endpoint refuses pickles
                await ex.submit(lambda: 1)
    finally:
        del client.call


async def test_async_executor_and_reattach_after_client_restart(
    start_endpoint: StartEndpoint, amqp_url: str, tmp_path: Path
) -> None:
    await start(start_endpoint, allow_cloudpickle=True)
    async with AsyncOrbitClient(url=amqp_url) as c1:
        async with AsyncOrbitExecutor(c1, "ep1") as ex:
            assert await ex.map(lambda a, b: a + b, [1, 2], [10, 20]) == [11, 22]
            slow = ex.submit(lambda: time.sleep(1.5) or "late")
            await asyncio.sleep(0.2)
            ex.flush()
            uid = next(iter(ex._pending))
            await ex.shutdown(wait=False)
        assert not slow.done()

    # a new client (as after a restart) re-attaches by uid and gets the result by event; the
    # blocking client runs in a thread, so the endpoint on this loop keeps serving
    def reattach() -> object:
        with OrbitClient(url=amqp_url) as c2:
            ex2 = OrbitExecutor("ep1", c2)
            [future] = ex2.attach([uid])
            try:
                return future.result(20)
            finally:
                ex2.shutdown()

    assert await asyncio.to_thread(reattach) == "late"


def ex_settle(future: asyncio.Future[object]) -> Callable[[bool, object], None]:
    def settle(ok: bool, value: object) -> None:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)  # type: ignore[arg-type]

    return settle
