"""The import direction of DESIGN §5, checked on the source, and light packages stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ORBIT = {
    "orbit_protocol",
    "orbit_client",
    "orbit_broker",
    "orbit_endpoint",
    "orbit_plugins",
    "orbit_cli",
}
ALLOWED: dict[str, set[str]] = {
    "orbit_protocol": set(),
    "orbit_client": {"orbit_protocol"},
    "orbit_broker": {"orbit_protocol", "orbit_client"},
    "orbit_endpoint": {"orbit_protocol", "orbit_plugins"},
    "orbit_plugins": {"orbit_protocol"},
    "orbit_cli": ORBIT,
}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_direction(package: str) -> None:
    violations = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in ORBIT and top != package and top not in ALLOWED[package]:
                violations.append(f"{path.relative_to(ROOT)} imports {name}")
            lazy = {"orbit_plugins", "orbit_plugins.base", "orbit_plugins.storage"}  # the SDK
            if package == "orbit_endpoint" and top == "orbit_plugins" and name not in lazy:
                violations.append(f"{path.relative_to(ROOT)} imports {name} (plugins load lazily)")
    assert not violations, "\n".join(violations)


OPTIONAL_ACCELERATORS = {"orjson"}
"""Imported when present, never required: orbit_protocol works with pydantic alone."""


def test_protocol_depends_on_pydantic_only() -> None:
    third_party = set()
    for path in (ROOT / "orbit_protocol").rglob("*.py"):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "orbit_protocol":
                third_party.add(top)
    assert third_party <= {"pydantic"} | OPTIONAL_ACCELERATORS


def test_protocol_works_and_encodes_the_same_without_its_accelerator() -> None:
    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "from orbit_protocol.messages import Reply, Request, dumps\n"
        "print(Request(plugin='p', method='m', args={'a': [1, 2.5, None, 'é', 2**70]}).to_bytes()"
        " + Reply.success({'x': True, 'f': [1.5e300, 0.1, -0.0], 's': 'é' + chr(34) + chr(10)"
        " + chr(1)}).to_bytes()"
        " + dumps({1: b'x'}))"
    )
    without = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    with_it = subprocess.run(
        [sys.executable, "-c", code.replace("sys.modules['orjson'] = None", "import orjson")],
        capture_output=True,
        check=True,
    )
    assert without.stdout == with_it.stdout
    assert b'"a":[1,2.5,null,' in without.stdout


def test_client_import_is_light() -> None:
    code = (
        "import sys, orbit_client, orbit_protocol;"
        "heavy = {'psij', 'globus_sdk', 'starlette', 'fastapi', 'cloudpickle', 'psutil',"
        " 'orbit_endpoint'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
