"""The storage contract: what every implementation of ``kb.storage.base.Storage`` must do.

Each test runs once per implementation in ``IMPLEMENTATIONS`` (today only the embedded one: SQLite,
numpy and tantivy in the index directory). A second backend is added by appending its factory
there; it is done when this file passes for it unchanged. The data is small and synthetic (no PDFs,
no model), so the suite runs in about a second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kb.errors import LockedError, NoIndexError
from kb.models import CatalogRef, CatalogRow, FileRow, Link, Paper, Passage
from kb.storage.base import FLAG_ATTACHMENT, GenerationData, Storage, Terms
from kb.storage.index import analyze
from kb.storage.store import EmbeddedStorage

IMPLEMENTATIONS: dict[str, Callable[[], Storage]] = {"embedded": EmbeddedStorage}
BOOSTS = {"title": 3.0, "alias": 3.0, "note": 2.0, "topic": 2.0, "filename": 1.5, "venue": 1.0,
          "authors": 1.0, "abstract": 1.0}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def storage(request: pytest.FixtureRequest) -> Storage:
    return IMPLEMENTATIONS[request.param]()


def _unit(seed: int, n: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def generation(tag: str = "a") -> GenerationData:
    """Three papers: two with a PDF (one with a translation attached), one catalog-only and Chinese."""
    papers = [
        Paper(id="syncnet", title="Out of Time: Automated Lip Sync in the Wild", alias="SyncNet",
              topics=[["Lip reading"]], read=True, venue="ACCV", year=2016, files=["/lib/syncnet.pdf"],
              catalog=CatalogRef("/lib/README.md", 12), status="ok", pages=2,
              links=[Link("PDF", "./paper/syncnet.pdf")]),
        Paper(id="stylegan2", title="Analyzing and Improving the Image Quality of StyleGAN",
              alias="StyleGAN2", topics=[["GAN", "StyleGAN"]], read=False, year=2020,
              files=["/lib/stylegan2.pdf", "/lib/stylegan2_chs.pdf"], status="ok", pages=3,
              catalog=CatalogRef("/lib/README.md", 20)),
        Paper(id=f"talking-face-{tag}", title="Talking face generation", note="多模态合成 speech to video",
              topics=[["Talking face"]], read=None),
    ]
    texts = [
        ("syncnet", 1, "/lib/syncnet.pdf", "audio video synchronisation of a talking head, lip sync error"),
        ("syncnet", 2, "/lib/syncnet.pdf", "the network learns a joint embedding of sound and mouth images"),
        ("stylegan2", 1, "/lib/stylegan2.pdf", "style based generator artifacts removed by demodulation"),
        ("stylegan2", 2, "/lib/stylegan2.pdf", "path length regularization makes the generator smoother"),
        ("stylegan2", 1, "/lib/stylegan2_chs.pdf", "路径长度正则化使生成器更平滑"),
    ]
    seq: dict[str, int] = {}
    passages = []
    for row, (pid, page, file, text) in enumerate(texts):
        seq[pid] = seq.get(pid, -1) + 1
        passages.append(Passage(paper_id=pid, seq=seq[pid], page=page, text=text, file=file, row=row))
    files = [
        FileRow("/lib/syncnet.pdf", "s1", 100, 1, "ok", None, "syncnet", 2, "pdf-link", 1.0),
        FileRow("/lib/stylegan2.pdf", "s2", 200, 2, "ok", None, "stylegan2", 3, "pdf-link", 1.0),
        FileRow("/lib/stylegan2_chs.pdf", "s3", 300, 3, "ok", None, "stylegan2", 1, "other-link", 0.9,
                unsure=True, attachment=True),
        FileRow("/lib/broken.pdf", "s4", 5, 4, "failed", "not a PDF (HTML page)"),
    ]
    return GenerationData(
        settings={"model_version": "fake@1", "note": tag},
        papers=papers,
        files=files,
        passages=passages,
        catalogs=[CatalogRow("/lib/README.md", "c1", 1000, 9, entries=3, warnings=["a warning"])],
        vectors=_unit(1, len(passages)),
        paper_vectors=_unit(2, len(papers)),
        owner=np.array([0, 0, 1, 1, 1], np.int32),
        flags=np.array([0, 0, 0, 0, FLAG_ATTACHMENT], np.uint8),
    )


def terms(text: str, **kw: object) -> Terms:
    return Terms(stems=analyze("en", text), **kw)  # type: ignore[arg-type]


def test_no_index_until_one_is_written(storage: Storage, tmp_path: Path) -> None:
    assert storage.live(tmp_path / "index") is None
    with pytest.raises(NoIndexError):
        storage.open(tmp_path / "index")


def test_what_is_written_reads_back(storage: Storage, tmp_path: Path) -> None:
    root = tmp_path / "index"
    data = generation()
    name = storage.write(root, data)
    assert storage.live(root) == name
    gen = storage.open(root)
    try:
        assert gen.name == name and gen.settings["note"] == "a"
        assert gen.papers() == data.papers  # every field, in vector-row order
        assert gen.paper("syncnet") == data.papers[0] and gen.paper("nope") is None
        assert sorted(gen.files(), key=lambda f: f.path) == sorted(data.files, key=lambda f: f.path)
        assert gen.catalogs() == data.catalogs
        assert gen.passage_count() == 5
        assert gen.passages([4, 0, 99]) == {0: data.passages[0], 4: data.passages[4]}
        assert gen.passage_papers([1, 2]) == {1: "syncnet", 2: "stylegan2"}
        assert [p.row for p in gen.passages_of("stylegan2")] == [2, 3, 4]
        np.testing.assert_allclose(gen.vectors(), data.vectors, atol=1e-3)
        np.testing.assert_allclose(gen.paper_vectors(), data.paper_vectors, atol=1e-3)
        assert gen.passage_owner().tolist() == [0, 0, 1, 1, 1]
        assert gen.passage_flags().tolist() == [0, 0, 0, 0, FLAG_ATTACHMENT]
        gen.verify()
    finally:
        gen.close()


def test_keyword_search_over_fields_and_text(storage: Storage, tmp_path: Path) -> None:
    root = tmp_path / "index"
    storage.write(root, generation())
    gen = storage.open(root)
    kw = gen.keyword
    try:
        # fields, and their boosts: "video" is in one paper's note (weight 2) and one's title (weight 3)
        assert set(kw.paper_scores([("should", terms("lip sync"))], BOOSTS)) == {"syncnet"}
        assert set(kw.paper_scores([("should", terms("accv", field="venue"))], BOOSTS)) == {"syncnet"}
        assert kw.paper_scores([("should", terms("syncnet", field="title"))], BOOSTS) == {}
        base = kw.paper_scores([("should", terms("generation"))], {"title": 1.0})
        boosted = kw.paper_scores([("should", terms("generation"))], {"title": 3.0})
        assert boosted["talking-face-a"] == pytest.approx(3 * base["talking-face-a"], rel=1e-4)
        # the PDF text: rows, best first; a field clause never matches passages
        hits = kw.passage_hits([("should", terms("generator"))], 10)
        assert {r for _s, r in hits} == {2, 3}
        assert [s for s, _r in hits] == sorted((s for s, _r in hits), reverse=True)
        assert kw.passage_hits([("should", terms("generator", field="title"))], 10) == []
        # phrases, exclusions, Chinese runs, typos
        assert {r for _s, r in kw.passage_hits([("should", terms("path length", phrase=True))], 10)} == {3}
        assert kw.passage_hits([("should", terms("length path", phrase=True))], 10) == []
        only_not = kw.paper_scores([("not", terms("lip"))], BOOSTS)
        assert "syncnet" not in only_not and "stylegan2" in only_not
        assert {r for _s, r in kw.passage_hits([("should", Terms(stems=[], han=["路径长度"]))], 10)} == {4}
        zh = Terms(stems=[], han=["多模态"])
        assert set(kw.paper_scores([("should", zh)], BOOSTS)) == {"talking-face-a"}
        typo = Terms(stems=analyze("en", "generatr"), fuzzy=analyze("en", "generatr"))
        assert {r for _s, r in kw.passage_hits([("should", typo)], 10)} == {2, 3}
        # document frequencies
        assert kw.doc_freq(analyze("en", "generator")[0], ["text"]) == 2
        assert kw.doc_freq(analyze("en", "sync")[0], ["title"]) == 1
        assert kw.doc_freq("zzzz", ["title", "text"]) == 0
        assert kw.passage_docs() == 5
    finally:
        gen.close()


def test_a_new_generation_replaces_the_old_one_atomically(storage: Storage, tmp_path: Path) -> None:
    root = tmp_path / "index"
    first = storage.write(root, generation("a"))
    reader = storage.open(root)
    second = storage.write(root, generation("b"))
    assert second != first and storage.live(root) == second
    # a reader that opened the old generation keeps reading it whole
    assert reader.settings["note"] == "a" and reader.papers()[2].id == "talking-face-a"
    reader.close()
    fresh = storage.open(root)
    assert fresh.settings["note"] == "b" and fresh.papers()[2].id == "talking-face-b"
    fresh.close()


def test_one_ingest_at_a_time(storage: Storage, tmp_path: Path) -> None:
    root = tmp_path / "index"
    assert not storage.ingesting(root)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with storage.lock(root, wait=0):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(10)
        assert storage.ingesting(root)
        waited: list[bool] = []
        with (
            pytest.raises(LockedError, match="another kb ingest"),
            storage.lock(root, wait=0.3, on_wait=lambda: waited.append(True)),
        ):
            pass
        assert waited == [True]
    finally:
        release.set()
        t.join()
    assert not storage.ingesting(root)
    with storage.lock(root, wait=0):
        pass
