"""The README cannot drift from the code: every command is documented, and the quick start is true."""

from __future__ import annotations

import re

from kb.cli import app
from tests.conftest import ROOT


def _commands() -> list[str]:
    import typer.main

    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^### kb (\w+)", readme, re.MULTILINE))
    documented |= {
        c
        for line in re.findall(r"^### (kb .+)$", readme, re.MULTILINE)
        for c in re.findall(r"kb (\w+)", line)
    }
    missing = [c for c in _commands() if c not in documented]
    assert not missing, f"commands without a README section: {missing}"


def test_quick_start_is_exactly_make_demo_and_make_test() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    assert [line.strip() for line in quick.strip().splitlines()] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
