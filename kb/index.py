"""The tantivy keyword indexes: one for papers, one for passages.

Papers and passages live in two separate indexes on purpose. In one shared index the title field
is empty on every passage document, its average length falls near zero, and BM25's length
normalisation then discounts title hits so much that field boosts stop working.

Analyzers:
- ``en``: words split on non-alphanumerics, lowercased, ASCII-folded, Porter-stemmed (so "losses"
  finds "loss"); tokens over 40 bytes are dropped, as tantivy's default does.
- ``cjk``: one token per Han/Kana character, in order. tantivy's default tokenizer turns a whole
  Chinese run into one token (and drops runs over 40 bytes), so a Chinese word could never match;
  one token per character plus a phrase query finds any Chinese word, in order.
- ``raw``: the value as one token (ids, exact aliases).
Custom analyzers are not stored in the index, so ``open_index`` registers them on every open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import tantivy

SCHEMA_VERSION = "1"
PAPER_INDEX = "papers"
PASSAGE_INDEX = "passages"
CJK_PATTERN = r"[\p{Han}\p{Hiragana}\p{Katakana}]"
_HAS_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")

# Text fields of the paper index that get an English and (when needed) a Chinese copy.
PAPER_TEXT_FIELDS = ("title", "alias", "note", "topic", "venue", "authors", "filename", "abstract")


def _analyzers() -> dict[str, tantivy.TextAnalyzer]:
    en = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )
    cjk = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(CJK_PATTERN)).build()
    raw = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()).filter(tantivy.Filter.lowercase()).build()
    return {"en": en, "cjk": cjk, "rawlower": raw}


def analyze(analyzer: str, text: str) -> list[str]:
    """Tokens of ``text`` under one of kb's analyzers (the search side uses this to build queries)."""
    return _analyzers()[analyzer].analyze(text)


def has_cjk(text: str) -> bool:
    return bool(_HAS_CJK.search(text))


def paper_schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    b.add_text_field("id", stored=True, tokenizer_name="raw")
    b.add_text_field("alias_exact", stored=False, tokenizer_name="rawlower")
    for name in PAPER_TEXT_FIELDS:
        b.add_text_field(name, stored=name != "abstract", tokenizer_name="en")
        b.add_text_field(f"{name}_zh", stored=False, tokenizer_name="cjk")
    b.add_integer_field("year", stored=True, indexed=True, fast=True)
    b.add_text_field("read", stored=True, tokenizer_name="raw")  # "yes" / "no" / "unknown"
    b.add_text_field("status", stored=True, tokenizer_name="raw")
    return b.build()


def passage_schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    b.add_text_field("paper_id", stored=True, tokenizer_name="raw")
    b.add_integer_field("row", stored=True, indexed=True, fast=True)  # row in the vector matrix
    b.add_integer_field("page", stored=True, indexed=True, fast=True)
    b.add_text_field("text", stored=True, tokenizer_name="en")
    b.add_text_field("text_zh", stored=False, tokenizer_name="cjk")
    return b.build()


def open_index(path: Path) -> tantivy.Index:
    """Open an existing index and register kb's analyzers (they are not persisted by tantivy).

    A missing or damaged index raises ``store.CorruptIndex`` with a message the user can act on,
    not tantivy's internal error.
    """
    from kb.store import CorruptIndex

    try:
        index = tantivy.Index.open(str(path))
        index.searcher()  # opening is lazy: touch the segments so damage shows here
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # tantivy raises ValueError, or a Rust panic (not an Exception)
        detail = str(exc).split(":", 1)[0]
        raise CorruptIndex(
            f"the keyword index {path} is damaged or missing ({detail}); run `kb ingest` to rebuild it"
        ) from exc
    _register(index)
    return index


def _register(index: tantivy.Index) -> None:
    for name, analyzer in _analyzers().items():
        index.register_tokenizer(name, analyzer)


@dataclass
class PaperDoc:
    """The searchable fields of one paper, flattened to text."""

    id: str
    title: str
    alias: str = ""
    note: str = ""
    topic: str = ""
    venue: str = ""
    authors: str = ""
    filename: str = ""
    abstract: str = ""
    year: int | None = None
    read: str = "unknown"
    status: str = "no-pdf"


@dataclass
class PassageDoc:
    paper_id: str
    row: int
    page: int
    text: str


def _with_cjk(doc: tantivy.Document, field: str, text: str) -> None:
    if not text:
        return
    doc.add_text(field, text)
    if has_cjk(text):
        doc.add_text(f"{field}_zh", text)


def _paper_document(p: PaperDoc) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("id", p.id)
    if p.alias:
        doc.add_text("alias_exact", p.alias)
    for name in PAPER_TEXT_FIELDS:
        _with_cjk(doc, name, getattr(p, name))
    if p.year is not None:
        doc.add_integer("year", p.year)
    doc.add_text("read", p.read)
    doc.add_text("status", p.status)
    return doc


def _passage_document(s: PassageDoc) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("paper_id", s.paper_id)
    doc.add_integer("row", s.row)
    doc.add_integer("page", s.page)
    _with_cjk(doc, "text", s.text)
    return doc


def _write(path: Path, schema: tantivy.Schema, docs: Iterable[tantivy.Document], heap: int) -> None:
    path.mkdir(parents=True)
    index = tantivy.Index(schema, path=str(path))
    _register(index)
    writer = index.writer(heap_size=heap, num_threads=1)
    for doc in docs:
        writer.add_document(doc)
    writer.commit()
    writer.wait_merging_threads()


def write_indexes(root: Path, papers: Iterable[PaperDoc], passages: Iterable[PassageDoc]) -> None:
    """Create both indexes from scratch under ``root`` (a fresh generation directory)."""
    _write(root / PAPER_INDEX, paper_schema(), (_paper_document(p) for p in papers), 50_000_000)
    _write(root / PASSAGE_INDEX, passage_schema(), (_passage_document(s) for s in passages), 100_000_000)
