"""Files to and from an endpoint's host: upload, list, download, checked by SHA-256.

    orbit endpoint start --name demo --plugins staging --detach
    python examples/staging.py demo

Transfers are chunked (several chunks in flight), checksummed and resumable: run an
interrupted upload again and only the missing chunks go.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

from orbit_client import AsyncOrbitClient, AsyncStaging


async def main(endpoint: str, remote_dir: str, size: int) -> None:
    async with AsyncOrbitClient() as client:
        staging = AsyncStaging(client, endpoint)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp, "data.bin")
            await asyncio.to_thread(local.write_bytes, os.urandom(size))
            remote = f"{remote_dir}/data.bin"

            def show(done: int, total: int) -> None:
                print(f"\r  sent {done:>10,} of {total:,} bytes", end="", flush=True)

            put = await staging.upload(local, remote, overwrite=True, progress=show)
            print(f"\nuploaded {put.path}: {put.size:,} bytes, sha256 {put.sha256[:16]}…")
            for entry in (await staging.list(remote_dir)).entries:
                print(f"  {entry.type:4} {entry.size:>10,}  {entry.name}")
            back = Path(tmp, "back.bin")
            got = await staging.download(remote, back)
            here = await asyncio.to_thread(lambda: hashlib.sha256(back.read_bytes()).hexdigest())
            same = here == put.sha256 == got.sha256
            print(f"downloaded again: {got.size:,} bytes, identical: {same}")
            await staging.remove(remote)
            if not same:
                raise SystemExit(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", nargs="?", default="demo")
    parser.add_argument("--remote-dir", default="~/orbit-example", help="directory on the host")
    parser.add_argument("--size", type=int, default=5 << 20, help="bytes (default 5 MiB)")
    args = parser.parse_args()
    asyncio.run(main(args.endpoint, args.remote_dir, args.size))
