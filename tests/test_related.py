"""`kb related` on the user's real library: the must-have answers, the exclusions, and the CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kb.listing import Filters
from kb.related import RelatedError, Space, related
from kb.resolve import ResolveError
from kb.storage import store
from kb.storage.base import FLAG_ATTACHMENT, FLAG_CJK
from tests.conftest import run_kb

WAV2LIP = "a-lip-sync-expert-is-all-you-need-for-speech-to"


@pytest.fixture(scope="module")
def gen(userlib_index: Path) -> store.Generation:
    return store.Generation(userlib_index)


@pytest.fixture(scope="module")
def space(gen: store.Generation) -> Space:
    return Space(gen)


def ids(gen: store.Generation, space: Space, query: str, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.paper.id for r in related(gen, query, space=space, **kw).results]


def test_stylegan_finds_its_derivatives(gen: store.Generation, space: Space) -> None:
    top5 = ids(gen, space, "StyleGAN", limit=5)
    assert "stylegan2" in top5 and "interfacegan" in top5


def test_syncnet_finds_wav2lip(gen: store.Generation, space: Space) -> None:
    assert WAV2LIP in ids(gen, space, "SyncNet", limit=3)


def test_never_the_paper_itself_nor_its_translation(gen: store.Generation, space: Space) -> None:
    res = related(gen, "StyleGAN2", space=space, limit=30)
    assert res.resolution is not None and res.resolution.paper.id == "stylegan2"
    assert "stylegan2" not in [r.paper.id for r in res.results]
    files = [h.file for r in res.results for h in r.why.passages]
    assert not any(f and f.endswith("stylegan2_chs.pdf") for f in files)
    # the translation's passages take no part at all
    attachment_rows = {x.row for x in gen.passages_of("stylegan2")} - set(space.rows.tolist())
    assert attachment_rows, "the Chinese translation's passages should be left out"


def test_space_uses_the_precomputed_owner_and_flags(gen: store.Generation, space: Space) -> None:
    """Usable passages: no attachment, no mostly-Chinese text; each paper's rows one contiguous range."""
    owner, flags = gen.passage_owner(), gen.passage_flags()
    rows = space.rows
    assert not (flags[rows] & (FLAG_ATTACHMENT | FLAG_CJK)).any()
    assert (flags & FLAG_CJK).any(), "userlib has a Chinese translation: some rows are flagged"
    assert len(rows) == int((flags == 0).sum())
    for i in np.flatnonzero(space.has_text)[:20]:
        s, c = int(space.starts[i]), int(space.counts[i])
        part = rows[s : s + c]
        assert (owner[part] == i).all() and (np.diff(part) > 0).all()  # the paper's, in reading order
    # The mean view is built on demand and agrees with a direct mean of the usable rows.
    i = int(np.flatnonzero(space.has_text)[0])
    direct = np.asarray(gen.vectors())[rows[space.starts[i] : space.starts[i] + space.counts[i]]].sum(axis=0)
    assert np.allclose(space.means[i], direct / np.linalg.norm(direct), atol=1e-5)


def test_same_index_same_list(gen: store.Generation) -> None:
    a = [(r.paper.id, r.score) for r in related(gen, "InterFaceGAN").results]
    b = [(r.paper.id, r.score) for r in related(gen, "InterFaceGAN").results]
    assert a == b


def test_each_result_says_why(gen: store.Generation, space: Space) -> None:
    res = related(gen, "SyncNet", space=space, limit=5)
    for r in res.results:
        assert r.why.shared_terms
        if r.paper.files:
            hit = r.why.passages[0]
            assert hit.page >= 1 and hit.snippet and hit.file in r.paper.files
    scores = [r.score for r in res.results]
    assert scores == sorted(scores, reverse=True)


def test_filters_apply(gen: store.Generation, space: Space) -> None:
    res = related(gen, "StyleGAN", space=space, filters=Filters(topic="emotion"), limit=5)
    assert res.results and all(any("Emotion" in t for t in r.paper.topics) for r in res.results)
    res = related(gen, "StyleGAN", space=space, filters=Filters(year="2020"), limit=5)
    assert all(r.paper.year == 2020 for r in res.results)


def test_free_text(gen: store.Generation, space: Space) -> None:
    res = related(gen, "recognising emotion from speech audio", space=space, text=True, limit=3)
    assert res.resolution is None
    assert any("emotion" in r.paper.title.lower() for r in res.results)
    with pytest.raises(RelatedError):
        related(gen, "  ", space=space, text=True)


def test_unknown_name(gen: store.Generation, space: Space) -> None:
    with pytest.raises(ResolveError):
        related(gen, "zzqx-no-such-paper-qqq", space=space)


# ------------------------------------------------------------------ the command line


def test_cli_json(userlib_index: Path) -> None:
    r = run_kb("related", "SyncNet", "--index", str(userlib_index), "--json", "--limit", "3")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["query"] == "SyncNet"
    assert data["resolved"]["id"] == "syncnet"
    assert len(data["results"]) == 3
    assert WAV2LIP in [x["id"] for x in data["results"]]
    for x in data["results"]:
        assert set(x) >= {"id", "title", "score", "files", "topics", "why"}
        assert set(x["why"]) == {"shared_topics", "shared_terms", "passages"}
        for p in x["why"]["passages"]:
            assert set(p) == {"page", "file", "snippet"}


def test_cli_text_and_table(userlib_index: Path) -> None:
    r = run_kb("related", "Wav2Lip", "--index", str(userlib_index), "--limit", "2")
    assert r.returncode == 0, r.stderr
    assert "A Lip Sync Expert" in r.stderr  # what the name resolved to, on stderr
    assert r.stdout.count("\n 1. ") + r.stdout.startswith(" 1. ") == 1
    assert "terms:" in r.stdout
    r = run_kb("related", "--text", "speech emotion recognition", "--index", str(userlib_index), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["resolved"] is None


def test_cli_ambiguous_lists_others(userlib_index: Path) -> None:
    r = run_kb("related", "talking face generation", "--index", str(userlib_index), "--limit", "1")
    assert r.returncode == 0, r.stderr
    assert "also matched:" in r.stderr


def test_cli_errors(userlib_index: Path, tmp_path: Path) -> None:
    r = run_kb("related", "zzqx-no-such-paper-qqq", "--index", str(userlib_index))
    assert r.returncode == 1
    assert r.stderr.startswith("kb: no paper matches") and "closest titles" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_kb("related", "StyleGAN", "--index", str(userlib_index), "--limit", "0")
    assert r.returncode == 2
    r = run_kb("related", "StyleGAN", "--index", str(userlib_index), "--year", "soon")
    assert r.returncode == 2 and "bad year" in r.stderr  # a usage error, as in search and list
    r = run_kb("related", "StyleGAN", "--index", str(tmp_path / "none"))
    assert r.returncode == 1 and "kb ingest" in r.stderr
