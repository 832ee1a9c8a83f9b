"""End-to-end ingest: the real CLI, pypdfium2, tantivy and MiniLM on the real corpora.

The small library used here is the user's real reading list with three of its real PDFs linked in
(symlinks: shared/ is read-only), so runs stay short while every stage runs for real.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb.ingest import IngestOptions, ingest
from kb.storage import store
from tests.conftest import ODD, PWL, USERLIB, run_kb

SMALL = ["ObamaNet.pdf", "FAN.pdf", "SyncNet.pdf"]


def make_library(root: Path, pdfs: list[str] = SMALL) -> Path:
    lib = root / "lib"
    (lib / "paper").mkdir(parents=True)
    shutil.copyfile(USERLIB / "README.md", lib / "README.md")
    for name in pdfs:
        (lib / "paper" / name).symlink_to(USERLIB / "paper" / name)
    return lib


def list_json(index: Path, cwd: Path) -> list[dict]:
    res = run_kb("list", "--json", "--index", str(index), cwd=cwd)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A library and its index, built once through the CLI."""
    root = tmp_path_factory.mktemp("small")
    lib = make_library(root)
    index = root / "index"
    res = run_kb("ingest", str(lib), "--index", str(index), cwd=root)
    assert res.returncode == 0, res.stderr
    assert "3 added" in res.stdout and "0 failed" in res.stdout
    assert "Traceback" not in res.stderr
    return lib, index


def test_list_json_has_every_catalog_entry_and_links_pdfs(small: tuple[Path, Path]) -> None:
    lib, index = small
    papers = list_json(index, lib.parent)
    assert len(papers) == 68  # every entry of the reading list is a paper, PDF or not
    by_alias = {p["alias"]: p for p in papers if p["alias"]}
    sync = by_alias["SyncNet"]
    assert sync["title"] == "Out of Time: Automated Lip Sync in the Wild"
    assert sync["files"] == ["lib/paper/SyncNet.pdf"]
    assert sync["status"] == "ok" and sync["read"] is True
    assert sync["topics"] == [["Lip reading"]]
    assert sync["venue"] == "ACCV" and sync["year"] == 2016
    assert sync["catalog"]["file"] == "lib/README.md" and sync["catalog"]["line"] > 0
    assert {"label": "PDF", "url": "./paper/SyncNet.pdf"} in sync["links"]
    style = by_alias["StyleGAN"]
    assert style["status"] == "no-pdf" and style["files"] == []
    keys = {
        "id",
        "title",
        "alias",
        "topics",
        "read",
        "venue",
        "year",
        "note",
        "links",
        "files",
        "catalog",
        "status",
    }
    assert all(keys <= set(p) for p in papers)
    assert len({p["id"] for p in papers}) == len(papers)


def test_ids_are_stable_across_runs(small: tuple[Path, Path], tmp_path: Path) -> None:
    lib, index = small
    other = tmp_path / "index"
    res = run_kb("ingest", str(lib), "--index", str(other), "--no-embed", cwd=lib.parent)
    assert res.returncode == 0, res.stderr
    assert [p["id"] for p in list_json(index, lib.parent)] == [p["id"] for p in list_json(other, lib.parent)]


def test_unchanged_reingest_does_nothing_and_is_fast(small: tuple[Path, Path]) -> None:
    lib, index = small
    before = (index / store.CURRENT).read_text()
    res = run_kb("ingest", str(lib), "--index", str(index), cwd=lib.parent)
    assert res.returncode == 0, res.stderr
    assert "index up to date" in res.stdout
    assert (index / store.CURRENT).read_text() == before
    # with no folder, kb ingest re-runs the last ingest of that index
    res = run_kb("ingest", "--index", str(index), cwd=lib.parent.parent)
    assert res.returncode == 0 and "index up to date" in res.stdout, res.stderr


