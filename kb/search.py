"""`kb search`: keyword (BM25), semantic (embeddings) and hybrid ranking of papers, with passages.

Design, and why:
- Results are papers. Two keyword indexes are searched, through the storage seam
  (``kb.storage.base.KeywordSearch``; tantivy in ``kb.storage.index``): the paper index (title,
  alias, note, topic, venue, authors, file name, abstract; catalog-only papers live only here) and
  the passage index (PDF text by page). A paper's keyword score is its metadata BM25 score (fields boosted,
  see ``FIELD_BOOSTS``) plus its best passage scores with decaying weights, so a paper whose title
  says the words beats one that mentions them once on page 9, and several good passages beat one.
- Semantic: the query vector against every passage vector and every paper vector, as two matrix
  products. A paper with text scores 0.7 x its paper ("descriptor": title, note, topics, abstract)
  vector + 0.3 x its best passage; a paper without text scores its descriptor alone. The best of a
  100-page book's passages is high by chance more often than a 10-page paper's; the descriptor says
  what the paper is about and pulls such chance maxima back (``Tuning.paper_weight``).
- Hybrid: a convex combination of the two scores, each normalised per query (keyword by its best
  score, cosine between the 100th and the best paper), weight ``Tuning.alpha`` on the semantic side.
  Unlike reciprocal-rank fusion it keeps "how much better than the rest": a clear title match is
  not outvoted by a paper that is merely ranked second by the other side. The choice and its
  numbers: ``bench/search_bench.py --sweep`` (RRF at k=10/30/60 lost on both sets; alpha 0.6-0.7
  gained on pwl-dev but lost more on userlib; 0.3-0.4 lost on both).
- Snippets: the passages that matched the keywords (highlighted), else the semantically closest
  passages; for catalog-only papers, the field that matched (note, topic, title, venue).

numpy and onnxruntime are imported only for semantic and hybrid modes: a keyword search must start
fast.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kb import query as qmod
from kb.errors import CorruptIndexError, UsageError
from kb.fsutil import json_path
from kb.listing import Filters
from kb.models import Paper, Passage
from kb.storage.base import Terms

if TYPE_CHECKING:
    from kb.embed import Encoder
    from kb.storage.store import Generation

MODES = ("hybrid", "keyword", "semantic")

# Field weights of the paper index. Title and alias name the paper; the user's own note and topic
# say what it is about; venue, authors, file name and abstract are weaker evidence.
FIELD_BOOSTS = {
    "title": 3.0,
    "alias": 3.0,
    "note": 2.0,
    "topic": 2.0,
    "filename": 1.5,
    "venue": 1.0,
    "authors": 1.0,
    "abstract": 1.0,
}
PASSAGE_WEIGHTS = (1.0, 0.5, 0.25)  # best, second, third passage of a paper in the keyword score
NO_TEXT_BOOST = 1.0  # a paper without text adds this share of its metadata score in place of passages
PASSAGE_HITS = 400  # keyword passage hits read per query (enough for every paper's best three)
SEMANTIC_TOP_ROWS = 2000  # passage rows considered for snippets in semantic mode
SNIPPET_CHARS = 240
MAX_HITS = 3


@dataclass(frozen=True)
class Tuning:
    """The ranking knobs that bench/search_bench.py --sweep varies; the defaults won on both query sets.

    Passed to ``search`` (``Library(tuning=...)``); nothing reads a global.
    """

    fusion: str = "cc"  # "cc": convex combination of normalised scores; "rrf": reciprocal-rank fusion
    alpha: float = 0.5  # weight of the semantic side in "cc"
    rrf_k: int = 60  # the RRF constant, for "rrf"
    # Share of the descriptor vector in a paper-with-text's semantic score; None: the better of
    # descriptor and best passage (the earlier rule, kept for the sweep).
    paper_weight: float | None = 0.7
    semantic_depth: int = 100  # semantic candidates fused (the rest of the library is noise)


DEFAULT_TUNING = Tuning()


class SearchError(UsageError):
    """A search this index cannot run (semantic search without vectors, a bad mode or limit)."""


@dataclass
class SearchOptions:
    query: str
    mode: str = "hybrid"
    limit: int = 10
    filters: Filters = field(default_factory=Filters)


@dataclass
class Hit:
    """Why a paper matched: a passage (page, file) or a catalog field, with highlight ranges."""

    field: str  # "text", "title", "alias", "note", "topic", "venue"
    snippet: str
    page: int | None = None
    file: str | None = None
    highlights: list[tuple[int, int]] = field(default_factory=list)

    def to_json(self, cwd: Path | None = None) -> dict:
        return {
            "page": self.page,
            "file": json_path(self.file, cwd) if self.file else None,
            "snippet": self.snippet,
            "field": self.field,
            "highlights": [list(x) for x in self.highlights],
        }


@dataclass
class SearchResult:
    """One paper found, its score and the passages or fields that explain it."""

    paper: Paper
    score: float
    hits: list[Hit]
    fuzzy: bool = False  # matched only through a typo-tolerant term

    def to_json(self, cwd: Path | None = None) -> dict:
        p = self.paper
        return {
            "id": p.id,
            "title": p.title,
            "alias": p.alias,
            "score": self.score,
            "year": p.year,
            "venue": p.venue,
            "topics": p.topics,
            "read": p.read,
            "files": [json_path(f, cwd) for f in p.files],
            "fuzzy": self.fuzzy,
            "hits": [h.to_json(cwd) for h in self.hits],
        }


@dataclass
class SearchResults:
    """The answer to one query: ranked papers, best first (empty when nothing matches)."""

    query: str
    mode: str
    results: list[SearchResult]
    fuzzy_terms: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self, cwd: Path | None = None) -> dict:
        return {
            "query": self.query,
            "mode": self.mode,
            "fuzzy_terms": self.fuzzy_terms,
            "results": [r.to_json(cwd) for r in self.results],
        }


# --------------------------------------------------------------------------- query terms


@dataclass
class _Terms:
    """A clause turned into index tokens: English stems and runs of Han characters."""

    clause: qmod.Clause
    stems: list[str]
    han: list[str]
    fuzzy: list[str] = field(default_factory=list)  # stems with no exact hit, searched with typos

    def index_terms(self) -> Terms:
        """What the storage matches (``kb.storage.base.Terms``)."""
        c = self.clause
        return Terms(stems=self.stems, han=self.han, phrase=c.phrase, field=c.field, fuzzy=self.fuzzy)


_HAN_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3040-\u30ff]+")


def _clause_terms(clause: qmod.Clause, single: bool) -> _Terms:
    from kb.storage.index import analyze

    han = _HAN_RUN.findall(clause.text)
    rest = _HAN_RUN.sub(" ", clause.text)
    pairs = [(tok, w) for w in re.findall(r"[^\W_]+", rest) for tok in analyze("en", w)]
    if not clause.phrase and not single and any(not qmod.is_stop_word(w) for _t, w in pairs):
        # In a many-word query a stop word adds noise, not meaning.
        pairs = [(t, w) for t, w in pairs if not qmod.is_stop_word(w)]
    stems = [t for t, _w in pairs]
    return _Terms(clause=clause, stems=stems, han=han)


# --------------------------------------------------------------------------- the engine


class _Engine:
    """One search's view of the generation: its papers, by id."""

    def __init__(self, gen: Generation) -> None:
        self.gen = gen
        self.papers = gen.papers()
        self.by_id = {p.id: p for p in self.papers}


