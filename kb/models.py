"""Plain data passed between the pipeline stages.

Every stage (catalog, extract, link, chunk, embed, index, search) takes and returns these
dataclasses, so each stage can be tested alone and none reaches into another's storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kb.fsutil import json_path


@dataclass
class Link:
    """A labelled link of a catalog entry: ``[[PDF]](./paper/x.pdf)`` is ``Link("PDF", "./paper/x.pdf")``.

    The title link of an entry has the label ``"paper"``.
    """

    label: str
    url: str


@dataclass
class Entry:
    """One paper as the user wrote it in a Markdown reading list."""

    title: str
    catalog: str  # absolute path of the Markdown file
    line: int  # 1-based line of the list item
    alias: str | None = None  # "(StyleGAN)" before the title
    topic: list[str] = field(default_factory=list)  # headings plus sub-topic bullets
    read: bool | None = None  # [x] True, [ ] False, no checkbox None
    links: list[Link] = field(default_factory=list)
    venue: str | None = None
    year: int | None = None
    org: str | None = None  # trailing organisation, e.g. "Nvidia."
    authors: str | None = None  # "by A and B" / "- A & B" in lists that name them
    notes: list[str] = field(default_factory=list)  # parenthesised remarks and remark lines


@dataclass
class PdfMeta:
    """What a PDF says about itself (document info and first page)."""

    title: str | None = None
    authors: str | None = None
    doi: str | None = None
    arxiv: str | None = None
    year: int | None = None
    first_page_title: str | None = None  # largest/first line guess from page 1


@dataclass
class PageFlag:
    """A page whose text layer is (nearly) empty or garbage, so OCR should read it instead.

    ``kind`` is ``no-text`` (a scanned image without a text layer) or ``garbled`` (glyphs without a
    Unicode map); ``reason`` is one line with the measured evidence.
    """

    page: int  # 1-based
    kind: str
    reason: str


@dataclass
class Extraction:
    """Result of reading one PDF.

    ``status`` is ``ok``, ``no-text`` (scan without a text layer), ``garbled`` (text without a
    Unicode map) or ``failed``; ``reason`` is a one-line explanation for anything but ``ok``.
    ``status`` judges the whole document; ``needs_ocr`` judges each page (a document can be ``ok``
    with one scanned page, or ``garbled`` with a few readable ones).
    ``pages[i]`` is the cleaned text of page ``i + 1``.
    """

    status: str
    pages: list[str] = field(default_factory=list)
    meta: PdfMeta = field(default_factory=PdfMeta)
    reason: str | None = None
    extractor: str = ""
    needs_ocr: list[PageFlag] = field(default_factory=list)


@dataclass
class Passage:
    """A span of a paper's text sized for the embedding model, as stored in the index."""

    paper_id: str
    seq: int  # order within the paper
    page: int  # 1-based page where the passage starts
    text: str
    file: str | None = None  # absolute path of the PDF it came from
    row: int = -1  # its row in the index (passage vectors, keyword index)


@dataclass
class FileRow:
    """One PDF as an index generation recorded it: where, what content, how it read, whose it is."""

    path: str  # absolute
    sha256: str
    size: int
    mtime_ns: int
    status: str  # ok, no-text, garbled, failed
    reason: str | None = None
    paper_id: str | None = None
    pages: int = 0
    link_method: str | None = None  # how it was linked to its catalog entry
    link_score: float | None = None
    unsure: bool = False
    attachment: bool = False  # a file of its paper that is not the paper itself (a translation)


@dataclass
class CatalogRow:
    """One reading list as an index generation read it."""

    path: str  # absolute
    sha256: str
    size: int
    mtime_ns: int
    entries: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class CatalogRef:
    file: str  # absolute path
    line: int


@dataclass
class Paper:
    """One paper of the knowledge base: a catalog entry, a PDF, or both linked together."""

    id: str  # stable across runs: slug of alias/title, or of the file name for PDF-only papers
    title: str
    alias: str | None = None
    topics: list[list[str]] = field(default_factory=list)
    read: bool | None = None
    venue: str | None = None
    year: int | None = None
    org: str | None = None
    authors: str | None = None
    note: str | None = None
    links: list[Link] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # absolute paths of linked PDFs
    catalog: CatalogRef | None = None
    status: str = "no-pdf"  # ok, no-pdf, no-text, garbled, failed
    reason: str | None = None
    doi: str | None = None
    arxiv: str | None = None
    pages: int = 0
    abstract: str | None = None
    pdf_title: str | None = None
    sha256: list[str] = field(default_factory=list)  # content hashes of ``files``
    # Further entries of the same paper (the same title listed again, in this or another list):
    # ``kb mark`` flips them all.
    also_in: list[CatalogRef] = field(default_factory=list)
    added: float | None = None  # when the index first saw this paper (seconds since the epoch)

    def to_json(self, cwd: Path | None = None) -> dict:
        """The public JSON form of a paper (``kb list --json``, ``/api/papers``); paths relative to
        ``cwd`` when given."""
        return {
            "id": self.id,
            "title": self.title,
            "alias": self.alias,
            "topics": self.topics,
            "read": self.read,
            "venue": self.venue,
            "year": self.year,
            "note": self.note,
            "authors": self.authors,
            "links": [{"label": lk.label, "url": lk.url} for lk in self.links],
            "files": [json_path(f, cwd) for f in self.files],
            "catalog": {"file": json_path(self.catalog.file, cwd), "line": self.catalog.line}
            if self.catalog
            else None,
            "status": self.status,
            "reason": self.reason,
            "pages": self.pages,
            "doi": self.doi,
            "arxiv": self.arxiv,
            "added": datetime.fromtimestamp(self.added, UTC).isoformat(timespec="seconds")
            if self.added
            else None,
        }
