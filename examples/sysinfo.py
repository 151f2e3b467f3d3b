"""The host behind an endpoint: system, CPU, memory and its role (login node, batch job, ...).

    orbit endpoint start --name demo --plugins sysinfo --detach
    python examples/sysinfo.py demo

The client finds the broker through ``ORBIT_URL`` or the profile ``orbit broker up`` wrote.
"""

from __future__ import annotations

import argparse
import asyncio

from orbit_client import AsyncOrbitClient, AsyncSysinfo


async def main(endpoint: str) -> None:
    async with AsyncOrbitClient() as client:
        sysinfo = AsyncSysinfo(client, endpoint)
        role = await sysinfo.host_role()
        metrics = await sysinfo.metrics(["system", "cpu", "memory"], fresh=True)
        assert metrics.system and metrics.cpu and metrics.memory  # asked for, so present
        print(f"{endpoint} runs on {metrics.system.hostname}: {role.role}, {role.scheduler=}")
        print(f"  {metrics.system.os} {metrics.system.kernel}, Python {metrics.system.python}")
        print(f"  CPU: {metrics.cpu.cores_logical} logical cores, {metrics.cpu.percent:.0f}% busy")
        gib = 1 << 30
        print(
            f"  memory: {metrics.memory.available / gib:.1f} GiB free"
            f" of {metrics.memory.total / gib:.1f} GiB"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", nargs="?", default="demo")
    asyncio.run(main(parser.parse_args().endpoint))
