"""Papers most like a given one (or like a piece of text), with reasons a researcher can check.

Similarity of a query paper q to a candidate t mixes three views of the same MiniLM vectors, each
turned into a z-score over all candidates of this query (so a component whose cosines run high for
everyone, like passage maxima, weighs no more than one that runs low):

- ``desc``: cosine of the stored paper vectors (descriptor: title, alias, note, topics, abstract).
  The one view a catalog-only paper has; the prototype showed that without it a catalog-only
  query (StyleGAN) cannot find its PDF siblings, whose passage means sit elsewhere.
- ``mean``: cosine of the papers' passage-mean vectors (the descriptor for a paper without text).
- ``pairs``: passage-level evidence, one matrix product of q's passages against every passage:
  the mean over q's passages of their best match in t, averaged with the mean over t's passages of
  their best match in q (a symmetric "chamfer" similarity: two papers are close when most of each
  has a close counterpart in the other, not when one sentence happens to coincide).
- ``topic`` (optional): 1 when q and t share a catalog heading path, as the user filed them.

score = sum(w_k * z_k); the weights are in ``Weights`` and were chosen with bench/related_bench.py.
The query paper, its attachments (a translation is a file of the same paper) and passages that are
mostly Chinese (MiniLM does not read Chinese) never drive the result. Ties are broken by paper id,
so the same index always gives the same list.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kb.errors import CorruptIndexError, KbError
from kb.fsutil import json_path
from kb.listing import Filters
from kb.models import Paper, Passage
from kb.resolve import Resolution, resolve_paper
from kb.stopwords import FUNCTION_WORDS, GENERIC_TERMS
from kb.storage import store
from kb.storage.base import FLAG_ATTACHMENT, FLAG_CJK

if TYPE_CHECKING:
    from kb.embed import Encoder

# At most this many passages of the query paper take part (evenly spread over a long book), to keep a
# 300-page query within the time budget; ordinary papers have fewer.
MAX_QUERY_PASSAGES = 192
_WORD = re.compile(r"[a-z][a-z0-9]{2,30}")
STOP_WORDS = FUNCTION_WORDS | GENERIC_TERMS


class RelatedError(KbError):
    """The query cannot be answered (no vectors in the index, empty text)."""


@dataclass
class Weights:
    """Weights of the z-scored components (see the module docstring)."""

    desc: float = 1.0
    mean: float = 0.0
    pairs: float = 1.0
    topic: float = 3.0


DEFAULT_WEIGHTS = Weights()


@dataclass
class PassageHit:
    page: int
    file: str | None
    snippet: str
    score: float

    def to_json(self, cwd: Path | None = None) -> dict:
        return {"page": self.page, "file": json_path(self.file, cwd) if self.file else None,
                "snippet": self.snippet}


@dataclass
class Why:
    """What a related paper shares with the query: catalog topics, distinctive terms, a passage."""

    shared_topics: list[str] = field(default_factory=list)
    shared_terms: list[str] = field(default_factory=list)
    passages: list[PassageHit] = field(default_factory=list)


@dataclass
class Related:
    """One related paper, its score and why."""

    paper: Paper
    score: float
    why: Why

    def to_json(self, cwd: Path | None = None) -> dict:
        return {
            "id": self.paper.id,
            "title": self.paper.title,
            "score": round(self.score, 4),
            "files": [json_path(f, cwd) for f in self.paper.files],
            "topics": [" / ".join(t) for t in self.paper.topics],
            "why": {
                "shared_topics": self.why.shared_topics,
                "shared_terms": self.why.shared_terms,
                "passages": [h.to_json(cwd) for h in self.why.passages],
            },
        }


@dataclass
class RelatedResults:
    """The papers most like a query paper (``resolution``) or a text (``resolution`` None)."""

    query: str
    resolution: Resolution | None  # None for --text
    results: list[Related]

    def to_json(self, cwd: Path | None = None) -> dict:
        res = self.resolution
        return {
            "query": self.query,
            "resolved": {"id": res.paper.id, "title": res.paper.title, "method": res.method} if res else None,
            "results": [r.to_json(cwd) for r in self.results],
        }


class Space:
    """Everything a query needs, loaded once: which passages count and how they group by paper.

    Nothing here loops over passages in Python or copies the vector matrix: the precomputed
    per-row owner and flags (written by ingest) say which rows are usable and whose they are; a
    stable sort of the usable rows by owner gives each paper one contiguous range of columns. Each
    query is then one matrix product against the (memory-mapped) vectors, one gather of its columns
    into that order, and a few segment reductions.
    """

    def __init__(self, gen: store.Generation) -> None:
        self.gen = gen
        self.papers = gen.papers()
        self.index_of = {p.id: i for i, p in enumerate(self.papers)}
        n = len(self.papers)
        desc = np.asarray(gen.paper_vectors(), dtype=np.float32)
        if desc.shape[0] != n:
            raise RelatedError("the index has no paper vectors: run `kb ingest` (without --no-embed)")
        self.desc = desc
        vectors = gen.vectors()
        owner = gen.passage_owner()
        flags = gen.passage_flags()
        if not (vectors.shape[0] == len(owner) == len(flags)) or (len(owner) and int(owner.max()) >= n):
            raise CorruptIndexError(
                "the passage vectors do not match the manifest: run `kb ingest --rebuild`"
            )
        self.vectors = vectors
        # An attachment (a translation is a file of the same paper) and mostly-Chinese text (MiniLM
        # does not read it) are never evidence.
        usable = (flags & (FLAG_ATTACHMENT | FLAG_CJK)) == 0
        usable &= owner >= 0
        self.usable = usable
        self.owner = owner
        rows = np.flatnonzero(usable)
        # Vector row of each usable passage, grouped by paper, reading order inside (stable sort).
        self.rows = rows[np.argsort(owner[rows], kind="stable")]
        self.counts = np.bincount(owner[rows], minlength=n)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.has_text = self.counts > 0
        self.text_idx = np.flatnonzero(self.has_text)
        self.empty_idx = np.flatnonzero(~self.has_text)
        self.topic_keys = [{tuple(t) for t in p.topics} for p in self.papers]

    @functools.cached_property
    def means(self) -> np.ndarray:
        """Passage-mean vector of each paper (its descriptor when it has no text).

        Computed on first use only: the shipped weights give the mean view no weight, and it reads
        every vector once. Summed in blocks so no copy of the whole matrix is ever made.
        """
        means = self.desc.copy()
        if len(self.text_idx):
            sums = np.zeros(means.shape, np.float32)
            block = 1 << 16
            for a in range(0, len(self.owner), block):
                keep = self.usable[a : a + block]
                part = np.asarray(self.vectors[a : a + block])[keep]
                np.add.at(sums, self.owner[a : a + block][keep], part)
            sums = sums[self.text_idx]
            means[self.text_idx] = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)
        return means

    # ------------------------------------------------------------------ scoring

    def query_vectors(self, i: int) -> np.ndarray:
        """The query paper's passage vectors (evenly thinned), or its descriptor when it has no text."""
        if not self.has_text[i]:
            return self.desc[i : i + 1]
        s, c = int(self.starts[i]), int(self.counts[i])
        take = (
            np.arange(c) if c <= MAX_QUERY_PASSAGES else np.linspace(0, c - 1, MAX_QUERY_PASSAGES).astype(int)
        )
        return np.asarray(self.vectors[self.rows[s + take]])

    def components(
        self, qv: np.ndarray, qdesc: np.ndarray, qmean: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """Raw similarity components of the query against every paper, and the pair matrix.

        ``sims`` has one column per usable passage, in ``rows`` order (grouped by paper). The
        ``mean`` view is left out when ``qmean`` is None (its weight is 0).
        """
        n = len(self.papers)
        if len(self.rows):
            sims = np.asarray(qv @ self.vectors.T)[:, self.rows]  # the one product, then usable columns
        else:
            sims = np.zeros((len(qv), 0), np.float32)
        fwd = np.zeros(n, np.float32)
        bwd = np.zeros(n, np.float32)
        if len(self.text_idx):
            best_in_paper = np.maximum.reduceat(
                sims, self.starts[self.text_idx], axis=1
            )  # (nq, papers with text)
            fwd[self.text_idx] = best_in_paper.mean(axis=0)
            best_for_passage = sims.max(axis=0)
            bwd[self.text_idx] = (
                np.add.reduceat(best_for_passage, self.starts[self.text_idx]) / self.counts[self.text_idx]
            )
        if len(self.empty_idx):  # a paper without text: its descriptor is its only "passage"
            sd = qv @ self.desc[self.empty_idx].T
            fwd[self.empty_idx] = sd.mean(axis=0)
            bwd[self.empty_idx] = sd.max(axis=0)
        comp = {
            "desc": self.desc @ qdesc,
            "pairs": (fwd + bwd) / 2,
            "sims": sims,
        }
        if qmean is not None:
            comp["mean"] = self.means @ qmean
        return comp

    def score(
        self,
        comp: dict[str, np.ndarray],
        weights: Weights,
        topics: set[tuple[str, ...]] | None,
        exclude: np.ndarray,
    ) -> np.ndarray:
        """Weighted sum of z-scored components; excluded papers get -inf."""
        total = np.zeros(len(self.papers), np.float64)
        for name in ("desc", "mean", "pairs"):
            w = getattr(weights, name)
            if w:
                total += w * _z(comp[name].astype(np.float64), exclude)
        if weights.topic and topics:
            total += weights.topic * np.array([bool(topics & k) for k in self.topic_keys], np.float64)
        total[exclude] = -np.inf
        return total

    def scores_for_paper(self, i: int, weights: Weights = DEFAULT_WEIGHTS) -> tuple[np.ndarray, dict]:
        qmean = self.means[i] if weights.mean else None
        comp = self.components(self.query_vectors(i), self.desc[i], qmean)
        exclude = np.zeros(len(self.papers), bool)
        exclude[i] = True
        return self.score(comp, weights, {tuple(t) for t in self.papers[i].topics}, exclude), comp


def _z(x: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    vals = x[~exclude]
    if len(vals) < 2:
        return np.zeros_like(x)
    sd = float(vals.std())
    return (x - float(vals.mean())) / (sd if sd > 1e-9 else 1.0)


def rank(scores: np.ndarray, papers: list[Paper], limit: int, filters: Filters | None = None) -> list[int]:
    """Best first, ties by id (stable for a given index), only papers the filters accept."""
    order = sorted(
        (i for i in range(len(papers)) if np.isfinite(scores[i])),
        key=lambda i: (-round(float(scores[i]), 9), papers[i].id),
    )
    if filters is not None:
        order = [i for i in order if filters.match(papers[i])]
    return order[:limit]


# ---------------------------------------------------------------------- the public entry point


def related(
    gen: store.Generation,
    query: str,
    *,
    limit: int = 10,
    filters: Filters | None = None,
    text: bool = False,
    weights: Weights = DEFAULT_WEIGHTS,
    space: Space | None = None,
    encoder: Encoder | None = None,
) -> RelatedResults:
    """The ``limit`` papers most like the one ``query`` names (or like ``query`` as text), explained.

    ``encoder`` embeds a ``text`` query (default: the index's ONNX query model)."""
    space = space or Space(gen)
    papers = space.papers
    exclude = np.zeros(len(papers), bool)
    if text:
        if not query.strip():
            raise RelatedError("the text to compare with is empty")
        if encoder is None:
            from kb.embed import query_encoder

            encoder = query_encoder(gen)
        vec = encoder.encode([query])[0]
        comp = space.components(vec[None, :], vec, vec if weights.mean else None)
        scores = space.score(comp, weights, None, exclude)
        resolution = None
        query_words = _words(query)
        query_topics: set[tuple[str, ...]] = set()
    else:
        resolution = resolve_paper(gen, query)
        qi = space.index_of[resolution.paper.id]
        scores, comp = space.scores_for_paper(qi, weights)
        query_words = _paper_words(gen, space, qi)
        query_topics = {tuple(t) for t in resolution.paper.topics}
    chosen = rank(scores, papers, limit, filters)
    explain = _Explainer(gen, space, query_words)
    results = []
    for j in chosen:
        why = Why(
            shared_topics=[" / ".join(t) for t in sorted(query_topics & space.topic_keys[j])]
            or _shared_levels(query_topics, space.topic_keys[j]),
            shared_terms=explain.shared_terms(j),
            passages=explain.passages(j, comp["sims"]),
        )
        results.append(Related(papers[j], float(scores[j]), why))
    return RelatedResults(query, resolution, results)


def _shared_levels(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> list[str]:
    """Shared headings at any level when no whole path is shared ("GAN" for GAN/StyleGAN and GAN)."""
    la = {x for t in a for x in t}
    lb = {x for t in b for x in t}
    return sorted(la & lb)


# ---------------------------------------------------------------------- explanations


def _words(text: str) -> Counter:
    return Counter(w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS)


def _paper_text(gen: store.Generation, space: Space, i: int) -> list[Passage]:
    """The usable passages of paper ``i``, in reading order."""
    rows = space.rows[space.starts[i] : space.starts[i] + space.counts[i]].tolist()
    got = gen.passages(rows)
    return [got[r] for r in rows if r in got]


def _descriptor_text(p: Paper) -> str:
    parts = [p.title, p.alias or "", p.note or "", " ".join(" ".join(t) for t in p.topics), p.abstract or ""]
    return " ".join(parts)


def _paper_words(gen: store.Generation, space: Space, i: int) -> Counter:
    p = space.papers[i]
    words = _words(_descriptor_text(p))
    for passage in _paper_text(gen, space, i):
        words.update(_words(passage.text))
    return words


class _Explainer:
    """Shared distinctive terms (tf-idf over passages) and the best matching passages of a result."""

    def __init__(self, gen: store.Generation, space: Space, query_words: Counter) -> None:
        self.gen = gen
        self.space = space
        self.query_words = query_words
        self.q_total = max(1, sum(query_words.values()))
        self._idf: dict[str, float] = {}
        self._searcher = None
        self._n_docs = 1

    def _idf_of(self, words: list[str]) -> dict[str, float]:
        missing = [w for w in words if w not in self._idf]
        if missing:
            from kb.storage.index import analyze

            keyword = self.gen.keyword
            self._n_docs = max(1, keyword.passage_docs())
            stems = analyze("en", " ".join(missing))
            for w, s in zip(missing, stems, strict=False):
                df = keyword.doc_freq(s, ["text"])
                self._idf[w] = float(np.log((self._n_docs + 1) / (df + 1)))
        return {w: self._idf.get(w, 0.0) for w in words}

    def shared_terms(self, j: int, n: int = 5) -> list[str]:
        p = self.space.papers[j]
        words = _words(_descriptor_text(p))
        for passage in _paper_text(self.gen, self.space, j):
            words.update(_words(passage.text))
        shared = [w for w in words if w in self.query_words]
        if not shared:
            return []
        idf = self._idf_of(shared)
        t_total = max(1, sum(words.values()))
        weight = {w: min(self.query_words[w] / self.q_total, words[w] / t_total) * idf[w] for w in shared}
        best = sorted(shared, key=lambda w: (-weight[w], w))
        return [w for w in best[:n] if weight[w] > 0]

    def passages(self, j: int, sims: np.ndarray, n: int = 1) -> list[PassageHit]:
        """The passage(s) of result ``j`` that best match any passage of the query."""
        c = int(self.space.counts[j])
        if c == 0 or sims.shape[1] == 0:
            return []
        s = int(self.space.starts[j])
        col_best = sims[:, s : s + c].max(axis=0)
        order = sorted(range(c), key=lambda k: (-float(col_best[k]), k))
        rows = [int(self.space.rows[s + k]) for k in order[: max(n * 3, n)]]
        got = self.gen.passages(rows)
        hits: list[PassageHit] = []
        pages: set[tuple[str | None, int]] = set()
        for k, r in zip(order, rows, strict=False):
            if r not in got or len(hits) >= n:
                continue
            p = got[r]
            if (p.file, p.page) in pages:
                continue
            pages.add((p.file, p.page))
            hits.append(PassageHit(p.page, p.file, _snippet(p.text), float(col_best[k])))
        return hits


def _snippet(text: str, width: int = 240) -> str:
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    cut = flat[:width].rsplit(" ", 1)[0]
    return cut + " …"