@dataclass
class _Keyword:
    scores: dict[str, float]
    passages: dict[str, list[tuple[float, int]]]  # paper id -> [(score, row)] best first
    meta: set[str]  # papers whose catalog/metadata fields matched
    fuzzy_only: set[str]
    fuzzy_terms: list[str]
    terms: list[_Terms]


def _keyword(engine: _Engine, pq: qmod.ParsedQuery) -> _Keyword:
    single = len(pq.positive) == 1
    terms = [_clause_terms(c, single) for c in pq.clauses]
    terms = [t for t in terms if t.stems or t.han]
    kw = engine.gen.keyword
    fuzzy_terms: list[str] = []
    for t in terms:
        if t.clause.phrase or t.clause.occur == "not":
            continue
        fields = [t.clause.field] if t.clause.field else list(FIELD_BOOSTS)
        if t.clause.field in (None, "text"):
            fields.append("text")
        for s in t.stems:
            if len(s) >= 4 and not s.isdigit() and not kw.doc_freq(s, fields):
                t.fuzzy.append(s)
                fuzzy_terms.append(s)

    # A required clause is required of the paper, not of every document: score with it as optional
    # here and check it paper-wide below.
    relaxed = [("should" if t.clause.occur == "must" else t.clause.occur, t.index_terms()) for t in terms]
    meta = kw.paper_scores(relaxed, FIELD_BOOSTS)
    rows = kw.passage_hits(relaxed, PASSAGE_HITS)
    row_pid = engine.gen.passage_papers(r for _s, r in rows)

    passages: dict[str, list[tuple[float, int]]] = {}
    for score, row in rows:
        if row in row_pid:
            passages.setdefault(row_pid[row], []).append((score, row))
    # A paper excluded by a NOT clause in its metadata is excluded as a whole.
    excluded = _excluded(engine, terms)
    required: set[str] | None = None
    for t in terms:
        if t.clause.occur != "must":
            continue
        one = [("should", t.index_terms())]
        have = set(kw.paper_scores(one, FIELD_BOOSTS))
        have |= set(engine.gen.passage_papers(r for _s, r in kw.passage_hits(one, 10000)).values())
        required = have if required is None else required & have

    scores: dict[str, float] = {}
    for pid in set(meta) | set(passages):
        if pid in excluded or (required is not None and pid not in required):
            continue
        ps = sorted((s for s, _r in passages.get(pid, [])), reverse=True)[: len(PASSAGE_WEIGHTS)]
        body = sum(w * s for w, s in zip(PASSAGE_WEIGHTS, ps, strict=False))
        if not engine.by_id[pid].files or engine.by_id[pid].status != "ok":
            # No text to match: let the catalog match stand in for it, so a catalog-only paper
            # whose title says the query is not buried under papers that merely mention it.
            body = max(body, NO_TEXT_BOOST * meta.get(pid, 0.0))
        scores[pid] = meta.get(pid, 0.0) + body
    fuzzy_only: set[str] = set()
    if fuzzy_terms:
        exact_terms = [t for t in terms if not t.fuzzy and t.clause.occur != "not"]
        if not exact_terms:
            fuzzy_only = set(scores)
    return _Keyword(
        scores=scores,
        passages={k: v for k, v in passages.items() if k in scores},
        meta=set(meta) & set(scores),
        fuzzy_only=fuzzy_only,
        fuzzy_terms=fuzzy_terms,
        terms=terms,
    )


