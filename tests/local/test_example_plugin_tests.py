"""The example plugin distribution's own tests (``examples/orbit-hello/tests``, on
:mod:`orbit_endpoint.testing`) pass, run the way its author would run them: ``pytest`` in
its directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "orbit-hello"


def test_the_example_plugins_own_tests_pass() -> None:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE)}  # as `pip install -e .` would
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "3 passed" in ran.stdout
