"""Turn one PDF into cleaned page texts, a status and a little metadata.

Design notes (the WHY behind the code):

* ``extract_pdf`` never raises for a bad file. A personal library always holds a few broken downloads
  (an HTML error page saved as ``.pdf``, a truncated file, a password-protected one); ingestion of the
  other papers must go on and the user must see a one-line reason for each bad one.
* Two backends. ``pdfium`` (pypdfium2, Chrome's PDF engine) is the default because it measured about
  15x faster than pure-Python ``pypdf`` on the corpora (see ``bench/extract_bench.py``) and gives
  better word spacing and font boxes for the title guess; ``pypdf`` is kept as a pure-Python fallback.
  Backends are imported inside the functions that use them so ``import kb`` stays fast.
* Cleaning is one pure function (``clean_text``) so it can be unit-tested and versioned:
  ``EXTRACTOR_VERSION`` changes whenever our code (``_CODE_VERSION``) or a backend library changes,
  which tells the index that stored texts are stale.
* Status: ``failed`` (unreadable, with reason), ``no-text`` (scans), ``garbled`` (fonts without a Unicode
  map), else ``ok``. ``garbage_ratio`` is script-aware so Chinese and Arabic text is not called garbage.
* Per page, ``needs_ocr`` lists the pages whose text layer OCR should replace (``pages_needing_ocr``).
  It lives here, not in ``kb.ocr``, because it needs the raw text before ``clean_text`` removes the
  unmapped glyphs, and the open pdfium page to see whether an image covers a textless page; computed
  in the same pass, it costs about 1-3% of reading the text layer on papers with nothing to flag.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from kb.models import Extraction, PageFlag, PdfMeta

EXTRACTORS: tuple[str, ...] = ("pdfium", "pypdf")
DEFAULT_EXTRACTOR = "pdfium"  # chosen by bench/extract_bench.py: ~15x more pages/s than pypdf

# Bump when clean_text, the status rules or the metadata heuristics change: stored texts become stale.
_CODE_VERSION = "2"  # 2: per-page needs_ocr verdicts

# A file that takes longer than this stops being read; the pages read so far are kept. A hang *inside*
# one C call cannot be interrupted in-process; callers that need a hard limit run us in a subprocess.
DEFAULT_TIME_LIMIT_S = 120.0


def _lib_version(dist: str) -> str:
    """Installed version of a distribution without importing it (importing pdfium costs startup time)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


EXTRACTOR_VERSION: dict[str, str] = {
    "pdfium": f"kb{_CODE_VERSION}-pypdfium2-{_lib_version('pypdfium2')}",
    "pypdf": f"kb{_CODE_VERSION}-pypdf-{_lib_version('pypdf')}",
}


# --------------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------------

# Only the Latin ligatures get NFKC: NFKC on everything would also turn CJK full-width punctuation
# （，：） into ASCII, superscripts x² into x2 and µ into μ, changing text the user may search for verbatim.
_LIGATURES = {cp: unicodedata.normalize("NFKC", chr(cp)) for cp in range(0xFB00, 0xFB07)}
_LIGATURES[0xFB05] = "ft"  # NFKC gives "st" for U+FB05 (long s + t); readers expect "ft"

_SURROGATE = re.compile("[\ud800-\udfff]")
# A hyphen (or pdfium's U+FFFE / U+0002 marker, or a soft hyphen) that ends a line inside a word.
# pdfium drops the line break after its marker, so the newline is optional for the markers.
_LINE_HYPHEN = re.compile(r"(?<=\w)(?:-[ \t]*\n|[\ufffe\x02\u00ad][ \t]*\n?)[ \t]*(?=\w)")
_STRAY_MARKERS = re.compile("[\ufffe\x02\u00ad\u200b\u200c\u200d\u2060\ufeff\uffff]")
# Control chars (keeping \n and \t), C1 controls, private-use chars (unmapped glyphs), replacement char.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]")
_SPACES = re.compile("[\t\u00a0\u2000-\u200a\u202f\u205f\u3000]")
# A whole line of single letters separated by spaces: "T h i s  i s" (letter-spaced headings).
_LETTER_SPACED = re.compile(r"^[^\W\d_](?: {1,3}[^\W\d_]){3,}$", re.MULTILINE)
_MULTI_SPACE = re.compile(r" {2,}")
_SPACE_AROUND_NL = re.compile(r" *\n *")
_MANY_NL = re.compile(r"\n{3,}")


def _join_hyphenated(m: re.Match[str]) -> str:
    """Decide whether a line-end hyphen was a break inside one word (drop it) or a real compound.

    Kept: the next fragment starts with a digit or capital (``Therac-25``, ``Time-Sharing``) or the
    word before already holds a hyphen (``state-of-the-art``); otherwise ``recog-nition`` joins.
    """
    s = m.string
    nxt = s[m.end()] if m.end() < len(s) else ""
    start = m.start()
    word_start = start
    while word_start > 0 and (s[word_start - 1].isalnum()):
        word_start -= 1
    compound = word_start > 0 and s[word_start - 1] == "-"
    if nxt.isdigit() or nxt.isupper() or compound:
        return "-"
    return ""


