"""One shared test world: a private copy of a real library, its own index, and a ``kb.Library`` on it.

``TemporaryLibrary`` copies the reading lists of a corpus folder (so tests may edit them) and links
its PDFs in place (never copied, never written); ``encoder`` is the fast deterministic
``HashingEncoder`` for pipeline, storage and CLI tests, or None for the real MiniLM model where a test
is about meaning. The CLI runs on it with ``kb(...)`` exactly as a user runs it; an index keeps the
encoder it was built with, so `kb mark` / `kb add` / bare `kb ingest` on a fake-built index stay fast.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from kb import Library
from kb.embed import Encoder, HashingEncoder


class TemporaryLibrary:
    def __init__(self, tmp: Path, corpus: Path, *, encoder: Encoder | None = None, name: str = "lib") -> None:
        self.corpus = corpus
        self.root = tmp / name
        self.index = tmp / "index"
        for src in sorted(corpus.rglob("*")):
            if src.is_dir() or any(part.startswith(".") for part in src.relative_to(corpus).parts):
                continue
            dst = self.root / src.relative_to(corpus)
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.suffix.lower() == ".pdf":
                dst.symlink_to(src)
            else:
                shutil.copyfile(src, dst)
        self.library = Library(self.index, encoder=encoder)

    def ingest(self, **kw: object):  # type: ignore[no-untyped-def]
        return self.library.ingest([self.root], **kw)  # type: ignore[arg-type]

    def kb(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The real `kb` command line in a subprocess, on this library's index, run from its folder."""
        full_env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="200")
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "kb", *args, "--index", str(self.index)],
            cwd=self.root,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    def original(self, relative: str) -> bytes:
        return (self.corpus / relative).read_bytes()

    def changed_lines(self, relative: str) -> list[str]:
        """The lines of a copied reading list that differ from the corpus original (a unified diff)."""
        old = self.original(relative).decode("utf-8", "replace").splitlines(keepends=True)
        new = (self.root / relative).read_bytes().decode("utf-8", "replace").splitlines(keepends=True)
        return [
            line
            for line in difflib.unified_diff(old, new, n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]


def fake_library(tmp: Path, corpus: Path, **kw: object) -> TemporaryLibrary:
    """A TemporaryLibrary embedded by the deterministic HashingEncoder (seconds, not minutes)."""
    return TemporaryLibrary(tmp, corpus, encoder=HashingEncoder(), **kw)  # type: ignore[arg-type]
