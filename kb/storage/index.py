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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import tantivy

from kb.errors import CorruptIndexError
from kb.models import Paper, Passage
from kb.papers import humanize_filename
from kb.storage.base import Clause, Terms

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

    A missing or damaged index raises ``CorruptIndexError`` with a message the user can act on,
    not tantivy's internal error.
    """
    try:
        index = tantivy.Index.open(str(path))
        index.searcher()  # opening is lazy: touch the segments so damage shows here
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # tantivy raises ValueError, or a Rust panic (not an Exception)
        detail = str(exc).split(":", 1)[0]
        raise CorruptIndexError(
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


    @classmethod
    def of(cls, paper: Paper) -> PaperDoc:
        """What of a paper is searchable by keyword, field by field."""
        return cls(
            id=paper.id,
            title=paper.title
            + (f" {paper.pdf_title}" if paper.pdf_title and paper.pdf_title != paper.title else ""),
            alias=paper.alias or "",
            note=paper.note or "",
            topic=" ; ".join(" / ".join(t) for t in paper.topics),
            venue=" ".join(x for x in (paper.venue, paper.org) if x),
            authors=paper.authors or "",
            filename=" ".join(humanize_filename(f) for f in paper.files),
            abstract=paper.abstract or "",
            year=paper.year,
            read=READ_VALUES[paper.read],
            status=paper.status,
        )


READ_VALUES = {True: "yes", False: "no", None: "unknown"}


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


def _passage_document(s: Passage) -> tantivy.Document:
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


def write_indexes(root: Path, papers: Iterable[Paper], passages: Iterable[Passage]) -> None:
    """Create both indexes from scratch under ``root`` (a fresh generation directory)."""
    docs = (_paper_document(PaperDoc.of(p)) for p in papers)
    _write(root / PAPER_INDEX, paper_schema(), docs, 50_000_000)
    _write(root / PASSAGE_INDEX, passage_schema(), (_passage_document(s) for s in passages), 100_000_000)


class KeywordIndex:
    """kb's keyword search on tantivy: the two indexes of one generation, opened once.

    Implements ``base.KeywordSearch``: the plain ``Terms`` of each clause become tantivy queries
    here and nowhere else.
    """

    def __init__(self, generation_dir: Path) -> None:
        self.papers = open_index(generation_dir / PAPER_INDEX)
        self.passages = open_index(generation_dir / PASSAGE_INDEX)
        self.psearcher = self.papers.searcher()
        self.ssearcher = self.passages.searcher()

    # ---- base.KeywordSearch

    def paper_scores(self, clauses: Sequence[Clause], boosts: Mapping[str, float]) -> dict[str, float]:
        query = _combine([(occ, self._paper_query(t, boosts)) for occ, t in clauses])
        if query is None:
            return {}
        res = self.psearcher.search(query, limit=max(1, self.psearcher.num_docs))
        return {self.psearcher.doc(addr).get_first("id"): float(score) for score, addr in res.hits}

    def passage_hits(self, clauses: Sequence[Clause], limit: int) -> list[tuple[float, int]]:
        query = _combine([(occ, self._passage_query(t)) for occ, t in clauses])
        if query is None:
            return []
        res = self.ssearcher.search(query, limit=limit)
        if not res.hits:
            return []
        rows = self.ssearcher.fast_field_values("row", [a for _s, a in res.hits])
        return [(float(s), int(r)) for (s, _a), r in zip(res.hits, rows, strict=True)]

    def doc_freq(self, token: str, fields: Sequence[str]) -> int:
        n = sum(self.psearcher.doc_freq(f, token) for f in fields if f != "text")
        if "text" in fields:
            n += self.ssearcher.doc_freq("text", token)
        return n

    def passage_docs(self) -> int:
        return int(self.ssearcher.num_docs)

    # ---- Terms -> tantivy queries

    def _paper_query(self, terms: Terms, boosts: Mapping[str, float]) -> tantivy.Query | None:
        if terms.field == "text":
            return None
        fields = [terms.field] if terms.field else list(boosts)
        subs = []
        for f in fields:
            fq = _field_query(self.papers.schema, f, terms)
            if fq is not None:
                subs.append(tantivy.Query.boost_query(fq, boosts.get(f, 1.0)))
        if not subs:
            return None
        return subs[0] if len(subs) == 1 else tantivy.Query.disjunction_max_query(subs, tie_breaker=0.2)

    def _passage_query(self, terms: Terms) -> tantivy.Query | None:
        if terms.field and terms.field != "text":
            return None
        return _field_query(self.passages.schema, "text", terms)


def _field_query(schema: tantivy.Schema, fname: str, terms: Terms) -> tantivy.Query | None:
    """The query for one clause in one text field (and its ``_zh`` twin for Han runs)."""
    Q, Occur = tantivy.Query, tantivy.Occur
    parts: list[tantivy.Query] = []
    stems = terms.stems
    if stems:
        if terms.phrase and len(stems) > 1:
            parts.append(Q.phrase_query(schema, fname, stems))
        else:
            subs = []
            for s in stems:
                if s in terms.fuzzy:
                    subs.append(Q.fuzzy_term_query(schema, fname, s, distance=2 if len(s) >= 8 else 1))
                else:
                    subs.append(Q.term_query(schema, fname, s))
            if len(subs) == 1:
                parts.append(subs[0])
            else:
                # A hyphenated word ("Therac-25", "lip-sync"): any part may match, all parts rank
                # higher, adjacency higher still. Requiring the phrase would miss "Therac 25" split
                # by a line break, or a paper whose title says only "therac".
                should = [(Occur.Should, s) for s in subs]
                should.append((Occur.Should, Q.phrase_query(schema, fname, stems)))
                parts.append(Q.boolean_query(should))
    for run in terms.han:
        chars = list(run)
        zh = f"{fname}_zh"
        one = len(chars) == 1
        parts.append(Q.term_query(schema, zh, chars[0]) if one else Q.phrase_query(schema, zh, chars))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return Q.boolean_query([(Occur.Must, p) for p in parts])


def _combine(pairs: list[tuple[str, tantivy.Query | None]]) -> tantivy.Query | None:
    """The clauses as one boolean query; a query of exclusions only matches everything else."""
    occ = {"should": tantivy.Occur.Should, "must": tantivy.Occur.Must, "not": tantivy.Occur.MustNot}
    kept = [(o, q) for o, q in pairs if q is not None]
    if not kept:
        return None
    if all(o == "not" for o, _ in kept):
        kept = [("should", tantivy.Query.all_query()), *kept]
    return tantivy.Query.boolean_query([(occ[o], q) for o, q in kept])
