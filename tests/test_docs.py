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


def test_python_api_example_runs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The README's Python API example, run as written in a folder laid out like the user's repository
    (the reading list and its PDFs under paper/), with the real model."""
    import contextlib
    import io
    import shutil

    from tests.conftest import USERLIB

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    (tmp_path / "paper").mkdir()
    shutil.copyfile(USERLIB / "README.md", tmp_path / "paper" / "README.md")
    for pdf in (USERLIB / "paper").glob("*.pdf"):
        (tmp_path / "paper" / pdf.name).symlink_to(pdf)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    out = printed.getvalue()
    assert "69 papers" in out
    assert "Lip Sync" in out.splitlines()[1] or "Lip Sync" in out.splitlines()[2]
    assert "no paper matches 'Bigtable'" in out and "ACCV" in out
