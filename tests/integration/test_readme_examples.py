"""The shell blocks of examples/README.md work when pasted as written (the same runner as
``test_readme.py``; a module of its own so that ``pytest -n`` runs both at once).
``pytest -k readme`` selects it."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_readme import DOCS, run_blocks, scratch  # noqa: F401 (scratch is a fixture)

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]


@pytest.mark.timeout(300)  # `orbit broker up`, three endpoints, every example: ~1 min here
def test_readme_examples_shell_blocks_work_when_pasted(
    scratch: tuple[Path, dict[str, str]],  # noqa: F811
) -> None:
    work, env = scratch
    assert run_blocks(DOCS[1], work, env) == 4
