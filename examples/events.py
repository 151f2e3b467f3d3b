"""Follow an endpoint's live events: presence, metrics, job and task states, progress.

    orbit endpoint start --name demo --plugins sysinfo,tasks --set sysinfo.prefetch_interval=2 -d
    python examples/events.py demo --count 5
    python examples/events.py demo --plugin tasks     # only the tasks plugin's, until Ctrl-C

Events are routed by ``<endpoint>.<plugin>.<topic>``; the broker only lets you follow
endpoints you were granted. This script also runs one task, so there is something to see.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

from orbit_client import AsyncOrbitClient, AsyncTasks, UnknownPlugin
from orbit_plugins.tasks.schema import TaskSpec


async def main(endpoint: str, plugin: str | None, count: int | None) -> None:
    async with AsyncOrbitClient() as client, await client.subscribe(endpoint, plugin) as events:
        with contextlib.suppress(UnknownPlugin):  # an endpoint without tasks: just follow
            await AsyncTasks(client, endpoint).submit(TaskSpec(executable="true"))
        seen = 0
        async for event in events:
            when = time.strftime("%H:%M:%S", time.localtime(event.ts))
            summary = ", ".join(f"{k}={v}" for k, v in event.data.items())[:100]
            print(f"{when} {event.endpoint}.{event.plugin}.{event.topic}  {summary}")
            seen += 1
            if count is not None and seen >= count:
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", nargs="?", default="demo")
    parser.add_argument("--plugin", help="only this plugin's events (orbit: presence)")
    parser.add_argument("--count", type=int, help="stop after this many")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.endpoint, args.plugin, args.count))
