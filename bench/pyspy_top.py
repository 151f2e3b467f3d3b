#!/usr/bin/env python
"""Summarise py-spy collapsed stacks (``--format raw``) from ``bench/rpc.py --profile-dir``.

    .venv/bin/python bench/pyspy_top.py /tmp/prof/endpoint.txt [--top 25]

Prints the share of active samples by layer (orbit code, sqlite, pydantic, AMQP stack,
asyncio, ...), the top functions by inclusive time and by self time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")

LAYERS = (
    ("sqlite (journal)", ("sqlite3", "journal.py")),
    ("pydantic", ("pydantic",)),
    ("json", ("json/",)),
    ("uuid/hashlib", ("uuid.py", "hashlib")),
    ("logging", ("logging/",)),
    ("pamqp (frame codec)", ("pamqp/",)),
    ("aiormq", ("aiormq/",)),
    ("aio_pika", ("aio_pika/",)),
    ("asyncio (loop, sockets)", ("asyncio/", "selectors.py", "socket.py")),
)


def layer_of(frames: list[str]) -> str:
    """Layer of the innermost frame that matches one (self time attribution)."""
    for frame in reversed(frames):
        for name, needles in LAYERS:
            if any(n in frame for n in needles):
                return name
        if "orbit_" in frame:
            return "orbit code (own lines)"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    total = 0
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for line in args.path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        self_time[frames[-1]] += n
        layers[layer_of(frames)] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{args.path}: {total} active samples")
    print("\nself time by layer:")
    for name, n in layers.most_common():
        print(f"  {100 * n / total:5.1f}%  {name}")
    print(f"\ntop {args.top} by inclusive time (orbit/aio_pika/aiormq/sqlite/pydantic frames):")
    shown = 0
    for frame, n in inclusive.most_common():
        if not any(
            k in frame
            for k in (
                "orbit_",
                "aio_pika",
                "aiormq",
                "sqlite",
                "pydantic",
                "json",
                "uuid",
                "bench/",
            )
        ):
            continue
        print(f"  {100 * n / total:5.1f}%  {frame}")
        shown += 1
        if shown >= args.top:
            break
    print(f"\ntop {args.top} by self time:")
    for frame, n in self_time.most_common(args.top):
        print(f"  {100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