def test_sort_added_puts_the_newest_papers_first(small: tuple[Path, Path], tmp_path: Path) -> None:
    lib0, index0 = small
    lib = make_library(tmp_path, SMALL + ["LandmarkGAN.pdf"])
    index = _copy_index(index0, tmp_path / "index")
    (lib / "paper" / "Extra_Copy_Of_Nothing.pdf").symlink_to(PWL / "digital_currency" / "bitcoin.pdf")
    res = run_kb("ingest", str(lib), "--index", str(index), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = run_kb("list", "--json", "--sort", "added", "--index", str(index), cwd=tmp_path)
    newest = json.loads(res.stdout)[0]
    assert newest["files"] == ["lib/paper/Extra_Copy_Of_Nothing.pdf"]  # the one paper new to this index


def test_status_reports_missing_pdfs_and_uncatalogued(small: tuple[Path, Path]) -> None:
    lib, index = small
    res = run_kb("status", "--json", "--index", str(index), cwd=lib.parent)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["papers"] == 68 and data["files"] == 3
    missing = {m["title"] for m in data["missing_pdf"]}
    assert "A Style-Based Generator Architecture for Generative Adversarial Networks" in missing
    assert "Out of Time: Automated Lip Sync in the Wild" not in missing


def _copy_index(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_incremental_edit_move_delete_and_catalog_change(small: tuple[Path, Path], tmp_path: Path) -> None:
    lib0, index0 = small
    lib = make_library(tmp_path)
    index = _copy_index(index0, tmp_path / "index")
    run = lambda: run_kb("ingest", str(lib), "--index", str(index), cwd=tmp_path)  # noqa: E731
    res = run()
    assert res.returncode == 0, res.stderr
    # rename a PDF: not re-extracted (its hash is known), still linked by title
    (lib / "paper" / "FAN.pdf").rename(lib / "paper" / "Frame_Attention_Networks.pdf")
    # delete one, tick a checkbox and edit a note in the catalog
    (lib / "paper" / "ObamaNet.pdf").unlink()
    text = (lib / "README.md").read_text()
    text = text.replace("- [ ] ObamaNet", "- [x] ObamaNet").replace("(AdaIN)", "(AdaIN, edited note)")
    (lib / "README.md").write_text(text)
    res = run()
    assert res.returncode == 0, res.stderr
    assert "1 moved, 1 removed" in res.stdout, res.stdout
    assert "Loading" not in res.stderr  # no third-party progress bars leak into kb's output
    papers = {p["title"]: p for p in list_json(index, tmp_path)}
    assert papers["Frame Attention Networks for Facial Expression Recognition in Videos"]["files"] == [
        "lib/paper/Frame_Attention_Networks.pdf"
    ]
    obama = papers["ObamaNet: Photo-realistic lip-sync from text"]
    assert obama["read"] is True and obama["files"] == [] and obama["status"] == "no-pdf"
    assert "edited note" in papers["CONFIG: Controllable Neural Face Image Generation"]["note"]
    # an edited PDF (new content at the same path) is re-indexed
    target = lib / "paper" / "SyncNet.pdf"
    target.unlink()
    target.symlink_to(USERLIB / "paper" / "X2Face.pdf")
    res = run()
    assert res.returncode == 0, res.stderr
    assert "1 updated" in res.stdout


def test_failed_and_odd_files_never_crash_the_run(tmp_path: Path) -> None:
    index = tmp_path / "index"
    res = run_kb("ingest", str(ODD), "--index", str(index), "--no-embed", cwd=tmp_path)
    assert res.returncode == 1, res.stderr  # some files failed, the rest is indexed
    assert "Traceback" not in res.stderr + res.stdout
    lines = {
        Path(line.split(": ")[1]).name: line.split(": ", 2)[2]
        for line in res.stderr.splitlines()
        if line.startswith("failed: ")
    }
    assert "encrypted" in lines["libreoffice-writer-password.pdf"]
    assert "HTML" in lines["broken-html-saved-as.pdf"]
    assert "empty" in lines["broken-zero-bytes.pdf"]
    assert set(lines) >= {"broken-random-bytes.pdf", "broken-header-only.pdf", "broken-truncated.pdf"}
    papers = list_json(index, tmp_path)
    by_file = {Path(p["files"][0]).name: p for p in papers if p["files"]}
    assert len(by_file) == len(list(ODD.glob("*.pdf")))  # every file is a paper, failed ones included
    assert by_file["minimal-document.pdf"]["status"] == "ok"
    assert by_file["broken-zero-bytes.pdf"]["status"] == "failed"
    # failed files are retried on the next run; failing again the same way, nothing is rewritten
    before = (index / store.CURRENT).read_text()
    res = run_kb("ingest", str(ODD), "--index", str(index), "--no-embed", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "index up to date" in res.stdout and "failed: " in res.stderr
    assert (index / store.CURRENT).read_text() == before


def test_scans_and_garbled_pdfs_are_flagged_and_found_by_file_name(tmp_path: Path) -> None:
    folders = [PWL / "garbage_collection", PWL / "operating_systems"]
    report = ingest(IngestOptions(folders=folders, index_dir=tmp_path / "index", cwd=tmp_path, embed=False))
    assert report.failed == []
    flagged = {Path(p).name: status for p, status, _ in report.flagged}
    assert flagged == {"the_lisp_ii_garbage_collector.pdf": "no-text", "therac.pdf": "garbled"}
    import tantivy

    from kb.storage.index import open_index

    gen = store.Generation(tmp_path / "index")
    idx = open_index(gen.tantivy_dir("papers"))
    hits = idx.searcher().search(idx.parse_query("therac", ["title", "filename"]), 5).hits
    assert hits, "a garbled PDF must still be found by the words of its file name"
    assert isinstance(hits[0][1], tantivy.DocAddress)


def test_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    res = run_kb("ingest", str(tmp_path / "nope"), "--index", str(tmp_path / "i"), cwd=tmp_path)
    assert res.returncode == 2 and "not found" in res.stderr and "Traceback" not in res.stderr
    res = run_kb("ingest", "--index", str(tmp_path / "i"), cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    res = run_kb("list", "--index", str(tmp_path / "none"), cwd=tmp_path)
    assert res.returncode == 1 and "kb ingest" in res.stderr and "Traceback" not in res.stderr
    res = run_kb("ingest", str(USERLIB / "README.md"), "--index", str(tmp_path / "i"), cwd=tmp_path)
    assert res.returncode == 2 and "--catalog" in res.stderr and "Traceback" not in res.stderr


def test_corrupt_manifest_gives_a_clear_message(small: tuple[Path, Path], tmp_path: Path) -> None:
    index = _copy_index(small[1], tmp_path / "index")
    gen = store.current_generation(index)
    assert gen is not None
    (gen / store.MANIFEST).write_bytes(b"this is not sqlite" * 100)
    res = run_kb("list", "--index", str(index), cwd=tmp_path)
    assert res.returncode == 1 and "damaged" in res.stderr and "Traceback" not in res.stderr


def test_second_concurrent_ingest_says_one_runs(small: tuple[Path, Path], tmp_path: Path) -> None:
    lib, index0 = small
    index = _copy_index(index0, tmp_path / "index")
    with store.ingest_lock(index, wait=0):
        res = run_kb("ingest", str(lib), "--index", str(index), "--wait", "0.5", cwd=tmp_path)
    assert res.returncode == 3
    assert "another kb ingest" in res.stderr and "is running" in res.stderr


def _kill_at(args: list[str], cwd: Path, when: str | float) -> None:
    """Start an ingest and SIGKILL it after ``when`` seconds or when stderr shows ``when``."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if isinstance(when, float):
            time.sleep(when)
        else:
            assert proc.stderr is not None
            for line in proc.stderr:
                if when in line:
                    break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)


@pytest.mark.parametrize("when", [0.3, 2.0, "[1/", "linking", "writing the index"])
def test_kill_9_leaves_previous_index_usable_and_next_ingest_completes(
    small: tuple[Path, Path], tmp_path: Path, when: str | float
) -> None:
    lib0, index0 = small
    lib = make_library(tmp_path, SMALL + ["LandmarkGAN.pdf"])  # one new PDF to ingest
    index = _copy_index(index0, tmp_path / "index")
    before = list_json(index, tmp_path)
    _kill_at(["ingest", str(lib), "--index", str(index)], tmp_path, when)
    after_kill = list_json(index, tmp_path)  # the previous (or the new, complete) index answers
    assert len(after_kill) == len(before)
    res = run_kb("ingest", str(lib), "--index", str(index), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    papers = {p["title"]: p for p in list_json(index, tmp_path)}
    assert papers["LandmarkGAN: Synthesizing Faces from Landmarks"]["status"] == "ok"
    assert not list(index.glob(".building-*"))


def test_damaged_keyword_index_gives_one_line_and_next_ingest_repairs_it(
    small: tuple[Path, Path], tmp_path: Path
) -> None:
    lib, index0 = small
    index = _copy_index(index0, tmp_path / "index")
    gen = store.current_generation(index)
    assert gen is not None
    for segment in (gen / "passages").glob("*.idx"):
        segment.write_bytes(b"garbage")
    res = run_kb("list", "--index", str(index), cwd=tmp_path)
    assert res.returncode == 0  # the listing reads the manifest only
    res = run_kb("related", "SyncNet", "--index", str(index), cwd=tmp_path)
    assert res.returncode == 1 and "damaged" in res.stderr and "kb ingest" in res.stderr
    assert "Traceback" not in res.stderr
    res = run_kb("ingest", "--index", str(index), cwd=tmp_path)
    assert res.returncode == 0 and "up to date" not in res.stdout, res.stdout + res.stderr
    res = run_kb("related", "SyncNet", "--index", str(index), "--json", cwd=tmp_path)
    assert res.returncode == 0 and json.loads(res.stdout)["results"]
