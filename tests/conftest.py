"""Shared fixtures: paths to the real corpora in ../shared/corpus (read in place, never copied into git)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KB_SHARED", ROOT.parent / "shared")).resolve()
CORPUS = SHARED / "corpus"
USERLIB = CORPUS / "userlib"
PWL = CORPUS / "pwl-dev"
ODD = CORPUS / "odd"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs offline, as kb does for the user."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def run_kb(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900):
    """Run the real `kb` command line in a subprocess, as a user would."""
    import subprocess
    import sys

    full_env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="200")
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "kb", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def userlib_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real index of the user's library (real pypdfium2, tantivy and MiniLM), built once per session.

    Tests must not write to it: copy it (or build their own) to test changes.
    """
    from kb.ingest import IngestOptions, ingest

    root = tmp_path_factory.mktemp("userlib-index") / "index"
    report = ingest(IngestOptions(folders=[USERLIB], index_dir=root, cwd=USERLIB))
    assert report.failed == []
    return root
