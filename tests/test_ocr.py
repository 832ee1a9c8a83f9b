"""Tests for the per-page OCR detector (kb.extract.pages_needing_ocr) and the OCR engine (kb.ocr).

The detector runs on real corpus PDFs (the scans and garbled files are flagged, good pages never are);
the engine reads one real scanned page with the real rapidocr models, offline.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from kb import ocr
from kb.extract import _page_flag, extract_pdf, pages_needing_ocr
from kb.models import PageFlag
from tests.conftest import CORPUS, ODD, PWL, USERLIB

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")

FLAJOLET = PWL / "sublinear_algorithms" / "1985-Flajolet-Probabilistic-counting.pdf"
PAPER = USERLIB / "paper"


# ------------------------------------------------------------------------------- detector: real pages


@pytest.mark.parametrize(
    ("rel", "kind", "status"),
    [
        ("garbage_collection/the_lisp_ii_garbage_collector.pdf", "no-text", "no-text"),
        ("sublinear_algorithms/1985-Flajolet-Probabilistic-counting.pdf", "no-text", "no-text"),
        ("operating_systems/therac.pdf", "garbled", "garbled"),
        ("datastores/database-metatheory--asking-the-big-queries.pdf", "garbled", "garbled"),
        ("security/ids-evasion-ptacek-newsham.pdf", "garbled", "garbled"),
    ],
)
def test_scanned_and_garbled_files_have_every_page_flagged(rel: str, kind: str, status: str) -> None:
    ex = extract_pdf(PWL / rel)
    assert ex.status == status  # the document status keeps its meaning
    assert [f.page for f in ex.needs_ocr] == list(range(1, len(ex.pages) + 1))
    assert {f.kind for f in ex.needs_ocr} == {kind}
    assert all(f.reason for f in ex.needs_ocr)


def test_one_image_page_in_a_good_paper_is_flagged_alone() -> None:
    # Page 5 of the Elle paper is a page of text embedded as one image: the only page OCR should read.
    ex = extract_pdf(
        PWL / "datastores" / "elle-inferring-isolation-anomalies-from-experimental-observations.pdf"
    )
    assert ex.status == "ok"
    assert [(f.page, f.kind) for f in ex.needs_ocr] == [(5, "no-text")]
    assert "image covering 100%" in ex.needs_ocr[0].reason


@pytest.mark.parametrize(
    "path",
    [
        PAPER / "SyncNet.pdf",
        PAPER / "StyleGAN2.pdf",  # a page with 4% private-use glyphs (math symbols)
        PAPER / "InterFaceGAN.pdf",  # a page of formulas: garbage_ratio 0.36
        PAPER / "stylegan2_chs.pdf",  # Chinese with Latin terms: vowel share 0.18-0.27, figure pages
        PAPER / "中国计算机学会推荐国际学术会议和期刊目录-2019.pdf",  # a 34-character Chinese cover page
        PWL / "information_retrieval" / "the-pagerank-citation-ranking-bringing-order-to-the-web.pdf",
        PWL / "data_structures" / "lca-revisited.pdf",  # up to 10% unmapped glyphs
        PWL / "data_structures" / "epidemic-broadcast-trees.pdf",  # a blank page
        PWL / "sublinear_algorithms" / "An-Elementary-Proof-of-a-Theorem-of-Johnson-and-Lindenstrauss.pdf",
        PWL / "datastores" / "tao-facebook-distributed-datastore.pdf",  # 14% unmapped glyphs on page 1
    ],
    ids=lambda p: p.name[:40],
)
def test_good_text_layers_are_never_flagged(path: Path) -> None:
    ex = extract_pdf(path)
    assert ex.status == "ok"
    assert ex.needs_ocr == []


def test_failed_files_flag_nothing() -> None:
    ex = extract_pdf(ODD / "broken-html-saved-as.pdf")
    assert ex.status == "failed" and ex.needs_ocr == []


# ------------------------------------------------------------------------------- detector: unit rules

PROSE = (
    "The method we propose here is probabilistic in nature since its result depends on the "
    "particular hashing function used and on the particular data on which it operates. "
) * 4


def _caesar(s: str, k: int) -> str:
    return "".join(
        chr((ord(c) - base + k) % 26 + base) if c.isascii() and c.isalpha() else c
        for c in s
        for base in [ord("a") if c.islower() else ord("A")]
    )


def test_page_rules() -> None:
    assert _page_flag(PROSE, 0.0) is None
    assert _page_flag(PROSE, 1.0) is None  # text over an image (a scan with a text layer) is fine
    assert _page_flag("", 1.0) == ("no-text", "0 characters of text over an image covering 100% (scan)")
    assert _page_flag("Figure 3", 0.2) is None  # a figure page: images cover little of it
    assert _page_flag("", 0.0) is None  # a blank page: nothing to read
    cid = " ".join(f"(cid:{n})" for n in range(60))
    assert _page_flag(cid, 0.0)[0] == "garbled"  # type: ignore[index]
    pua = "".join(chr(0xE000 + i % 50) for i in range(200)) + " x" * 20
    assert _page_flag(pua, 0.0)[0] == "garbled"  # type: ignore[index]
    shifted = _page_flag(_caesar(PROSE, 3), 0.0)  # a font whose codes are shifted: letters, no words
    assert shifted is not None and shifted[0] == "garbled" and "vowels" in shifted[1]
    assert _page_flag("路径长度正则化" * 40 + " StyleGAN AdaIN W space" * 10, 0.0) is None


def test_garbled_document_takes_its_borderline_pages_along() -> None:
    garbled = "\x05\x04\x07\x06 Kb\x81Hc\x92Cd*`e \x8e?\x8f\x90x#qft " * 40
    # Readable figure labels over unmapped body text: not garbage enough alone ...
    borderline = "Mirror Turntable Plunger Flattener Counterweight target " * 5 + "\x05\x86\x07b\x01" * 20
    assert _page_flag(borderline, 0.0) is None
    # ... but a document whose other pages are garbled has the same broken font on it.
    flags = pages_needing_ocr([garbled, borderline, garbled], [0.0, 0.0, 0.0])
    assert [f.page for f in flags] == [1, 2, 3]
    assert "other pages are garbled" in flags[1].reason
    assert pages_needing_ocr([PROSE, borderline, PROSE], [0.0] * 3) == []


def test_flags_are_dataclasses_with_one_based_pages() -> None:
    flags = pages_needing_ocr([PROSE, ""], [0.0, 0.9])
    assert flags == [PageFlag(page=2, kind="no-text", reason=flags[0].reason)]


# ------------------------------------------------------------------------------- reading order


def _line(text: str, x0: float, y0: float, x1: float, y1: float) -> ocr.OcrLine:
    return ocr.OcrLine(text=text, score=0.99, box=(x0, y0, x1, y1))


def test_two_columns_are_read_one_after_the_other() -> None:
    lines = [_line("A Title Across The Page", 100, 10, 900, 40)]
    for k in range(4):
        y = 60 + 30 * k
        lines.append(_line(f"left{k}", 50, y, 480, y + 20))
        lines.append(_line(f"right{k}", 520, y, 950, y + 20))
    lines.append(_line("A wide caption under both columns", 60, 300, 940, 320))
    lines.append(_line("left4", 50, 340, 480, 360))
    lines.append(_line("right4", 520, 340, 950, 360))
    text = ocr.lines_to_text(lines, 1000.0)
    assert text.split("\n") == [
        "A Title Across The Page",
        *[f"left{k}" for k in range(4)],
        *[f"right{k}" for k in range(4)],
        "A wide caption under both columns",
        "left4",
        "right4",
    ]


def test_two_column_lines_joined_by_the_detector_are_split_at_the_gutter() -> None:
    import numpy as np

    img = np.full((200, 1000), 255, dtype=np.uint8)
    for x in range(50, 950, 12):  # "words": 8 px of ink, 4 px of space, across both columns ...
        if not 470 <= x < 530:  # ... but not in the 60 px gutter
            img[100:120, x : x + 8] = 0
    img[150:170, 50:950] = 0  # a full-width rule: ink across the middle
    joined = _line("end of the left line start of the right line", 50, 100, 950, 120)
    joined.gap = ocr._blank_band(img, joined.box)
    assert joined.gap is not None and joined.gap[0] <= 500 <= joined.gap[1]
    assert ocr._blank_band(img, (50, 150, 950, 170)) is None
    lines = [joined]
    for k in range(3):
        lines += [
            _line(f"left{k}", 50, 10 + 30 * k, 470, 30 + 30 * k),
            _line(f"right{k}", 530, 10 + 30 * k, 950, 30 + 30 * k),
        ]
    lines += [_line("left9", 50, 130, 470, 150), _line("right9", 530, 130, 950, 150)]
    assert ocr.lines_to_text(lines, 1000.0).split("\n") == [
        "left0",
        "left1",
        "left2",
        "end of the left line",
        "left9",
        "right0",
        "right1",
        "right2",
        "start of the right line",
        "right9",
    ]


def test_single_column_rows_joined_and_hyphens_cleaned() -> None:
    lines = [
        _line("Probabilistic counting of recog-", 50, 10, 600, 30),
        _line("nition tasks", 50, 40, 300, 60),
        _line("Table", 50, 80, 120, 100),
        _line("1.5", 400, 82, 450, 99),  # same row, separate box
    ]
    assert ocr.lines_to_text(lines, 1000.0) == "Probabilistic counting of recognition tasks\nTable 1.5"


# ------------------------------------------------------------------------------- engine (real OCR)


def test_engine_uses_only_bundled_models() -> None:
    params = ocr.engine_params()
    root = ocr.model_dir()
    paths = [Path(params[f"{task}.model_path"]) for task in ocr.MODEL_FILES]
    assert all(p.is_file() and p.parent == root for p in paths)
    assert params["Global.use_cls"] is False
    assert ocr.ocr_version(200).endswith("-200dpi")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection (a model download) fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_scanned_page_is_read_offline(no_network: None) -> None:
    # Page 1 of Flajolet & Martin (1985), a scan without a text layer: words checked on the page image.
    res = ocr.ocr_page(FLAJOLET, 1)
    assert res.error is None
    words = set(re.findall(r"[a-z]+", res.text.lower()))
    title_authors = ("probabilistic", "counting", "algorithms", "applications", "flajolet", "martin")
    abstract_section1 = ("rocquencourt", "distinct", "elements", "estimate", "storage", "introduction")
    for w in title_authors + abstract_section1:
        assert w in words, (w, res.text[:500])
    assert res.confidence > 0.85
    assert res.words > 150
    assert res.dpi == ocr.DEFAULT_DPI


def test_bad_page_numbers_are_one_line_errors() -> None:
    res = ocr.ocr_page(FLAJOLET, 99)
    assert res.text == "" and res.error == "cannot render: page 99 out of range (1-28)"


def test_worker_kills_a_page_over_its_time_limit() -> None:
    worker = ocr.OcrWorker(timeout_s=0.5)
    try:
        t0 = time.monotonic()
        res = worker.ocr(FLAJOLET, 2)
        assert res.error == "OCR took over 0.5 s"
        assert res.text == ""
        assert time.monotonic() - t0 < 30  # the caller is not held up by the hung page
        assert worker._pool is None  # the child was killed; the next page starts a fresh one
    finally:
        worker.close()
