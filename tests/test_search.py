"""Tests of kb.search through ``kb.Library.search`` on the real userlib index (shared, read-only fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

import kb.search as ks
from kb import Library, UsageError
from kb import query as qmod
from kb.storage.store import open_generation

WAV2LIP = "a-lip-sync-expert-is-all-you-need-for-speech-to"
SER = {
    "speech-emotion-recognition-using-convolutional",
    "towards-discriminative-representation-learning",
    "acoustic-emotion-recognition-a-benchmark",
    "f-similarity-preservation-loss-for-soft-labels-a",
}


def search(index: Path, q: str, **kw):  # type: ignore[no-untyped-def]
    return Library(index).search(q, **kw)


def ids(index: Path, q: str, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.paper.id for r in search(index, q, **kw).results]


# ---------------------------------------------------------------- query parsing (no index)


def test_parse_operators_fields_and_phrases() -> None:
    q = qmod.parse('"lip sync" +expert -gan title:wild year:[2018 TO 2020] read:yes')
    assert [(c.text, c.occur, c.field, c.phrase) for c in q.clauses] == [
        ("lip sync", "should", None, True),
        ("expert", "must", None, False),
        ("gan", "not", None, False),
        ("wild", "should", "title", False),
    ]
    assert q.year == (2018, 2020) and q.read is True
    q = qmod.parse("lip AND sync NOT gan OR face")
    assert [c.occur for c in q.clauses] == ["must", "must", "not", "should"]


def test_parse_hyphenated_word_stays_one_clause_not_a_phrase() -> None:
    (c,) = qmod.parse("Therac-25").clauses
    assert c.text == "Therac-25" and not c.phrase and c.occur == "should"


@pytest.mark.parametrize(
    "bad", ["", "   ", "the of and", "foo:bar", "year:20x", "read:maybe", "-gan", "x" * 10_000]
)
def test_parse_rejects_bad_queries_with_a_message(bad: str) -> None:
    with pytest.raises(qmod.QueryError) as exc:
        qmod.parse(bad)
    assert "\n" not in str(exc.value) and str(exc.value)


def test_parse_unbalanced_quote_is_best_effort() -> None:
    q = qmod.parse('"lip sync')
    assert q.clauses[0].phrase and q.clauses[0].text == "lip sync" and q.warnings


def test_parse_drops_stop_words_in_longer_queries() -> None:
    assert [c.text for c in qmod.parse("the lip of sync").clauses] == ["lip", "sync"]


# ---------------------------------------------------------------- fusion (no index)


def test_rrf_constant_comes_from_the_tuning_passed_in() -> None:
    kw = {"a": 3.0, "b": 2.0, "c": 1.0}
    sem = {"c": 0.9, "b": 0.5, "a": 0.1}
    fused = {k: ks._fuse(kw, sem, ks.Tuning(fusion="rrf", rrf_k=k)) for k in (10, 60)}
    assert fused[10]["a"] == pytest.approx(1 / 11 + 1 / 13)
    assert fused[60]["a"] == pytest.approx(1 / 61 + 1 / 63)


def test_convex_fusion_keeps_a_clear_keyword_winner() -> None:
    # "a" is far ahead on keywords and a close second on meaning: it must stay first.
    kw = {"a": 10.0, "b": 1.0}
    sem = {"b": 0.60, "a": 0.59, **{f"x{i}": 0.2 for i in range(5)}}
    fused = ks._fuse(kw, sem, ks.Tuning(fusion="cc", alpha=0.5))
    assert max(fused, key=fused.__getitem__) == "a"


# ---------------------------------------------------------------- ranking on the real library


def test_must_work_examples(userlib_index: Path) -> None:
    assert {WAV2LIP, "syncnet"} <= set(ids(userlib_index, "lip sync loss")[:3])
    assert ids(userlib_index, "face swapping")[0] == "fsgan-subject-agnostic-face-swapping-and"
    assert set(ids(userlib_index, "speech emotion recognition")[:5]) >= SER


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_each_mode_finds_wav2lip(userlib_index: Path, mode: str) -> None:
    assert WAV2LIP in ids(userlib_index, "lip sync expert discriminator", mode=mode)[:3]


def test_results_are_papers_once_with_pages_and_highlights(userlib_index: Path) -> None:
    resp = search(userlib_index, "lip sync loss", mode="keyword")
    got = [r.paper.id for r in resp.results]
    assert len(got) == len(set(got)) and len(got) <= 10
    top = resp.results[0]
    text_hits = [h for h in top.hits if h.field == "text"]
    assert 1 <= len(top.hits) <= 3 and text_hits
    for h in text_hits:
        assert h.page >= 1 and h.file.endswith(".pdf")
        assert h.highlights and all(
            h.snippet[s:e].lower().startswith(("lip", "sync", "loss")) for s, e in h.highlights
        )


def test_catalog_only_paper_found_through_note_in_chinese(userlib_index: Path) -> None:
    resp = search(userlib_index, "多模态合成", mode="keyword")
    top = resp.results[0]
    assert top.paper.id == "talking-face-generation-with-expression-tailored" and not top.paper.files
    assert top.hits[0].field == "note" and "多模态合成" in top.hits[0].snippet


def test_chinese_phrase_finds_pages_of_the_translation(userlib_index: Path) -> None:
    top = search(userlib_index, "路径长度", mode="keyword").results[0]
    assert top.paper.id == "stylegan2"
    hit = top.hits[0]
    assert hit.file.endswith("stylegan2_chs.pdf") and hit.page >= 1
    s, e = hit.highlights[0]
    assert hit.snippet[s:e] == "路径长度"


def test_semantic_finds_paraphrase_sharing_no_words(userlib_index: Path) -> None:
    assert (
        "anomaly-detection-in-video-sequence-with"
        in ids(userlib_index, "spotting unusual events in surveillance footage", mode="semantic")[:3]
    )


def test_fields_and_filters(userlib_index: Path) -> None:
    assert ids(userlib_index, "venue:ACCV", mode="keyword") == ["syncnet"]
    got = ids(userlib_index, "face year:2019", mode="keyword")
    assert got and all(
        search(userlib_index, "face year:2019", mode="keyword").results[i].paper.year == 2019
        for i in range(len(got))
    )
    assert "syncnet" not in ids(userlib_index, "lip sync read:no", mode="keyword")
    assert "syncnet" not in ids(userlib_index, "lip sync -syncnet", mode="keyword")
    unread = search(userlib_index, "emotion", read=False, topic="audio emotion")
    assert unread.results and all(r.paper.read is False for r in unread.results)
    assert {r.paper.id for r in unread.results} <= SER
    assert (
        ids(userlib_index, "title:gan title:inversion +survey", mode="keyword")[0] == "gan-inversion-a-survey"
    )


def test_typo_is_fuzzy_and_marked(userlib_index: Path) -> None:
    resp = search(userlib_index, "recogniton", mode="keyword")
    assert resp.fuzzy_terms == ["recogniton"]
    assert resp.results and all(r.fuzzy for r in resp.results)
    assert any("emotion-recognition" in r.paper.id for r in resp.results[:3])
    exact = search(userlib_index, "recognition", mode="keyword")
    assert not exact.fuzzy_terms and not any(r.fuzzy for r in exact.results)


def test_hyphenated_term_does_not_require_the_phrase(userlib_index: Path) -> None:
    assert "fast-face-swap-using-convolutional-neural" in ids(userlib_index, "face-swap", mode="keyword")[:3]
    # "Wav2Lip-GAN" is not written as such anywhere; the parts still find the paper.
    assert ids(userlib_index, "SyncNet-ish", mode="keyword")


def test_bad_mode_and_limit_are_usage_errors(userlib_index: Path) -> None:
    with pytest.raises(UsageError):
        search(userlib_index, "gan", mode="fast")
    with pytest.raises(UsageError):
        search(userlib_index, "gan", limit=0)


def test_onnx_query_vectors_agree_with_ingest_vectors(userlib_index: Path) -> None:
    from kb.embed import OnnxEncoder, SentenceTransformerEncoder

    gen = open_generation(userlib_index)
    texts = [
        "lip sync loss",
        "多模态合成",
        "A Style-Based Generator Architecture for Generative Adversarial Networks",
    ]
    onnx = OnnxEncoder(gen.model_dir(), gen.settings["model_version"]).encode(texts)
    ref = SentenceTransformerEncoder().encode(texts)
    assert ((onnx * ref).sum(axis=1) > 0.999).all()


def test_semantic_snippet_rows_belong_to_their_paper_best_first(userlib_index: Path) -> None:
    """The per-row owner array (not a per-row id lookup) groups passages: every snippet row found for
    a paper is one of that paper's passages, best first."""
    gen = open_generation(userlib_index)
    sem = ks._semantic(ks._Engine(gen), "lip sync discriminator for talking faces", None, ks.Tuning())
    assert sem.best_rows and len(sem.scores) == len(gen.papers())
    for pid, rows in list(sem.best_rows.items())[:10]:
        own = {x.row for x in gen.passages_of(pid)}
        assert {r for _s, r in rows} <= own
        scores = [s for s, _r in rows]
        assert scores == sorted(scores, reverse=True) and len(rows) <= ks.MAX_HITS
    assert max(sem.scores, key=lambda k: sem.scores[k]) == WAV2LIP
