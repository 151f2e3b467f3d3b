"""A Globus transfer driven by an endpoint: no data passes through Orbit or this machine.

    export GLOBUS_ACCESS_TOKEN=...        # a Transfer API access token of yours
    orbit endpoint start --name hpc1 --plugins globus --set globus.local_collection=UUID -d
    python examples/globus.py hpc1 DEST_COLLECTION_UUID /~/results/ /project/results/

``local`` names the endpoint's own collection. The token is handed to the endpoint once
and kept in its memory only; progress arrives as ``globus.transfer_status`` events.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from orbit_client import AsyncGlobus, AsyncOrbitClient


async def main(endpoint: str, destination: str, source_path: str, dest_path: str) -> int:
    async with AsyncOrbitClient() as client:
        globus = AsyncGlobus(client, endpoint)
        await globus.register(access_token=os.environ["GLOBUS_ACCESS_TOKEN"])
        listing = await globus.ls("local", source_path)
        print(f"{len(listing.entries)} entries in local:{listing.path}")
        async with await client.subscribe(endpoint, "globus", "transfer_status") as events:
            items = [(source_path, dest_path, source_path.endswith("/"))]
            sub = await globus.submit("local", destination, items, label="orbit example")
            print(f"task {sub.task_id}: {sub.status}")
            async for event in events:
                if event.data["task_id"] != sub.task_id:
                    continue
                data = event.data
                print(
                    f"  {data['status']}: {data['files_transferred']} file(s), "
                    f"{data['bytes_transferred']:,} bytes"
                )
                if data["status"] in ("SUCCEEDED", "FAILED"):
                    break
        task = await globus.status(sub.task_id)
        print(f"task {task.task_id} ended {task.status}")
        return 0 if task.status == "SUCCEEDED" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint")
    parser.add_argument("destination", help="destination collection UUID")
    parser.add_argument("source_path", help="on the endpoint's collection; a trailing / = a folder")
    parser.add_argument("dest_path")
    a = parser.parse_args()
    raise SystemExit(asyncio.run(main(a.endpoint, a.destination, a.source_path, a.dest_path)))
