"""Tests for kb.extract on real PDFs of ../shared/corpus (read in place) and on synthetic strings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kb.extract import (
    DEFAULT_EXTRACTOR,
    EXTRACTOR_VERSION,
    EXTRACTORS,
    clean_text,
    extract_pdf,
    garbage_ratio,
)
from tests.conftest import CORPUS, ODD, PWL, USERLIB

PAPER = USERLIB / "paper"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")


# ---------------------------------------------------------------------------------------------- API


def test_api_constants() -> None:
    assert EXTRACTORS == ("pdfium", "pypdf")
    assert DEFAULT_EXTRACTOR in EXTRACTORS
    assert set(EXTRACTOR_VERSION) == set(EXTRACTORS)
    assert all(isinstance(v, str) and v for v in EXTRACTOR_VERSION.values())


def test_unknown_extractor_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        extract_pdf(PAPER / "StyleGAN2.pdf", extractor="nope")


# ----------------------------------------------------------------------------------------- cleaning


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (
            "e\ufb03cient \ufb01le \ufb02ow o\ufb00er ba\ufb04e \ufb06ep",
            "efficient file flow offer baffle step",
        ),
        ("\ufb05", "ft"),
    ],
)
def test_ligatures(raw: str, want: str) -> None:
    assert clean_text(raw) == want


def test_ligature_only_nfkc_keeps_cjk_punctuation_and_superscripts() -> None:
    s = "（2019 年）：路径长度，x²"
    assert clean_text(s) == s


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("recog-\nnition", "recognition"),
        ("recog-  \n  nition works", "recognition works"),
        ("Therac-\n25", "Therac-25"),
        ("Time-\nSharing", "Time-Sharing"),
        ("state-of-the-\nart", "state-of-the-art"),
        ("gener\ufffeative", "generative"),  # pdfium marks the break and drops the newline
        ("Sys\ufffe\r\ntem", "System"),
        ("UNIX Time\ufffeSharing", "UNIX Time-Sharing"),
        ("re\x02visit", "revisit"),
        ("hy\u00adphen-\nation", "hyphenation"),
        ("a list:\n- item", "a list:\n- item"),  # a dash at line start is not a broken word
    ],
)
def test_hyphenation(raw: str, want: str) -> None:
    assert clean_text(raw) == want


def test_controls_surrogates_spaces_and_paragraphs() -> None:
    raw = "a\x00b\x07c \ud800d\r\nnext\u00a0\u00a0line   x\r\n\r\n\r\n\r\nnew para\ue001"
    assert clean_text(raw) == "abc d\nnext line x\n\nnew para"


def test_valid_surrogate_pair_survives() -> None:
    assert clean_text("x \ud835\udc00 y") == "x \U0001d400 y"


def test_letter_spaced_lines() -> None:
    assert clean_text("T h i s  i s\nnormal a b text") == "This is\nnormal a b text"


def test_clean_empty() -> None:
    assert clean_text("") == ""


# ------------------------------------------------------------------------------------ garbage score


def test_garbage_ratio_prose_chinese_and_noise() -> None:
    english = "The style-based GAN architecture yields state-of-the-art results in 2020 (see Fig. 3)."
    chinese = "我们分析了路径长度正则化，（2019 年）提出了改进的生成器。"
    noise = "\x01\x04#%$'&)(+*-,/.102.43652& J KILM)NPORQTS%UVMPWXOL YPZ@[]\\PZXZ@^`_=ab^bZcedgfih"
    assert garbage_ratio(english) < 0.1
    assert garbage_ratio(chinese) < 0.1
    assert garbage_ratio(noise) > 0.7
    assert garbage_ratio("(cid:12)(cid:34)(cid:56) (cid:7)") > 0.9
    assert garbage_ratio("") == 0.0


# -------------------------------------------------------------------------------------- real files


def test_pages_are_one_based_and_counted() -> None:
    ex = extract_pdf(PAPER / "StyleGAN2.pdf")
    assert ex.status == "ok" and ex.reason is None
    assert len(ex.pages) == 10
    assert ex.pages[0].startswith("Analyzing and Improving the Image Quality of StyleGAN")
    assert ex.extractor == DEFAULT_EXTRACTOR
    bitcoin = extract_pdf(PWL / "digital_currency" / "bitcoin.pdf")
    assert len(bitcoin.pages) == 9
    assert bitcoin.pages[0].startswith("Bitcoin: A Peer-to-Peer Electronic Cash System")


def test_max_pages() -> None:
    ex = extract_pdf(PAPER / "StyleGAN2.pdf", max_pages=2)
    assert len(ex.pages) == 2


def test_pdfium_hyphen_markers_cleaned() -> None:
    text = "\n".join(extract_pdf(PAPER / "StyleGAN2.pdf").pages)
    assert "\ufffe" not in text and "\r" not in text
    assert "generative image modeling" in text  # "gener\ufffeative" in the raw pdfium text


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_both_extractors_work_and_agree(extractor: str) -> None:
    ex = extract_pdf(PAPER / "StyleGAN2.pdf", extractor)
    ref = extract_pdf(PAPER / "StyleGAN2.pdf", "pdfium")
    assert ex.status == "ok" and ex.extractor == extractor and len(ex.pages) == 10

    def words(pages: list[str]) -> set[str]:
        return set(re.findall(r"[a-z]{4,}", "\n".join(pages).lower()))

    a, b = words(ex.pages), words(ref.pages)
    assert len(a & b) / len(a | b) > 0.9
    assert "path length regularizer" in " ".join(ex.pages[0].split())


@pytest.mark.parametrize(
    "rel",
    [
        "garbage_collection/the_lisp_ii_garbage_collector.pdf",
        "sublinear_algorithms/1985-Flajolet-Probabilistic-counting.pdf",
    ],
)
@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_scans_are_no_text(rel: str, extractor: str) -> None:
    ex = extract_pdf(PWL / rel, extractor)
    assert ex.status == "no-text"
    assert ex.reason == "no text layer (scanned?)"
    assert ex.pages  # the page count is still known
    # ... and every page is flagged for OCR, by either backend
    assert [(f.page, f.kind) for f in ex.needs_ocr] == [(i + 1, "no-text") for i in range(len(ex.pages))]


def test_chinese_pdfs_are_ok() -> None:
    ex = extract_pdf(PAPER / "stylegan2_chs.pdf")
    assert ex.status == "ok"
    assert any("路径长度" in p for p in ex.pages)
    assert ex.meta.first_page_title == "分析和改善 StyleGAN 的图像质量"
    assert ex.meta.arxiv == "1912.04958"
    ccf = extract_pdf(PAPER / "中国计算机学会推荐国际学术会议和期刊目录-2019.pdf")
    assert ccf.status == "ok"
    assert "中国计算机学会" in ccf.pages[0]


def test_font_without_unicode_map_is_garbled() -> None:
    ex = extract_pdf(PWL / "operating_systems" / "therac.pdf")
    assert ex.status == "garbled"
    assert "garbage" in (ex.reason or "")
    assert [f.page for f in ex.needs_ocr] == list(range(1, len(ex.pages) + 1))
    assert {f.kind for f in ex.needs_ocr} == {"garbled"}


ODD_EXPECTED = {
    "broken-bitflips.pdf": ("ok", None),  # damaged streams, but pdfium recovers the text
    "broken-header-only.pdf": ("failed", "truncated or damaged PDF (header only, no content)"),
    "broken-html-saved-as.pdf": ("failed", "not a PDF (looks like HTML)"),
    "broken-random-bytes.pdf": ("failed", "not a PDF (no %PDF header)"),
    "broken-truncated.pdf": ("failed", "truncated or damaged PDF"),
    "broken-zero-bytes.pdf": ("failed", "empty file"),
    "crazyones-pdfa.pdf": ("ok", None),
    "google-doc-document.pdf": ("ok", None),
    "habibi-rotated.pdf": ("ok", None),
    "habibi.pdf": ("ok", None),
    "imagemagick-images.pdf": ("ok", None),  # images with a "Background" label in the text layer
    "libreoffice-writer-password.pdf": ("failed", "encrypted (password required)"),
    "minimal-document.pdf": ("ok", None),
    "mistitled_outlines_example.pdf": ("ok", None),
    "multicolumn.pdf": ("ok", None),
    "output_with_metadata_pymupdf.pdf": ("ok", None),
    "pdflatex-4-pages.pdf": ("ok", None),
    "pdflatex-forms.pdf": ("ok", None),
    "unreadablemetadata.pdf": ("failed", "damaged PDF: data format error"),
    "with-attachment.pdf": ("ok", None),
}


def test_odd_list_is_complete() -> None:
    assert {p.name for p in ODD.glob("*.pdf")} == set(ODD_EXPECTED)


@pytest.mark.parametrize(("name", "expected"), sorted(ODD_EXPECTED.items()))
def test_odd_files(name: str, expected: tuple[str, str | None], capfd: pytest.CaptureFixture[str]) -> None:
    status, reason = expected
    ex = extract_pdf(ODD / name)
    assert (ex.status, ex.reason) == (status, reason)
    if status == "ok":
        assert any(p.strip() for p in ex.pages)
    # No page of these needs OCR: icon-size image pages, blank pages, Arabic, forms, damaged streams.
    assert ex.needs_ocr == []
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # backends must not print to the user's terminal


@pytest.mark.parametrize("extractor", EXTRACTORS)
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("libreoffice-writer-password.pdf", "encrypted (password required)"),
        ("broken-html-saved-as.pdf", "not a PDF (looks like HTML)"),
    ],
)
def test_odd_reasons_same_for_both_extractors(extractor: str, name: str, reason: str) -> None:
    ex = extract_pdf(ODD / name, extractor)
    assert (ex.status, ex.reason) == ("failed", reason)


def test_arabic_is_not_garbled() -> None:
    ex = extract_pdf(ODD / "habibi.pdf")
    assert ex.status == "ok"
    assert "habibi" in ex.pages[0]


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_zero_byte_file_directory_and_missing_do_not_raise(tmp_path: Path, extractor: str) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    assert extract_pdf(empty, extractor).reason == "empty file"
    ex = extract_pdf(tmp_path, extractor)
    assert ex.status == "failed" and "directory" in (ex.reason or "")
    assert extract_pdf(tmp_path / "missing.pdf", extractor).reason == "file not found"


def test_garbage_bytes_after_header_do_not_raise(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\nstartxref\n0\n%%EOF\n")
    for extractor in EXTRACTORS:
        ex = extract_pdf(junk, extractor)
        assert ex.status == "failed" and ex.reason and "\n" not in ex.reason


# ----------------------------------------------------------------------------------------- metadata


def test_meta_stylegan2() -> None:
    m = extract_pdf(PAPER / "StyleGAN2.pdf").meta
    assert "Analyzing and Improving the Image Quality of StyleGAN" in (m.first_page_title or "")
    assert m.title == "Analyzing and Improving the Image Quality of StyleGAN"
    assert m.doi == "10.1109/CVPR42600.2020.00813"
    assert m.year == 2020


def test_meta_syncnet_skips_researchgate_cover() -> None:
    m = extract_pdf(PAPER / "SyncNet.pdf").meta
    assert (m.first_page_title or "").startswith("Out of Time")
    assert m.doi == "10.1007/978-3-319-54427-4_19"


def test_meta_junk_info_title_ignored_and_wrapped_title_joined() -> None:
    m = extract_pdf(
        PAPER / "Talking_Face_Generation_by_Adversarially_Disentangled_Audio_Visual_Representation.pdf"
    ).meta
    assert m.title is None  # the info says "2019 Formatting Instructions for Authors Using LaTeX"
    assert (
        m.first_page_title
        == "Talking Face Generation by Adversarially Disentangled Audio-Visual Representation"
    )
    assert m.year == 2019


def test_meta_arxiv_ids_new_and_old_style() -> None:
    new = extract_pdf(PAPER / "GANimation.pdf").meta
    assert new.arxiv == "1807.09251" and new.year == 2018
    old = extract_pdf(PWL / "quantum_computing" / "shors_algorithm.pdf").meta
    assert old.arxiv == "quant-ph/9508027" and old.year == 1995
    assert (old.first_page_title or "").startswith("Polynomial-Time Algorithms for Prime Factorization")


def test_one_bad_page_keeps_the_others() -> None:
    """A backend exception on one page yields "" for that page, not a failed file."""
    from kb.extract import _read_pages

    def read(i: int) -> str:
        if i == 1:
            raise RuntimeError("boom")
        return f"page {i + 1}"

    pages, errors, first_error, timed_out = _read_pages(3, read, deadline=float("inf"))
    assert pages == ["page 1", "", "page 3"]
    assert (errors, first_error, timed_out) == (1, "boom", False)
    pages, _, _, timed_out = _read_pages(3, read, deadline=0.0)
    assert pages == ["", "", ""] and timed_out
