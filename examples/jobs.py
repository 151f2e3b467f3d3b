"""A batch job through PSI/J with its output live, then its exit code.

    orbit endpoint start --name demo --plugins psij --detach
    python examples/jobs.py demo                      # the endpoint's local executor
    python examples/jobs.py hpc1 --executor slurm --queue debug --account m1234

The output comes from ``job_output`` events; gaps (a lost event, a late start) are filled
from the endpoint by byte offset, so every line arrives once and in order.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from orbit_client import AsyncJobs, AsyncOrbitClient, job_spec

SCRIPT = 'for i in 1 2 3; do echo "line $i from $(hostname)"; sleep 0.5; done; exit 3'


async def main(endpoint: str, executor: str, queue: str | None, account: str | None) -> int:
    async with AsyncOrbitClient() as client:
        jobs = AsyncJobs(client, endpoint)
        spec = job_spec("bash", "-c", SCRIPT, queue=queue, account=account, duration=300)
        job = await jobs.submit(spec, executor=executor)
        print(f"submitted {job.job_id} to {executor} on {endpoint}")
        async for chunk in job.stream():
            print(chunk.data, end="", file=sys.stderr if chunk.stream == "stderr" else sys.stdout)
        final = await job.wait()
        print(f"job {job.job_id} ended {final.state} with exit code {final.exit_code}")
        return 0 if final.exit_code == 3 else 1  # the script exits 3 on purpose


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", nargs="?", default="demo")
    parser.add_argument("--executor", default="local", help="local, slurm, pbs, lsf, ...")
    parser.add_argument("--queue")
    parser.add_argument("--account")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.endpoint, args.executor, args.queue, args.account)))