def _unspace_line(m: re.Match[str]) -> str:
    """``"T h i s  i s"`` -> ``"This is"``: wide gaps separate words, single spaces separate letters."""
    return " ".join(w.replace(" ", "") for w in re.split(r" {2,}", m.group(0)))


def clean_text(s: str) -> str:
    """Normalise one page of extracted text for reading, chunking and search.

    Fixes what PDF text layers get wrong in practice: lone surrogates (from UCS-2 APIs), CR/LF,
    ligatures, words split by line-end hyphens (pdfium marks them with U+FFFE or U+0002), soft hyphens,
    control and private-use chars, odd spaces, letter-spaced lines and runs of blanks. Paragraph breaks
    (blank lines) survive, collapsed to one blank line. Regex-only so huge texts stay fast.
    """
    if not s:
        return ""
    if _SURROGATE.search(s):
        # Pair up valid surrogate pairs, turn lone halves into U+FFFD (removed with the controls below).
        s = s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    s = s.translate(_LIGATURES)
    s = _SPACES.sub(" ", s)
    s = _LINE_HYPHEN.sub(_join_hyphenated, s)
    s = _STRAY_MARKERS.sub("", s)
    s = _CONTROL.sub("", s)
    s = _LETTER_SPACED.sub(_unspace_line, s)
    s = _MULTI_SPACE.sub(" ", s)
    s = _SPACE_AROUND_NL.sub("\n", s)
    s = _MANY_NL.sub("\n\n", s)
    return s.strip()


# --------------------------------------------------------------------------------------------------
# Garbage score and status
# --------------------------------------------------------------------------------------------------

_LATIN_UP = "A-Z\u00c0-\u00de"
_LATIN_LOW = "a-z\u00df-\u00ff\u0100-\u024f\ufb00-\ufb06"
# A word-like Latin token: Capitalised, lower-case or ALL-CAPS letters, optionally with ' or - parts,
# standing between spaces/punctuation. Garbage from unmapped fonts mixes case and symbols ("KbHcCd*`e").
_WORD = re.compile(
    rf"(?<![^\s(\[\"'“‘/])"
    rf"(?:[{_LATIN_UP}]?[{_LATIN_LOW}]+|[{_LATIN_UP}]{{2,}}s?|[aAI])"
    rf"(?:['’\-][{_LATIN_UP}{_LATIN_LOW}]+)*"
    rf"(?=[\s.,;:!?)\]\"'”’/]|$)"
)
# Letters of non-Latin scripts (CJK, Arabic, Greek, Cyrillic ...): \w minus digits, _ and Latin.
_OTHER_SCRIPT = re.compile(rf"[^\W\d_A-Za-z{_LATIN_UP[3:]}{_LATIN_LOW[3:]}]")
# Characters that say nothing either way: spaces, digits, everyday punctuation, CJK punctuation.
_NEUTRAL = re.compile("[\\s\\d.,;:()\\[\\]'\"’‘“”\\-–—%/+=<>·•\u3000-\u303f\uff00-\uff65]")
_CID = re.compile(r"\(cid:\d+\)")


def garbage_ratio(text: str) -> float:
    """Share of a text's meaningful characters that are not language (0 = clean prose, 1 = noise).

    Counted as language: Latin word-like tokens and letters of any other script (so Chinese and Arabic
    score low). Neutral: spaces, digits, common and CJK punctuation (tables of numbers are not garbage).
    Everything else is garbage: control and private-use chars, ``(cid:NN)`` escapes, symbol soup and
    mixed-case letter salad that unmapped fonts produce.
    """
    if not text:
        return 0.0
    cid_chars = sum(len(m) for m in _CID.findall(text))
    if cid_chars:
        text = _CID.sub(" ", text)
    good = sum(len(w) for w in _WORD.findall(text)) + len(_OTHER_SCRIPT.findall(text))
    neutral = len(_NEUTRAL.findall(text))
    bad = max(0, len(text) - neutral - good) + cid_chars
    total = good + bad
    return bad / total if total else 0.0


_TEXT_CHAR = re.compile(r"[^\W\d_]")
MIN_PAGE_LETTERS = 5  # a page with fewer letters than this has no text layer worth indexing
NO_TEXT_PAGE_SHARE = 0.2  # below this share of pages with text, the document counts as a scan
GARBLED_RATIO = 0.5  # documents whose text is more garbage than language


