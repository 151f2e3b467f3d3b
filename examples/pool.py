r"""Tasks spread over a pool: several endpoints serving one shared queue.

    orbit broker provision -e m1 -e m2 --pool work \
        --profile-out "${ORBIT_PROFILE:-$HOME/.config/orbit/profile.json}"
    orbit broker grant "$(whoami)" work --pool
    orbit endpoint start --name m1 --plugins tasks --pool work --set tasks.allow_cloudpickle=true -d
    orbit endpoint start --name m2 --plugins tasks --pool work --set tasks.allow_cloudpickle=true -d
    python examples/pool.py work

Members compete for batches; a member that dies leaves its unfinished batches to the
others, so every task still gets its result. Which member ran a task shows in its answer.
"""

from __future__ import annotations

import argparse
import collections
import os
import socket

from orbit_client import OrbitExecutor


def where(x: int) -> tuple[int, str]:
    """Runs on a member: ``x`` and the host/process that ran it."""
    return x, f"{socket.gethostname()}:{os.getppid()}"


def main(pool: str, count: int) -> None:
    with OrbitExecutor(pool=pool, batch_size=4) as ex:
        results = list(ex.map(where, range(count), timeout=120))
    assert [x for x, _ in results] == list(range(count))  # in order, none missing
    served = collections.Counter(member for _, member in results)
    print(f"{count} tasks through pool {pool!r}, served by {len(served)} member(s):")
    for member, n in served.most_common():
        print(f"  {member}: {n}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", nargs="?", default="work")
    parser.add_argument("--count", type=int, default=40)
    args = parser.parse_args()
    main(args.pool, args.count)
