#!/usr/bin/env python
"""Paired A/B of the RPC benchmark: an older revision against the working tree, interleaved.

    .venv/bin/python bench/ab.py REV [--pairs 5] [--variants raw_durable,orbit_async,orbit_sync]

``REV`` is checked out with ``git archive`` into a temporary directory and run from there
(``PYTHONPATH`` first, so its packages win over the installed ones); each pair runs
``bench/rpc.py --rounds 1`` on REV, then on the working tree, each on its own private node.
Interleaving matters: two runs one after the other drift with the machine (a cloud host's
raw baseline moved 1.5 → 3.2 ms between sessions here), and only the ratio to the baseline
*of the same run* compares. Prints the median of each ratio per side, with every value.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _ratios(doc: dict[str, Any]) -> dict[str, float]:
    variants = doc["variants"]
    base = variants["raw_durable"]
    out = {"baseline p50 ms": base["sequential"]["p50_ms"]}
    for name in ("orbit_async", "orbit_sync"):
        if name not in variants:
            continue
        v = variants[name]
        out[f"{name} p50 / baseline"] = v["sequential"]["p50_ms"] / base["sequential"]["p50_ms"]
        out[f"{name} rps@64 / baseline"] = v["levels"]["64"]["rps"] / base["levels"]["64"]["rps"]
        for role, cpu in v["levels"]["64"]["cpu_ms_per_req"].items():
            out[f"{name} CPU ms/req @64 {role}"] = cpu
    return out


def _run(tree: Path, variants: str, out: Path, extra_path: bool) -> dict[str, float]:
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = f"{tree}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    cmd = [sys.executable, str(tree / "bench" / "rpc.py"), "--rounds", "1"]
    cmd += ["--variants", variants, "--json-out", str(out)]
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    return _ratios(json.loads(out.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the older git revision (e.g. a commit or tag)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--variants", default="raw_durable,orbit_async,orbit_sync")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {args.rev: [], "working tree": []}
    with tempfile.TemporaryDirectory(prefix="orbit-ab-") as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.rev], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        for i in range(args.pairs):
            for side, tree in ((args.rev, old), ("working tree", ROOT)):
                print(f"pair {i + 1}/{args.pairs}: {side} ...", flush=True)
                out = Path(tmp) / f"{len(runs[side])}-{side.replace(' ', '_')}.json"
                runs[side].append(_run(tree, args.variants, out, tree is old))
    keys = list(runs["working tree"][0])
    summary = {
        key: {side: statistics.median(r[key] for r in rs) for side, rs in runs.items()}
        for key in keys
    }
    width = max(map(len, keys))
    title = f"median of {args.pairs} pairs"
    print(f"\n{title:{width}}  {args.rev:>12}  {'working tree':>12}")
    for key in keys:
        print(
            f"{key:{width}}  {summary[key][args.rev]:12.3f}  {summary[key]['working tree']:12.3f}"
        )
    if args.json_out:
        args.json_out.write_text(json.dumps({"runs": runs, "median": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