def classify(raw_pages: list[str]) -> tuple[str, str | None]:
    """Status and reason for the raw (uncleaned) page texts of a readable document."""
    if not raw_pages:
        return "no-text", "no pages"
    with_text = sum(1 for p in raw_pages if len(_TEXT_CHAR.findall(p, 0, 4000)) >= MIN_PAGE_LETTERS)
    if with_text == 0 or with_text / len(raw_pages) < NO_TEXT_PAGE_SHARE:
        return "no-text", "no text layer (scanned?)"
    ratio = garbage_ratio("\n".join(raw_pages))
    if ratio > GARBLED_RATIO:
        return "garbled", f"text is mostly garbage ({ratio:.0%}): fonts without a Unicode map?"
    return "ok", None


# --------------------------------------------------------------------------------------------------
# Per-page OCR detector
# --------------------------------------------------------------------------------------------------
# Thresholds measured on every page of ../shared/corpus (bench/ocr_bench.py --detector): the margins
# between the good and the garbled pages are in the comments. Signals not used, and why:
# pdfium's FPDFText_HasUnicodeMapError ("font without a ToUnicode map") is set on almost every
# character of good papers too (all 17 pages of the PageRank report, okapi-at-trec3), so it cannot
# tell good text from garbage; the garbage itself (below) can.

MIN_OCR_CHARS = 50  # fewer non-space characters: the page has (nearly) no text layer
# ... and is worth OCR only when images cover this share of it (scans measured 0.58-1.0; a blank page,
# a page of vector drawings or form fields has none, and OCR would find nothing there).
MIN_IMAGE_COVER = 0.3
MIN_PAGE_SIDE_PT = 72.0  # a page under an inch on a side (icons, stamps) holds no page of text
BAD_CHAR_SHARE = 0.3  # U+FFFD, private-use, control chars, (cid:N): good pages <= 0.15
# Share of a, e, i, o, u among Latin letters: 0.29-0.45 on every good page with >= 200 ASCII letters;
# 0.05-0.28 on the garbled ones. Languages stay inside 0.2-0.6 (Welsh, Polish low; Italian, Finnish high).
VOWEL_SHARE = (0.2, 0.6)
MIN_VOWEL_LETTERS = 200  # fewer letters: the share is noise (formulas, tables, Chinese with Latin terms)
# garbage_ratio of a page: good pages <= 0.36; garbled ones >= 0.82 (0.38-0.44 on figure pages whose
# labels read fine but whose body text does not). Needs corroboration by unmapped glyphs because glued
# words in a damaged file ("99faalmostbyincreases...") also score 1.0 while being real letters.
GARBAGE_PAGE = 0.5
GARBAGE_CORROBORATION = 0.05  # share of unmapped glyphs that makes a high garbage_ratio credible
# A document whose text pages are mostly garbled has one broken font: its borderline pages (figure
# labels that read fine over body text that does not) go to OCR too.
GARBAGE_SAME_FONT = (0.25, 0.1)  # (garbage_ratio, unmapped share) for such borderline pages

# Characters that a font without a Unicode map turns glyphs into. pdfium's own markers (\x02 and
# U+FFFE for line-end hyphens) and line/page breaks are not among them.
_UNMAPPED = re.compile("[\x00\x01\x03-\x08\x0b\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]")
# Counting is done with str/bytes methods in C, not regex match lists: the detector runs on every page.
_NOT_ASCII_LETTER = bytes(b for b in range(256) if not (65 <= b <= 90 or 97 <= b <= 122))
_VOWELS = b"aeiouAEIOU"


def _non_space(text: str) -> int:
    return len(text) - text.count(" ") - text.count("\n") - text.count("\r") - text.count("\t")


def _page_flag(raw: str, image_cover: float) -> tuple[str, str] | None:
    """``(kind, reason)`` when one page's raw text layer is (nearly) empty or garbage, else None.

    ``image_cover`` is the share of the page that images cover (0 for pages too small to hold text).
    Cheap for good pages (a few passes in C); ``garbage_ratio`` only runs when glyphs are unmapped.
    """
    chars = _non_space(raw)
    if chars < MIN_OCR_CHARS:
        if image_cover >= MIN_IMAGE_COVER:
            return "no-text", f"{chars} characters of text over an image covering {image_cover:.0%} (scan)"
        return None
    cid = sum(len(m) for m in _CID.findall(raw)) if "(cid:" in raw else 0
    bad = (len(_UNMAPPED.findall(raw)) + cid) / chars
    if bad >= BAD_CHAR_SHARE:
        return "garbled", f"{bad:.0%} of the characters are unmapped glyphs"
    letters = raw.encode("ascii", "ignore").translate(None, _NOT_ASCII_LETTER)
    latin = len(letters)
    if latin >= MIN_VOWEL_LETTERS:
        vowels = sum(letters.count(v) for v in _VOWELS) / latin
        # Latin terms inside Chinese text have no vowel statistics: only judge pages written in Latin.
        if not VOWEL_SHARE[0] <= vowels <= VOWEL_SHARE[1] and latin >= 2 * len(_OTHER_SCRIPT.findall(raw)):
            return "garbled", f"letters no language has: vowels are {vowels:.0%} of {latin} Latin letters"
    if bad >= GARBAGE_CORROBORATION:
        ratio = garbage_ratio(raw)
        if ratio >= GARBAGE_PAGE:
            return "garbled", f"text is {ratio:.0%} garbage with {bad:.0%} unmapped glyphs"
    return None


