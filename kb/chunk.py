"""Split page texts into passages sized for the embedding model.

all-MiniLM-L6-v2 truncates its input at 256 word pieces; English prose runs about 1.3-1.5 pieces per
word, so a window of ~160 words keeps a passage whole inside the model while staying small enough
for a snippet to show the reader why it matched. Windows overlap so a sentence cut at a boundary
is still whole in one passage. Passages never cross a page: every hit can name its exact page.

Reference lists are dropped: they are full of other papers' titles and would make every paper
look related to the ones it cites and match queries for those titles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHUNKER_VERSION = "1"
WINDOW_WORDS = 160
OVERLAP_WORDS = 30
MIN_TAIL_WORDS = 40  # a shorter page tail is merged into the previous passage of the page
HAN_CHARS_PER_WORD = 2  # a Han character carries about half an English word's meaning

_REF_HEADING = re.compile(
    r"^\s*(?:\d{1,2}\.?\s*|[IVX]{1,4}\.\s*)?"
    r"(references|bibliography|works cited|literature cited|参考文献)\s*:?\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_AFTER_REFS = re.compile(
    r"^\s*(?:[A-Z]\.?\s+|\d{1,2}\.?\s*)?(appendix|appendices|supplementary material|supplemental material)\b",
    re.IGNORECASE | re.MULTILINE,
)
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass
class Chunk:
    """A passage before it is tied to a paper: its text and the page range it covers."""

    seq: int
    page: int
    text: str


def strip_references(pages: list[str]) -> list[str]:
    """Return the pages with the reference list blanked out.

    The list starts at a "References" heading found in the second half of the document (a heading
    in the first half is more likely a table of contents entry) and runs to an appendix heading or
    the end.
    """
    n = len(pages)
    if n == 0:
        return pages
    out = list(pages)
    start_page = None
    for i in range(n - 1, -1, -1):
        if i < n // 2 and n > 2:
            break
        if _REF_HEADING.search(pages[i]):
            start_page = i
            break
    if start_page is None:
        return out
    match = list(_REF_HEADING.finditer(pages[start_page]))[-1]
    in_refs = True
    for i in range(start_page, n):
        text = out[i]
        offset = match.start() if i == start_page else 0
        head, tail = text[:offset], text[offset:]
        resume = _AFTER_REFS.search(tail, 1 if i == start_page else 0)
        if resume:
            out[i] = head + tail[resume.start() :]
            in_refs = False
        else:
            out[i] = head
        if not in_refs:
            break
    return out


def cjk_share(text: str) -> float:
    """Share of a text's letters that are Han characters (the English model cannot read them)."""
    letters = sum(1 for ch in text if ch.isalpha())
    return len(_HAN.findall(text)) / letters if letters else 0.0


def _weight(token: str) -> float:
    return 1.0 / HAN_CHARS_PER_WORD if _HAN.fullmatch(token) else 1.0


def _join(tokens: list[str]) -> str:
    """Join tokens back into text: Han characters without spaces, everything else with one."""
    parts: list[str] = []
    prev_han = False
    for tok in tokens:
        han = bool(_HAN.fullmatch(tok))
        if parts and not (han and prev_han):
            parts.append(" ")
        parts.append(tok)
        prev_han = han
    return "".join(parts)


def _windows(tokens: list[str]) -> list[list[str]]:
    """Cut one page's tokens into overlapping windows of about WINDOW_WORDS words.

    A short tail is folded into the window before it rather than left as a fragment passage.
    """
    spans: list[tuple[int, int]] = []
    start, n = 0, len(tokens)
    while start < n:
        weight, end = 0.0, start
        while end < n and weight < WINDOW_WORDS:
            weight += _weight(tokens[end])
            end += 1
        spans.append((start, end))
        if end >= n:
            break
        back, nxt = 0.0, end
        while nxt > start + 1 and back < OVERLAP_WORDS:
            nxt -= 1
            back += _weight(tokens[nxt])
        start = nxt
    if len(spans) > 1:
        tail_end = spans[-1][1]
        if sum(_weight(t) for t in tokens[spans[-2][1] : tail_end]) < MIN_TAIL_WORDS:
            spans.pop()
            spans[-1] = (spans[-1][0], tail_end)
    return [tokens[a:b] for a, b in spans]


def chunk_pages(pages: list[str], drop_references: bool = True) -> list[Chunk]:
    """Split cleaned page texts (``pages[i]`` is page ``i + 1``) into passages."""
    if drop_references:
        pages = strip_references(pages)
    chunks: list[Chunk] = []
    for number, text in enumerate(pages, start=1):
        tokens = _TOKEN.findall(text)
        if not tokens:
            continue
        for window in _windows(tokens):
            chunks.append(Chunk(seq=len(chunks), page=number, text=_join(window)))
    return chunks