@dataclass
class _Semantic:
    scores: dict[str, float]
    best_rows: dict[str, list[tuple[float, int]]]


def _semantic(engine: _Engine, text: str, encoder: Encoder | None, tuning: Tuning) -> _Semantic:
    import numpy as np

    gen = engine.gen
    version = gen.settings.get("model_version", "none")
    if version == "none":
        raise SearchError(
            "this index has no vectors (built with --no-embed): use --mode keyword, "
            "or run `kb ingest` without --no-embed"
        )
    if encoder is None:
        from kb.embed import query_encoder

        encoder = query_encoder(gen)
    qv = encoder.encode([text])[0]
    paper_sims = np.asarray(gen.paper_vectors() @ qv, dtype=np.float32)
    vecs = gen.vectors()
    best = paper_sims.copy()
    best_rows: dict[str, list[tuple[float, int]]] = {}
    if len(vecs):
        owner = gen.passage_owner()  # paper row of each passage row, precomputed by ingest
        if len(owner) != len(vecs):
            raise CorruptIndexError(
                "the passage vectors do not match the manifest: run `kb ingest --rebuild`"
            )
        sims = np.asarray(vecs @ qv, dtype=np.float32)
        n_papers = len(engine.papers)
        passage_best = np.full(n_papers, -1.0, dtype=np.float32)
        np.maximum.at(passage_best, owner, sims)
        has_text = np.bincount(owner, minlength=n_papers) > 0
        w = tuning.paper_weight
        if w is None:
            best = np.maximum(paper_sims, passage_best)
        else:
            best = np.where(has_text, w * paper_sims + (1 - w) * passage_best, paper_sims)
        # The best rows for snippets: a partition, then a sort of those only (ties by row).
        k = min(SEMANTIC_TOP_ROWS, len(sims))
        top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
        top = top[np.lexsort((top, -sims[top]))]
        for r, o in zip(top.tolist(), owner[top].tolist(), strict=True):
            lst = best_rows.setdefault(engine.papers[o].id, [])
            if len(lst) < MAX_HITS:
                lst.append((float(sims[r]), r))
    scores = {p.id: float(best[i]) for i, p in enumerate(engine.papers)}
    return _Semantic(scores=scores, best_rows=best_rows)


