"""Python functions and command lines as tasks on an endpoint.

    orbit endpoint stop --name demo
    orbit endpoint start --name demo --plugins tasks --set tasks.allow_cloudpickle=true --detach
    python examples/tasks.py demo

``OrbitExecutor`` is a ``concurrent.futures.Executor``: callables are cloudpickled (the
endpoint must allow it: ``plugin_settings.tasks.allow_cloudpickle``), ``"module:function"``
names travel as JSON. ``Tasks`` submits command lines and answers with task records.
"""

from __future__ import annotations

import argparse
import math

from orbit_client import OrbitClient, OrbitExecutor, Tasks
from orbit_plugins.tasks.schema import TaskSpec


def main(endpoint: str, pickled: bool) -> None:
    with OrbitExecutor(endpoint) as ex:
        future = ex.submit("math:factorial", 20)  # import path + JSON arguments
        print("factorial(20) =", future.result(timeout=60))
        if pickled:
            squares = list(ex.map(lambda x: x * x, range(10), timeout=60))
            print("squares:", squares)
            print("sum of roots:", round(sum(ex.map(math.sqrt, range(100))), 3))

    with OrbitClient() as client:
        tasks = Tasks(client, endpoint)
        accepted = tasks.submit(
            TaskSpec(executable="uname", arguments=["-sr"]),
            TaskSpec(executable="sh", arguments=["-c", "echo to stderr >&2; exit 2"]),
        )
        for record in tasks.wait([a.uid for a in accepted], timeout=60):
            print(f"{record.uid}: {record.state} exit {record.exit_code}", end="")
            print(f" stdout={record.stdout!r} stderr={record.stderr!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", nargs="?", default="demo")
    parser.add_argument("--no-pickle", action="store_true", help="skip the cloudpickled callables")
    args = parser.parse_args()
    main(args.endpoint, not args.no_pickle)