def pages_needing_ocr(raw_pages: list[str], image_cover: list[float]) -> list[PageFlag]:
    """The pages of a document whose text layer OCR should replace, each with its reason.

    ``raw_pages`` are the uncleaned page texts (cleaning removes the unmapped glyphs that give garbage
    away); ``image_cover[i]`` is the share of page ``i + 1`` covered by images (only looked at for
    pages with almost no text). A page whose text layer is fine is never flagged.
    """
    flags: dict[int, PageFlag] = {}
    for i, raw in enumerate(raw_pages):
        verdict = _page_flag(raw, image_cover[i] if i < len(image_cover) else 0.0)
        if verdict:
            flags[i] = PageFlag(page=i + 1, kind=verdict[0], reason=verdict[1])
    garbled = sum(1 for f in flags.values() if f.kind == "garbled")
    if garbled and garbled * 2 >= sum(1 for p in raw_pages if _non_space(p) >= MIN_OCR_CHARS):
        for i, raw in enumerate(raw_pages):
            chars = _non_space(raw)
            if i in flags or chars < MIN_OCR_CHARS:
                continue
            bad = len(_UNMAPPED.findall(raw)) / chars
            ratio = garbage_ratio(raw) if bad >= GARBAGE_SAME_FONT[1] else 0.0
            if ratio >= GARBAGE_SAME_FONT[0]:
                reason = f"text is {ratio:.0%} garbage in a document whose other pages are garbled"
                flags[i] = PageFlag(page=i + 1, kind="garbled", reason=reason)
    return [flags[i] for i in sorted(flags)]


# --------------------------------------------------------------------------------------------------
# File checks and backends
# --------------------------------------------------------------------------------------------------


class _ExtractFailed(Exception):
    """A file-level failure with a human reason (the message)."""


def _precheck(path: Path) -> str | None:
    """Reasons a path cannot be a readable PDF, found by looking at bytes before any parser sees it.

    Backends report all of these as one vague "format error"; the user needs to know whether they saved
    a web page, got a truncated download or an empty file.
    """
    try:
        if not path.exists():
            return "file not found"
        if path.is_dir():
            return "not a file (a directory)"
        size = path.stat().st_size
        if size == 0:
            return "empty file"
        with path.open("rb") as f:
            head = f.read(2048)
            f.seek(max(0, size - 2048))
            tail = f.read(2048)
    except OSError as e:
        return f"cannot read file: {e.strerror or e}"
    if b"%PDF-" not in head[:1024]:
        probe = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if probe.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")) or b"<html" in probe[:512]:
            return "not a PDF (looks like HTML)"
        if probe.startswith((b"{", b"[")):
            return "not a PDF (looks like JSON)"
        if probe.startswith(b"pk\x03\x04"):
            return "not a PDF (a ZIP archive)"
        return "not a PDF (no %PDF header)"
    if b"obj" not in head and size < 4096:
        return "truncated or damaged PDF (header only, no content)"
    if b"%%EOF" not in tail and b"startxref" not in tail:
        return "truncated or damaged PDF"
    return None


def _short(e: BaseException, limit: int = 80) -> str:
    """One line of an exception for a reason string."""
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the user's terminal clean: backends warn through ``warnings``, ``logging`` and C stderr."""
    logger = logging.getLogger("pypdf")
    old_level, old_disabled = logger.level, logger.disabled
    logger.disabled = True
    saved_fd = None
    try:
        saved_fd = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        saved_fd = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if saved_fd is not None:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
        logger.setLevel(old_level)
        logger.disabled = old_disabled


@dataclass
class _Raw:
    """What a backend read, before cleaning."""

    pages: list[str]
    info: dict[str, str]
    # Page-1 lines with a font-size proxy (0.0 when the backend cannot tell sizes).
    lines: list[tuple[str, float]] = field(default_factory=list)
    page_errors: int = 0
    first_error: str | None = None
    timed_out: bool = False
    # Share of each page covered by images, measured only on pages with almost no text (else 0.0).
    image_cover: dict[int, float] = field(default_factory=dict)


