"""A job at a DOE facility through its IRI Facility API, driven by an Orbit endpoint.

    export IRI_TOKEN=...                  # your access token for the facility
    orbit endpoint start --name gw --plugins iri_connect,iri \
        --set iri_connect.config=$HOME/facilities.toml -d
    python examples/iri.py gw nersc perlmutter-cpu

The facilities file names each site's API URL (``orbit_plugins/iri/facilities.example.toml``).
The token stays in the endpoint's memory; job states arrive as ``iri.job_status`` events.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from orbit_client import AsyncIri, AsyncOrbitClient
from orbit_plugins.iri.schema import JobSpec

FINAL = {"completed", "failed", "canceled"}


async def main(endpoint: str, site: str, resource: str) -> int:
    async with AsyncOrbitClient() as client:
        iri = AsyncIri(client, endpoint)
        connected = await iri.connect(site, os.environ["IRI_TOKEN"])
        print(f"connected to {connected.label} ({connected.url})")
        for r in await iri.resources(site):
            print(f"  resource {r['id']}: {r.get('current_status', '?')}")
        async with await client.subscribe(endpoint, "iri", "job_status") as events:
            spec = JobSpec(executable="/bin/hostname", name="orbit-example")
            job = await iri.submit_job(site, resource, spec)
            print(f"job {job.id} submitted to {resource}")
            state = job.status.state if job.status else "?"
            async for event in events:
                if event.data["job_id"] == job.id:
                    state = event.data["state"]
                    print(f"  {state}")
                    if state in FINAL:
                        break
        print(f"job {job.id} ended {state}")
        return 0 if state == "completed" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint")
    parser.add_argument("site", help="a site of the endpoint's facilities file")
    parser.add_argument("resource", help="a compute resource id at that site")
    a = parser.parse_args()
    raise SystemExit(asyncio.run(main(a.endpoint, a.site, a.resource)))
