"""Passages: sized for MiniLM, page-exact, overlapping, without the reference list."""

from __future__ import annotations

from kb.chunk import OVERLAP_WORDS, WINDOW_WORDS, chunk_pages, strip_references


def _words(n: int, prefix: str = "w") -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


def test_long_page_is_cut_into_overlapping_windows_on_that_page() -> None:
    chunks = chunk_pages([_words(500)])
    assert len(chunks) >= 3
    assert all(c.page == 1 for c in chunks)
    assert all(len(c.text.split()) <= WINDOW_WORDS + 40 for c in chunks)
    first, second = chunks[0].text.split(), chunks[1].text.split()
    assert first[-OVERLAP_WORDS:] == second[:OVERLAP_WORDS]
    covered = set()
    for c in chunks:
        covered.update(c.text.split())
    assert covered == set(_words(500).split())


def test_passages_never_cross_pages_and_numbers_are_one_based() -> None:
    chunks = chunk_pages(["alpha " * 50, "", "gamma " * 50])
    assert [c.page for c in chunks] == [1, 3]
    assert [c.seq for c in chunks] == [0, 1]


def test_short_tail_is_merged_not_left_as_a_fragment() -> None:
    chunks = chunk_pages([_words(WINDOW_WORDS + 10)])
    assert len(chunks) == 1


def test_reference_list_is_dropped_but_appendix_kept() -> None:
    pages = [
        "Introduction " + _words(100),
        "Method " + _words(100),
        "Results " + _words(50) + "\nReferences\n[1] Karras et al. A style-based generator. CVPR 2019.",
        "[2] Isola et al. Image-to-image translation. CVPR 2017.\nAppendix A\nProof of the theorem "
        + _words(60),
    ]
    text = " ".join(c.text for c in chunk_pages(pages))
    assert "Karras" not in text and "Isola" not in text
    assert "Proof of the theorem" in text
    assert "Results" in text


def test_references_heading_in_first_half_is_not_taken_for_the_list() -> None:
    pages = ["Contents\nReferences\n" + _words(30), _words(100), _words(100), _words(100)]
    assert strip_references(pages) == pages


def test_chinese_text_is_chunked_by_characters() -> None:
    text = "路径长度正则化" * 100
    chunks = chunk_pages([text])
    assert len(chunks) >= 2
    assert "路径长度" in chunks[0].text
    assert " " not in chunks[0].text