def _read_pages(
    n: int, read: Callable[[int], str], deadline: float
) -> tuple[list[str], int, str | None, bool]:
    """Read pages one by one; one bad page becomes "" instead of losing the whole file."""
    pages: list[str] = []
    errors, first_error, timed_out = 0, None, False
    for i in range(n):
        if time.monotonic() > deadline:
            timed_out = True
            pages.extend("" for _ in range(n - i))
            break
        try:
            pages.append(read(i) or "")
        except Exception as e:  # noqa: BLE001 - any backend error on one page must not kill the file
            errors += 1
            first_error = first_error or _short(e)
            pages.append("")
    return pages, errors, first_error, timed_out


def _read_pdfium(path: Path, max_pages: int | None, deadline: float) -> _Raw:
    """pypdfium2 backend; closes text pages, pages and the document explicitly (native memory)."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as e:
        if getattr(e, "err_code", None) == 4 or "password" in str(e).lower():
            raise _ExtractFailed("encrypted (password required)") from e
        if getattr(e, "err_code", None) == 5:
            raise _ExtractFailed("encrypted (unsupported security handler)") from e
        detail = str(e).split("(PDFium:")[-1].strip(" .)") if "PDFium:" in str(e) else _short(e)
        raise _ExtractFailed(f"damaged PDF: {detail.lower()}") from e
    try:
        n = len(doc)
        if max_pages is not None:
            n = min(n, max_pages)
        lines: list[tuple[str, float]] = []
        cover: dict[int, float] = {}

        def read(i: int) -> str:
            page = doc[i]
            try:
                tp = page.get_textpage()
                try:
                    text = tp.get_text_range()
                    if i == 0:
                        lines.extend(_pdfium_lines(tp, text))
                    if _nearly_empty(text):
                        cover[i] = _pdfium_image_cover(page)
                    return text
                finally:
                    tp.close()
            finally:
                page.close()

        pages, errors, first_error, timed_out = _read_pages(n, read, deadline)
        try:
            info = {k: str(v) for k, v in doc.get_metadata_dict().items() if v}
        except Exception:  # noqa: BLE001 - unreadable info dict: the text is still worth having
            info = {}
        return _Raw(pages, info, lines, errors, first_error, timed_out, cover)
    finally:
        doc.close()


def _nearly_empty(text: str) -> bool:
    return _non_space(text) < MIN_OCR_CHARS


def _pdfium_image_cover(page: object) -> float:
    """Share of a page's area under image objects (a scan is one page-size image); 0.0 on error.

    Only called for pages with almost no text, so walking their objects costs nothing on good papers.
    """
    import pypdfium2.raw as pdfium_c

    try:
        left, bottom, right, top = page.get_bbox()  # type: ignore[attr-defined]
        width, height = right - left, top - bottom
        if min(width, height) < MIN_PAGE_SIDE_PT:
            return 0.0
        area = 0.0
        for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=4):  # type: ignore[attr-defined]
            x0, y0, x1, y1 = obj.get_bounds()
            area += max(0.0, min(x1, right) - max(x0, left)) * max(0.0, min(y1, top) - max(y0, bottom))
        return min(1.0, area / (width * height))
    except Exception:  # noqa: BLE001 - a damaged page: no evidence of a scan
        return 0.0


def _pdfium_lines(tp: object, text: str, max_lines: int = 40) -> list[tuple[str, float]]:
    """First lines of page 1 with their rendered font size, for the title guess.

    ``FPDFText_GetFontSize`` alone reports 1.0 for LaTeX output that scales fonts by the text matrix,
    and glyph boxes vary with the glyph and each font's metrics; font size times the matrix scale is
    the size the reader sees. The median over a line's first letters ignores footnote marks.
    """
    import pypdfium2.raw as pdfium_c

    handle = tp.raw  # type: ignore[attr-defined]
    matrix = pdfium_c.FS_MATRIX()
    out: list[tuple[str, float]] = []
    pos = 0
    for line in text.split("\r\n"):
        if len(out) >= max_lines:
            break
        start, pos = pos, pos + len(line) + 2
        if not line.strip():
            continue
        sizes: list[float] = []
        for k in range(start, min(start + len(line), len(text))):
            if len(sizes) >= 5:
                break
            if text[k].isalnum() and pdfium_c.FPDFText_GetMatrix(handle, k, matrix):
                scale = abs(matrix.a * matrix.d - matrix.b * matrix.c) ** 0.5
                sizes.append(pdfium_c.FPDFText_GetFontSize(handle, k) * scale)
        sizes.sort()
        out.append((line, sizes[len(sizes) // 2] if sizes else 0.0))
    return out


def _read_pypdf(path: Path, max_pages: int | None, deadline: float) -> _Raw:
    """pypdf backend (pure Python: slower, but a second opinion and no native code)."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _ExtractFailed("encrypted (password required)")
        n = len(reader.pages)
    except _ExtractFailed:
        raise
    except Exception as e:  # noqa: BLE001 - pypdf raises many types for broken files
        if "decrypt" in str(e).lower() or "password" in str(e).lower():
            raise _ExtractFailed("encrypted (password required)") from e
        raise _ExtractFailed(f"damaged PDF: {_short(e)}") from e
    if max_pages is not None:
        n = min(n, max_pages)
    pages, errors, first_error, timed_out = _read_pages(n, lambda i: reader.pages[i].extract_text(), deadline)
    try:
        info = {str(k).lstrip("/"): str(v) for k, v in (reader.metadata or {}).items() if v}
    except Exception:  # noqa: BLE001
        info = {}
    lines = [(ln, 0.0) for ln in (pages[0].splitlines() if pages else []) if ln.strip()][:40]
    cover = {i: _pypdf_image_cover(reader.pages[i]) for i, text in enumerate(pages) if _nearly_empty(text)}
    return _Raw(pages, info, lines, errors, first_error, timed_out, cover)