def _rank(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda k: (-scores[k], k))


def _fuse(kw: dict[str, float], sem: dict[str, float], tuning: Tuning) -> dict[str, float]:
    """Hybrid score of every candidate paper (see ``Tuning``)."""
    if tuning.fusion == "rrf":
        return _rrf(_rank(kw), _rank(sem)[: tuning.semantic_depth], k=tuning.rrf_k)
    # Convex combination of per-query normalised scores: keyword divided by its best score, cosine
    # rescaled between the 100th and the best candidate, so "how much better than the rest" counts,
    # not just the order (a keyword list of weak one-word matches cannot outvote a clear semantic hit).
    top_k = max(kw.values()) if kw else 1.0
    ranked = sorted(sem.values(), reverse=True)[: tuning.semantic_depth]
    hi, lo = (ranked[0], ranked[-1]) if ranked else (1.0, 0.0)
    span = max(hi - lo, 1e-6)
    out: dict[str, float] = {}
    for pid in set(kw) | set(ranked and [k for k, v in sem.items() if v >= lo]):
        k_part = kw.get(pid, 0.0) / top_k if top_k > 0 else 0.0
        s_part = max(0.0, (sem.get(pid, lo) - lo) / span)
        out[pid] = tuning.alpha * s_part + (1 - tuning.alpha) * k_part
    return out


