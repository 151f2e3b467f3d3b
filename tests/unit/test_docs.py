"""The documentation stays true to the code: the plugin tutorial shows the example
distribution's files word for word, and nothing a user reads cites the project's internal
design notes (users of the repository do not have them)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "plugins" / "writing-a-plugin.md"
FILE_BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```\w*\n(?P<code>.*?)```\n", re.S)


def test_the_tutorial_shows_the_example_files_as_they_are() -> None:
    shown = {m["path"]: m["code"] for m in FILE_BLOCK.finditer(TUTORIAL.read_text())}
    example = ROOT / "examples" / "orbit-hello"
    parts = {
        str(p.relative_to(ROOT))
        for p in example.rglob("*")
        if p.is_file() and p.suffix in (".py", ".js", ".toml") and p.name != "__init__.py"
    }
    assert set(shown) == parts  # every part of the distribution, nothing else
    for path, code in shown.items():
        assert code == (ROOT / path).read_text(), f"the tutorial's {path} differs from the file"


def test_nothing_a_user_reads_cites_the_design_notes() -> None:
    readable = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("examples/**/*")]
    readable += [*ROOT.glob("orbit_*/**/*.py"), *ROOT.glob("orbit_*/**/*.md")]
    citing = [
        str(p.relative_to(ROOT))
        for p in readable
        if p.is_file()
        and p.suffix in (".md", ".py", ".js", ".toml")
        and re.search(r"DESIGN(\.md| §)", p.read_text(errors="replace"))
    ]
    assert citing == []