def _pypdf_image_cover(page: object) -> float:
    """pypdf cannot place images cheaply: 1.0 when a page of normal size holds any image, else 0.0."""
    try:
        box = page.mediabox  # type: ignore[attr-defined]
        if min(float(box.width), float(box.height)) < MIN_PAGE_SIDE_PT:
            return 0.0
        return 1.0 if len(page.images) else 0.0  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a damaged page: no evidence of a scan
        return 0.0


_BACKENDS: dict[str, Callable[[Path, int | None, float], _Raw]] = {
    "pdfium": _read_pdfium,
    "pypdf": _read_pypdf,
}


def extract_pdf(
    path: Path,
    extractor: str = DEFAULT_EXTRACTOR,
    max_pages: int | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT_S,
) -> Extraction:
    """Read a PDF into cleaned 1-based pages (``pages[0]`` is page 1), status, reason and metadata.

    Never raises for a bad file (only for an unknown ``extractor``, a programming error): every failure
    becomes status ``failed`` with a one-line reason, so a library of hundreds of PDFs always ingests.
    """
    if extractor not in _BACKENDS:
        raise ValueError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    path = Path(path)
    reason = _precheck(path)
    if reason:
        return Extraction(status="failed", reason=reason, extractor=extractor)
    try:
        with _quiet():
            raw = _BACKENDS[extractor](path, max_pages, time.monotonic() + time_limit)
    except _ExtractFailed as e:
        return Extraction(status="failed", reason=str(e), extractor=extractor)
    except Exception as e:  # noqa: BLE001 - whatever a backend throws, one file must not stop ingestion
        return Extraction(status="failed", reason=f"damaged PDF: {_short(e)}", extractor=extractor)

    if raw.pages and raw.page_errors == len(raw.pages):
        return Extraction(
            status="failed", reason=f"damaged PDF: no page readable ({raw.first_error})", extractor=extractor
        )
    status, reason = classify(raw.pages)
    cover = [raw.image_cover.get(i, 0.0) for i in range(len(raw.pages))]
    needs_ocr = pages_needing_ocr(raw.pages, cover)
    pages = [clean_text(p) for p in raw.pages]
    notes = []
    if raw.page_errors:
        notes.append(f"{raw.page_errors} unreadable page(s): {raw.first_error}")
    if raw.timed_out:
        notes.append(f"stopped after {time_limit:.0f}s")
    if notes and status == "ok":
        reason = "; ".join(notes)  # still usable: say what is missing
    # Garbled text would give a garbage title guess; the document info may still be right.
    meta = build_meta(raw.info, pages if status == "ok" else [], raw.lines if status == "ok" else [], path)
    return Extraction(
        status=status, pages=pages, meta=meta, reason=reason, extractor=extractor, needs_ocr=needs_ocr
    )


# --------------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------------