def _rrf(*rankings: list[str], k: int) -> dict[str, float]:
    """Reciprocal-rank fusion with the constant ``k`` of the caller's ``Tuning``."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for i, pid in enumerate(ranking):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (k + i + 1)
    return fused


# --------------------------------------------------------------------------- snippets

_WORD = re.compile(r"[A-Za-z0-9\u00c0-\u024f]+")


class _Highlighter:
    """Finds the query's words in a text the way the index matched them (stems, Han runs, typos)."""

    def __init__(self, terms: list[_Terms]) -> None:
        from kb.storage.index import analyze

        self.analyze = analyze
        pos = [t for t in terms if t.clause.occur != "not"]
        self.stems = {s for t in pos for s in t.stems if s not in t.fuzzy}
        self.fuzzy = {s for t in pos for s in t.fuzzy}
        self.han = sorted({h for t in pos for h in t.han}, key=len, reverse=True)
        self._cache: dict[str, str | None] = {}

    def _match(self, word: str) -> str | None:
        key = word.lower()
        if key not in self._cache:
            toks = self.analyze("en", word)
            stem = toks[0] if toks else ""
            hit = stem if stem in self.stems else None
            if hit is None and self.fuzzy and len(stem) >= 3:
                from rapidfuzz.distance import Levenshtein

                hit = next(
                    (f for f in self.fuzzy if Levenshtein.distance(stem, f) <= (2 if len(f) >= 8 else 1)),
                    None,
                )
            self._cache[key] = hit
        return self._cache[key]

    def ranges(self, text: str) -> list[tuple[int, int, str]]:
        out: list[tuple[int, int, str]] = []
        if self.stems or self.fuzzy:
            for m in _WORD.finditer(text):
                hit = self._match(m.group())
                if hit:
                    out.append((m.start(), m.end(), hit))
        for run in self.han:
            start = text.find(run)
            while start >= 0:
                out.append((start, start + len(run), run))
                start = text.find(run, start + len(run))
        return sorted(out)

    def snippet(self, text: str, width: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]], int]:
        """The window of ``text`` with the most distinct query terms, its highlight ranges, and that count."""
        text = re.sub(r"\s+", " ", text).strip()
        rs = self.ranges(text)
        start = 0
        best = 0
        for i, (s, _e, _t) in enumerate(rs):
            window_terms = {t for (s2, _e2, t) in rs[i:] if s2 < s + width - 40}
            if len(window_terms) > best:
                best, start = len(window_terms), max(0, s - 40)
        if start > 0:
            space = text.find(" ", start)
            start = space + 1 if 0 <= space < start + 20 else start
        end = min(len(text), start + width)
        if end < len(text):
            space = text.rfind(" ", start, end)
            end = space if space > start + width // 2 else end
        piece = text[start:end]
        prefix = "…" if start > 0 else ""
        suffix = "…" if end < len(text) else ""
        shift = len(prefix) - start
        hl = [(s + shift, e + shift) for s, e, _t in rs if s >= start and e <= end]
        return prefix + piece + suffix, hl, best


def _meta_fields(paper: Paper) -> list[tuple[str, str]]:
    topics = " ; ".join(" / ".join(t) for t in paper.topics)
    venue = " ".join(x for x in (paper.venue, paper.org) if x)
    return [
        ("note", paper.note or ""),
        ("topic", topics),
        ("venue", venue),
        ("title", paper.title),
        ("alias", paper.alias or ""),
    ]


def _hits_for(
    paper: Paper, rows: list[int], rowdata: dict[int, Passage], hl: _Highlighter, keyword_matched: bool
) -> list[Hit]:
    hits: list[Hit] = []
    for r in rows:
        if r not in rowdata:
            continue
        passage = rowdata[r]
        snip, ranges, _n = hl.snippet(passage.text)
        hits.append(Hit(field="text", snippet=snip, page=passage.page, file=passage.file, highlights=ranges))
        if len(hits) >= MAX_HITS:
            break
    meta_hits: list[Hit] = []
    for name, value in _meta_fields(paper):
        if not value:
            continue
        snip, ranges, n = hl.snippet(value, width=400)
        if n:
            meta_hits.append(Hit(field=name, snippet=snip, highlights=ranges))
    if keyword_matched and meta_hits:
        # What the user wrote (note, topic) explains a match best; it goes first.
        first = [h for h in meta_hits if h.field in ("note", "topic", "venue")][:1]
        hits = first + hits
        if not hits:
            hits = meta_hits[:1]
    if not hits:
        hits = [Hit(field="title", snippet=paper.title)]
    return hits[:MAX_HITS]


# --------------------------------------------------------------------------- entry point


