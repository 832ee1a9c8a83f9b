"""``kb.Library``, the facade, end to end on a copy of the user's library with the fast fake encoder.

Real PDFs (pdfium), real reading lists, real tantivy and SQLite; only the embedding model is the
deterministic ``HashingEncoder``, so the whole pipeline runs in seconds. Tests about meaning (does a
paraphrase find the paper?) run with the real model elsewhere (test_search, test_related).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kb
from kb.embed import HashingEncoder
from tests.conftest import USERLIB
from tests.helpers import TemporaryLibrary, fake_library


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> TemporaryLibrary:
    """Built once for the read-only tests of this module."""
    lib = fake_library(tmp_path_factory.mktemp("library"), USERLIB)
    report = lib.ingest()
    assert report.failed == [] and report.papers == 69
    return lib


def test_ingest_report_and_status(world: TemporaryLibrary) -> None:
    status = world.library.status()
    assert (status.papers, status.files) == (69, 25)
    assert status.passages > 900 and status.pages == 327
    assert status.settings["model_version"] == HashingEncoder.version
    assert [Path(c).name for c in status.catalogs] == ["README.md"]
    data = status.to_json()
    assert data["papers"] == 69 and data["by_status"] == {"no-pdf": 45, "ok": 24}


def test_results_are_dataclasses_with_one_json_form(world: TemporaryLibrary) -> None:
    results = world.library.search("lip sync", mode="keyword", limit=3)
    assert isinstance(results, kb.SearchResults)
    assert all(isinstance(r, kb.SearchResult) for r in results.results)
    top = results.results[0]
    assert isinstance(top.paper, kb.Paper) and isinstance(top.hits[0], kb.Hit)
    as_json = results.to_json()
    assert json.loads(json.dumps(as_json)) == as_json  # plain JSON, no dataclasses left
    assert as_json["results"][0]["id"] == top.paper.id and as_json["results"][0]["hits"]
    assert top.paper.to_json()["title"] == top.paper.title


def test_search_modes_and_filters(world: TemporaryLibrary) -> None:
    lib = world.library
    ids = [r.paper.id for r in lib.search("lip sync loss", mode="keyword").results]
    assert ids[:2] and {"syncnet", "a-lip-sync-expert-is-all-you-need-for-speech-to"} & set(ids[:3])
    assert lib.search("lip sync loss", mode="hybrid").results  # the fake encoder embeds the query too
    assert lib.search("lip sync loss", mode="semantic").results
    unread = lib.search("face", mode="keyword", read=False, limit=50).results
    assert unread and all(r.paper.read is not True for r in unread)  # unread: not marked read
    with pytest.raises(kb.UsageError, match="bad year"):
        lib.search("face", year="20x9")
    with pytest.raises(kb.UsageError):
        lib.search("face", mode="fast")


def test_papers_paper_topics_related_export(world: TemporaryLibrary) -> None:
    lib = world.library
    gan = lib.papers(topic="gan")
    assert gan and all(any("GAN" in t for path in p.topics for t in path) for p in gan)
    assert [p.year for p in lib.papers(sort="year") if p.year][:3] == sorted(
        (p.year for p in lib.papers() if p.year), reverse=True
    )[:3]
    details = lib.paper("SyncNet")
    assert details.paper.id == "syncnet" and details.method == "alias" and details.files[0].pages > 0
    with pytest.raises(kb.NotFoundError, match="the name is empty"):
        lib.paper("  ")
    tree = lib.topics()
    assert {c.name for c in tree.children.values()} >= {"GAN", "Talking face generation"}
    related = lib.related("StyleGAN", limit=3)
    assert isinstance(related, kb.RelatedResults) and len(related.results) == 3
    assert related.resolution is not None and related.resolution.paper.id == "stylegan"
    bib = lib.export("bibtex", read=True)
    assert bib.count == sum(1 for p in lib.papers() if p.read) and bib.text.count("@") == bib.count
    with pytest.raises(kb.UsageError, match="unknown format"):
        lib.export("docx")


def test_a_library_follows_new_generations(tmp_path: Path) -> None:
    """A long-lived Library (the web server) sees an ingest made elsewhere without being reopened."""
    world = fake_library(tmp_path, USERLIB)
    world.ingest()
    lib = world.library
    first = lib.generation().name
    readme = world.root / "README.md"
    readme.write_bytes(readme.read_bytes().replace(b"(Generates attention mask", b"(Makes attention mask", 1))
    other = kb.Library(world.index, encoder=HashingEncoder())  # e.g. `kb ingest` in another process
    assert other.ingest().changed
    assert lib.generation().name != first
    assert "Makes attention mask" in (lib.paper("GANimation").paper.note or "")


def test_mark_through_the_cli_keeps_the_fake_encoder_and_the_bytes(tmp_path: Path) -> None:
    """`kb mark` re-ingests with the encoder the index was built with (no model load), and changes one
    character of the user's list."""
    world = fake_library(tmp_path, USERLIB)
    world.ingest()
    r = world.kb("mark", "unread", "SyncNet")
    assert r.returncode == 0, r.stderr
    assert world.changed_lines("README.md") == [
        line.replace("[ ]", "[x]", 1) if line.startswith("-") else line.replace("[x]", "[ ]", 1)
        for line in world.changed_lines("README.md")
    ]
    assert len(world.changed_lines("README.md")) == 2  # one line out, the same line back with [ ]
    assert world.library.paper("SyncNet").paper.read is False
    assert world.library.status().settings["model_version"] == HashingEncoder.version


def test_errors_carry_their_exit_codes(world: TemporaryLibrary, tmp_path: Path) -> None:
    assert kb.UsageError("x").exit_code == 2 and kb.LockedError("x").exit_code == 3
    assert kb.NotFoundError("x").exit_code == 1 and issubclass(kb.BadIndexError, kb.KbError)
    with pytest.raises(kb.BadIndexError, match="run `kb ingest"):
        kb.Library(tmp_path / "nothing").papers()
    r = world.kb("search", "face", "--year", "20x9")
    assert r.returncode == 2 and r.stderr.startswith("kb: bad year") and "Traceback" not in r.stderr