_JUNK_TITLE = re.compile(
    r"^(?:microsoft (?:word|powerpoint)\b|untitled\b|title\b|doi:|arxiv:|no title|paper\b|document\d*$"
    r"|slide|presentation\d*$|\d+$)"
    r"|\.(?:dvi|tex|docx?|pdf|ps|eps|rtf|odt|indd|qxd)\b"
    r"|^[\w\-]+_[\w\-]+$"  # file-name-like: some_file_name
    r"|[/\\]"
    r"|formatting instructions|template",
    re.IGNORECASE,
)
_JUNK_AUTHOR = re.compile(r"^(?:admin(?:istrator)?|user|owner|author|unknown|default|[a-z]{1,3}\d*)$", re.I)
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>{}|\\^`]+)", re.IGNORECASE)
_ARXIV_STAMP = re.compile(
    r"arXiv:\s?(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?\s*\[[\w.\-]+\]", re.IGNORECASE
)
_ARXIV_ANY = re.compile(
    r"(?:arXiv:\s?|arxiv\.org/(?:abs|pdf)/)(\d{4}\.\d{4,5}|[a-z\-]+(?:\.[A-Z]{2})?/\d{7})", re.IGNORECASE
)
_VENUE_WORDS = (
    r"proceedings|conference|symposium|workshop|journal|transactions|letters|copyright|©|\(c\)|"
    r"cvpr|iccv|eccv|neurips|nips|icml|iclr|aaai|ijcai|acl|emnlp|interspeech|icassp|siggraph|sigmod|"
    r"vldb|osdi|sosp|nsdi|usenix|sigcomm|popl|pldi|icfp|acm|ieee|springer|elsevier|vol\.|volume|"
    r"published|accepted|submitted|appeared|received|"
    r"january|february|march|april|may|june|july|august|september|october|november|december"
)
_YEAR = r"(19[5-9]\d|20[0-4]\d)"
_VENUE_YEAR = re.compile(
    rf"(?:\b(?:{_VENUE_WORDS})\b[^\n]{{0,60}}?\b{_YEAR}\b|\b{_YEAR}\b[^\n]{{0,40}}?\b(?:{_VENUE_WORDS})\b)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_TITLE_JUNK_LINE = re.compile(
    r"arxiv|proceedings|(?:conference|symposium|workshop|journal|transactions) on\b|journal of\b|"
    r"\bvol\.|\bvolume\b|\bissn\b|\bisbn\b|\bdoi\b|"
    r"https?://|www\.|©|copyright|submitted|under consideration|to appear|preprint|draft|"
    r"see discussions|researchgate|technical report|this paper is included|open access|"
    r"^\s*(?:abstract|keywords|index terms|introduction)\b|^\s*[\d\W]+\s*$",
    re.IGNORECASE,
)


def _words(s: str) -> list[str]:
    return re.findall(r"[^\W_]{3,}", s.lower())


def _plausible_info_title(title: str, first_pages: str) -> bool:
    """Reject producer junk ("Microsoft Word - x.doc", "paper.dvi", template titles) and titles that
    are not on the first pages (a wrong title copied from a template is worse than none)."""
    t = " ".join(title.split())
    if len(t) < 6 or _JUNK_TITLE.search(t):
        return False
    if len(t.split()) < 2 and not _OTHER_SCRIPT.search(t):
        return False
    if _OTHER_SCRIPT.search(t) and not _words(t):
        return t.replace(" ", "") in first_pages.replace(" ", "")
    words = _words(t)
    if not words:
        return False
    text = " ".join(_words(first_pages))
    found = sum(1 for w in words if w in text)
    return found / len(words) >= 0.6


def _appears(name: str, text: str) -> bool:
    """At least half of the name's words (3+ letters) occur in the text."""
    words = _words(name)
    if not words:
        return False
    hay = " ".join(_words(text))
    return sum(1 for w in words if w in hay) * 2 >= len(words)


def _find_doi(texts: list[str]) -> str | None:
    for t in texts:
        m = _DOI.search(t)
        if m:
            return m.group(1).rstrip(".,;:)]}'\"")
    return None


def _find_arxiv(info_text: str, pages: list[str]) -> str | None:
    """The margin stamp (``arXiv:1912.04958v2 [cs.CV]``) on the first 2 pages, else a bare arXiv id on
    page 1 or in the info; later bare ids are usually citations of other papers."""
    for t in pages[:2]:
        m = _ARXIV_STAMP.search(t)
        if m:
            return m.group(1)
    for t in [info_text, *pages[:1]]:
        m = _ARXIV_ANY.search(t)
        if m:
            return m.group(1)
    return None


def _arxiv_year(arxiv: str) -> int | None:
    """New ids start YYMM (since 2007), old ones archive/YYMMNNN (1991-2007)."""
    digits = arxiv.split("/")[-1]
    yy = int(digits[:2])
    return 2000 + yy if "/" not in arxiv or yy < 91 else 1900 + yy


def _find_year(arxiv: str | None, info: dict[str, str], page1: str) -> int | None:
    """Publication year, strongest evidence first.

    1. arXiv id (its YYMM is the first submission date). 2. a year next to venue words or a month on
    page 1 or in the info Subject ("CVPR 2020", "Proceedings ... 1998", "May 16, 2000"). 3. the info
    creation date, only when that year also appears on page 1: creation dates alone are often the
    date of a re-scan or re-typeset, decades after publication.
    """
    if arxiv:
        return _arxiv_year(arxiv)
    for text in (info.get("Subject", ""), page1[:6000]):
        m = _VENUE_YEAR.search(text)
        if m:
            return int(next(g for g in m.groups() if g))
    created = re.search(r"(?:D:)?(19[5-9]\d|20[0-4]\d)", info.get("CreationDate", ""))
    if created and re.search(rf"\b{created.group(1)}\b", page1[:6000]):
        return int(created.group(1))
    return None


_AUTHOR_MARK = re.compile(r"[∗*†‡§¶]\s*\S|[a-z]\d\b|\d\s*,|^\s*,|\band\s+[A-Z]\.|\b[A-Z]\.\s?[A-Z][a-z]")
_TRAILING_MARK = re.compile(r"^\W*(?:\S+\s+){0,2}\S+[∗*†‡§¶]\s*$")  # "Peter W. Shor†", not a title line∗


def _continues_title(prev: str, nxt: str, prev_size: float, nxt_size: float) -> bool:
    """Whether ``nxt`` is the wrapped rest of the title line ``prev`` (not the author line below)."""
    if abs(nxt_size - prev_size) > 0.08 * max(prev_size, 1.0) or _AUTHOR_MARK.search(nxt):
        return False
    letters = _TEXT_CHAR.findall(prev)
    # An ALL-CAPS title is not continued by a mixed-case author line.
    return not letters or all(c.isupper() for c in letters) == all(
        c.isupper() for c in _TEXT_CHAR.findall(nxt)
    )


_OPEN_END = re.compile(r"\b(?:for|and|of|the|with|in|to|an?|on)$")


def _first_page_title(lines: list[tuple[str, float]]) -> str | None:
    """Guess the title from page 1: the biggest-font line near the top, joined with neighbouring lines
    of the same size when the title wraps (stopping at author-looking lines), skipping arXiv stamps,
    venue headers, URLs, emails and paragraph-long lines. Without sizes (pypdf), the first plausible
    line, joined with the next when it obviously continues; the same when the sizes are all equal.
    """
    cands = [
        (i, ln.strip(), size)
        for i, (ln, size) in enumerate(lines[:30])
        if not _TITLE_JUNK_LINE.search(ln)
        and not _EMAIL.search(ln)
        and len(_TEXT_CHAR.findall(ln)) >= 4
        and len(ln.split()) <= 20
    ]
    if not cands:
        return None
    sizes = sorted(size for _, size in lines)
    if sizes[-1] - sizes[0] > 0.05 * sizes[-1]:  # sizes vary: usable (some dvips files report one size)
        top = max(size for _, _, size in cands)
        if top <= sizes[len(sizes) // 2] * 1.02:
            return None  # nothing stands out from the body text (plain documents, lorem ipsum)
        pos = next(k for k, c in enumerate(cands) if c[2] >= top * 0.97)  # earliest of the biggest
        parts = [cands[pos][1]]
        k = pos
        while k + 1 < len(cands) and len(parts) < 4:
            (i0, t0, s0), (i1, t1, s1) = cands[k], cands[k + 1]
            if i1 != i0 + 1 or not _continues_title(t0, t1, s0, s1):
                break
            parts.append(t1)
            k += 1
        if pos > 0:
            (i0, t0, s0), (i1, t1, s1) = cands[pos - 1], cands[pos]
            if i0 == i1 - 1 and _continues_title(t1, t0, s1, s0):
                parts.insert(0, t0)
        title = " ".join(parts)
    else:
        i, title, _ = cands[0]
        nxt = lines[i + 1][0].strip() if i + 1 < len(lines) else ""
        joins = title.endswith((":", "-", ",")) or re.search(
            r"\b(?:for|and|of|the|with|in|to|an?|on)$", title
        )
        if nxt and (joins or nxt[:1].islower()) and not _AUTHOR_MARK.search(nxt):
            title = f"{title} {nxt}"
    title = clean_text(title).replace("\n", " ").rstrip(" ∗*†‡§¶")  # footnote marks after the title
    return title if 4 <= len(title) <= 300 else None


def build_meta(info: dict[str, str], pages: list[str], lines: list[tuple[str, float]], path: Path) -> PdfMeta:
    """Document-info and page-1 metadata; every field may stay None rather than be wrong."""
    first_pages = "\n".join(pages[:2])
    top_of_page1 = pages[0][:2500] if pages else ""
    title = " ".join(clean_text(info.get("Title", "")).split()) or None
    if title and (title.lower() == path.stem.lower() or not _plausible_info_title(title, top_of_page1)):
        title = None
    author = " ".join(info.get("Author", "").split()) or None
    if author and (_JUNK_AUTHOR.match(author) or not _appears(author, first_pages)):
        author = None  # "AAAI Press Staff", "Microsoft Office 用户", user names: not the paper's authors
    info_text = " ".join(info.get(k, "") for k in ("Subject", "Keywords", "Title"))
    arxiv = _find_arxiv(info_text, pages)
    return PdfMeta(
        title=title,
        authors=author,
        doi=_find_doi([info_text, *pages[:2]]),
        arxiv=arxiv,
        year=_find_year(arxiv, info, pages[0] if pages else ""),
        first_page_title=_first_page_title(lines),
    )