def search(
    gen: Generation,
    options: SearchOptions,
    *,
    encoder: Encoder | None = None,
    tuning: Tuning = DEFAULT_TUNING,
) -> SearchResults:
    """Run one search and return ranked papers with the passages that explain them.

    ``encoder`` embeds the query (default: the index's own ONNX query model); ``tuning`` sets the
    ranking knobs.
    """
    if options.mode not in MODES:
        raise SearchError(f"unknown mode {options.mode!r}: choose {', '.join(MODES)}")
    if options.limit < 1:
        raise SearchError("--limit must be at least 1")
    pq = qmod.parse(options.query)
    filters = options.filters
    engine = _Engine(gen)

    def allowed(p: Paper) -> bool:
        if not filters.match(p):
            return False
        if pq.year and (p.year is None or not pq.year[0] <= p.year <= pq.year[1]):
            return False
        return pq.read is None or bool(p.read) == pq.read

    has_terms = any(c.occur != "not" for c in pq.clauses)
    kw = _keyword(engine, pq) if options.mode in ("keyword", "hybrid") else None
    if kw is None:
        single = len(pq.positive) == 1
        terms = [_clause_terms(c, single) for c in pq.clauses]
    else:
        terms = kw.terms
    warnings = list(pq.warnings)
    sem: _Semantic | None = None
    if options.mode in ("semantic", "hybrid") and has_terms and pq.free_text:
        try:
            sem = _semantic(engine, pq.free_text, encoder, tuning)
        except SearchError:
            if options.mode == "semantic":
                raise
            warnings.append("this index has no vectors: keyword results only")

    if not has_terms:
        # Only filters (year:, read:): list what matches, in catalog order.
        order = [p.id for p in engine.papers]
        scores = dict.fromkeys(order, 0.0)
    elif options.mode == "keyword":
        assert kw is not None
        scores = kw.scores
        order = _rank(scores)
    elif options.mode == "semantic" or kw is None:
        assert sem is not None
        scores = _excluding(sem.scores, engine, terms)
        order = _rank(scores)
    else:
        if sem is None:
            scores = kw.scores
        else:
            sem_scores = _excluding(sem.scores, engine, terms)
            if any(t.clause.occur == "must" for t in terms):
                sem_scores = {k: v for k, v in sem_scores.items() if k in kw.scores}
            scores = _fuse(kw.scores, sem_scores, tuning)
        order = _rank(scores)

    chosen = [pid for pid in order if pid in engine.by_id and allowed(engine.by_id[pid])][: options.limit]
    hl = _Highlighter(terms)
    wanted_rows: dict[str, list[int]] = {}
    for pid in chosen:
        rows = [r for _s, r in (kw.passages.get(pid, []) if kw else [])][:MAX_HITS]
        if not rows and sem is not None:
            rows = [r for _s, r in sem.best_rows.get(pid, [])][:MAX_HITS]
        wanted_rows[pid] = rows
    rowdata = gen.passages({r for rows in wanted_rows.values() for r in rows})
    results = []
    for pid in chosen:
        paper = engine.by_id[pid]
        matched = bool(kw and pid in kw.meta)
        hits = _hits_for(paper, wanted_rows[pid], rowdata, hl, matched)
        fuzzy = bool(
            kw
            and pid in kw.fuzzy_only
            and (options.mode == "keyword" or pid not in (sem.scores if sem else {}) or pid in kw.scores)
        )
        results.append(
            SearchResult(
                paper=paper,
                score=round(float(scores.get(pid, 0.0)), 6),
                hits=hits,
                fuzzy=fuzzy and bool(kw and pid in kw.scores),
            )
        )
    return SearchResults(
        query=options.query,
        mode=options.mode,
        results=results,
        fuzzy_terms=kw.fuzzy_terms if kw else [],
        warnings=warnings,
    )


def _excluded(engine: _Engine, terms: list[_Terms]) -> set[str]:
    """The papers a NOT clause excludes by their catalog fields (as a whole, whatever their text says)."""
    excluded: set[str] = set()
    for t in terms:
        if t.clause.occur == "not":
            excluded |= set(engine.gen.keyword.paper_scores([("should", t.index_terms())], FIELD_BOOSTS))
    return excluded


def _excluding(scores: dict[str, float], engine: _Engine, terms: list[_Terms]) -> dict[str, float]:
    """Semantic scores without the papers a NOT clause excludes."""
    excluded = _excluded(engine, terms)
    if not excluded:
        return scores
    return {k: v for k, v in scores.items() if k not in excluded and not math.isnan(v)}
