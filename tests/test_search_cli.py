"""End-to-end `kb search` runs, as a user types them (real CLI process, shared userlib index)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import USERLIB, run_kb

ANSI = re.compile(r"\x1b\[")


def kb_search(index: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_kb("search", *args, "--index", str(index), cwd=USERLIB)


def test_lip_sync_loss_piped_plain_with_page_locations(userlib_index: Path) -> None:
    r = kb_search(userlib_index, "lip sync loss")
    assert r.returncode == 0, r.stderr
    titles = [line for line in r.stdout.splitlines() if re.match(r"\s*\d+\. ", line)]
    assert "A Lip Sync Expert Is All You Need" in " ".join(titles[:3]) and "Out of Time" in " ".join(
        titles[:3]
    )
    assert "paper/SyncNet.pdf:" in r.stdout and re.search(r"paper/\S+\.pdf:\d+", r.stdout)
    assert not ANSI.search(r.stdout) and "**" not in r.stdout


def test_json_shape(userlib_index: Path) -> None:
    r = kb_search(userlib_index, "speech emotion recognition", "--json", "--limit", "5")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["query"] == "speech emotion recognition" and data["mode"] == "hybrid"
    assert len(data["results"]) == 5
    keys = {"id", "title", "alias", "score", "year", "venue", "topics", "read", "files", "hits"}
    for res in data["results"]:
        assert keys <= set(res)
        for h in res["hits"]:
            assert {"page", "file", "snippet", "field"} <= set(h)
            assert h["field"] in {"text", "title", "alias", "note", "topic", "venue"}
    catalog_only = [x for x in data["results"] if not x["files"]]
    assert catalog_only and catalog_only[0]["id"] == "f-similarity-preservation-loss-for-soft-labels-a"
    assert all(h["field"] != "text" for h in catalog_only[0]["hits"])


def test_chinese_query_and_filters_from_the_command_line(userlib_index: Path) -> None:
    r = kb_search(userlib_index, "多模态合成", "--mode", "keyword", "--json")
    assert json.loads(r.stdout)["results"][0]["id"] == "talking-face-generation-with-expression-tailored"
    r = kb_search(userlib_index, "face", "--year", "2019", "--venue", "ICCV", "--unread", "--json")
    res = json.loads(r.stdout)["results"]
    assert res and all(x["year"] == 2019 and "ICCV" in x["venue"] and x["read"] is False for x in res)


def test_fuzzy_is_marked(userlib_index: Path) -> None:
    r = kb_search(userlib_index, "recogniton", "--mode", "keyword")
    assert r.returncode == 0 and "~fuzzy" in r.stdout and "recogniton" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        [""],
        ['"'],
        ["the of and"],
        ["foo:bar"],
        ["year:[2018 TO"],
        ["x" * 10_000],
        ["gan", "--mode", "fast"],
        ["gan", "--year", "soon"],
    ],
)
def test_bad_queries_exit_2_with_one_line(userlib_index: Path, args: list[str]) -> None:
    r = kb_search(userlib_index, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_garbage_and_unbalanced_quote_are_best_effort(userlib_index: Path) -> None:
    r = kb_search(userlib_index, '"lip sync', "--mode", "keyword")
    assert r.returncode == 0 and "unbalanced quote" in r.stderr and "Lip Sync" in r.stdout
    r = kb_search(userlib_index, "@@## ))(( qqzzxx~~ ÿÿ", "--mode", "keyword")
    assert r.returncode in (0, 1, 2) and "Traceback" not in r.stderr


def test_no_index_says_run_ingest(tmp_path: Path) -> None:
    r = run_kb("search", "gan", "--index", str(tmp_path / "none"))
    assert r.returncode == 1 and "kb ingest" in r.stderr and "Traceback" not in r.stderr


def test_keyword_search_imports_no_numpy_onnx_or_torch(userlib_index: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from kb.cli import app\n"
        f"try: app(['search', 'lip sync', '--mode', 'keyword', '--index', {str(userlib_index)!r}])\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in ('onnxruntime', 'torch', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_nothing_found_exits_1_also_with_json(userlib_index: Path) -> None:
    r = kb_search(userlib_index, "zzqqxxyyww", "--mode", "keyword", "--json")
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["results"] == []
    r = kb_search(userlib_index, "zzqqxxyyww", "--mode", "keyword")
    assert r.returncode == 1 and "no papers match" in r.stderr
    # only fuzzy candidates, none of which matched: one message, not "showing similar spellings" too
    assert "similar spellings" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["search", "lip sync"],
        ["search", "lip sync", "--json"],
        ["related", "StyleGAN"],
        ["topics"],
        ["status"],
    ],
)
def test_closed_pipe_is_not_an_error(userlib_index: Path, args: list[str]) -> None:
    """`kb ... | head` exits 0. ``head -n 0`` closes the pipe at once, so every write meets the closed
    pipe (with ``head -1`` whether a later write does is a race)."""
    import shlex
    import subprocess
    import sys

    cmd = shlex.join([sys.executable, "-m", "kb", *args, "--index", str(userlib_index)])
    r = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{cmd} | head -n 0"],
        cwd=USERLIB,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
