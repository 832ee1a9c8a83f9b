"""Turn what a user typed (an alias, a title or part of one, a file, an id, a method name) into a paper.

Commands that take "a paper" (`kb related`, `kb show`, `kb mark`) share these rules so a name that
works in one works in all. The rules run from the most to the least specific, and the first rule that
matches wins; comparisons ignore case and punctuation ("pix2pix-gan" is "Pix2PixGAN"):

1. ``alias``  the catalog alias, exactly (StyleGAN, SyncNet).
2. ``title``  the whole title (catalog title or the title read from the PDF).
3. ``id``     the paper id kb prints.
4. ``file``   a PDF path or file name (with or without ``.pdf``); a translation attached to a paper
              resolves to that paper.
5. ``title``  a part of a title, as whole words ("talking face generation").
6. ``fuzzy-title`` a close match of a title or alias (typos, abbreviations), if it is close enough.
7. ``mention`` a name that is no alias or title but appears in papers' text (a method such as
              Wav2Lip): the paper that uses it most, counting its title page and abstract triple, since
              that is where a paper names its own method.

When several papers match a rule about equally, the best wins and the others are returned in
``Resolution.others`` for the command to list; when nothing matches, ``ResolveError`` names the closest
titles. Only tantivy and rapidfuzz are used: resolving never loads the embedding model.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import CorruptIndexError, NotFoundError
from kb.models import Paper
from kb.stopwords import FUNCTION_WORDS, TITLE_FILLER
from kb.storage import store

# A fuzzy title match below this (rapidfuzz 0-100) is not trusted on its own.
FUZZY_ACCEPT = 86.0
# ... but a fuzzy match above this beats a mention in the text.
FUZZY_STRONG = 93.0
# Papers whose score is within this share of the best are "about equally" good.
TIE_SHARE = 0.9
# Pages that count as "the title page and abstract" for mentions, and how much more they count.
TITLE_PAGES = 1
TITLE_PAGE_WEIGHT = 3.0
# Words that alone name no paper ("the", "of"): a query made only of these skips the title-part rule.
STOP_WORDS = FUNCTION_WORDS | TITLE_FILLER


class ResolveError(NotFoundError):
    """Nothing in the library matches the user's words; the message suggests the closest titles."""


@dataclass
class Resolution:
    paper: Paper
    method: str  # "id"|"alias"|"title"|"file"|"fuzzy-title"|"mention"|"text"
    score: float
    others: list[Paper] = field(default_factory=list)


def norm(text: str) -> str:
    """Lowercase words without punctuation: "Out of Time: Automated..." -> "out of time automated".

    Underscores separate words too, so a title written as a file name
    ("Mittal_Animating_Face_using_Disentangled_Audio_Representations") is matched by its words.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.findall(r"[^\W_]+", text))


def compact(text: str) -> str:
    """``norm`` without spaces, so "Pix2Pix GAN", "pix2pix-gan" and "Pix2PixGAN" are one name."""
    return norm(text).replace(" ", "")


def _titles(p: Paper) -> list[str]:
    return [t for t in (p.title, p.pdf_title) if t]


def resolve_paper(gen: store.Generation, query: str) -> Resolution:
    """The paper the user means by ``query`` (see the module docstring for the rules)."""
    papers = gen.papers()
    q = query.strip()
    qn, qc = norm(q), compact(q)
    if not qc:
        raise ResolveError("no paper named: the name is empty")

    # 1. alias, exactly
    hits = [p for p in papers if p.alias and compact(p.alias) == qc]
    if hits:
        return _pick(hits, "alias", 1.0)
    # 2. whole title
    hits = [p for p in papers if any(compact(t) == qc for t in _titles(p))]
    if hits:
        return _pick(hits, "title", 1.0)
    # 3. id
    hits = [p for p in papers if p.id == q or p.id == q.lower() or compact(p.id) == qc]
    if hits:
        return _pick(hits, "id", 1.0)
    # 4. file path or name
    res = _by_file(gen, papers, q)
    if res is not None:
        return res
    # 5. part of a title, as whole words
    scored = []
    for p in papers if set(qn.split()) - STOP_WORDS else []:
        for t in _titles(p):
            tn = norm(t)
            if len(qn) >= 3 and re.search(rf"(?<!\w){re.escape(qn)}(?!\w)", tn):
                scored.append((len(qn) / max(1, len(tn)), p))
                break
    if scored:
        return _ranked(scored, "title")
    # 6./7. fuzzy title or alias, and mentions in the text
    fuzzy = _fuzzy(papers, qn)
    if fuzzy and fuzzy[0][0] >= FUZZY_STRONG:
        return _ranked([(s / 100, p) for s, p in fuzzy if s >= FUZZY_ACCEPT], "fuzzy-title")
    mentions = _mentions(gen, papers, q)
    if mentions:
        return _ranked(mentions, "mention", score_of_best=1.0)
    if fuzzy and fuzzy[0][0] >= FUZZY_ACCEPT:
        return _ranked([(s / 100, p) for s, p in fuzzy if s >= FUZZY_ACCEPT], "fuzzy-title")
    raise ResolveError(_nothing_message(papers, query))


def _pick(hits: list[Paper], method: str, score: float) -> Resolution:
    """Equal matches: prefer a paper with text (it makes a better query), then the catalog order."""
    hits = sorted(hits, key=lambda p: (not p.files, p.id))
    return Resolution(hits[0], method, score, hits[1:])


def _ranked(scored: list[tuple[float, Paper]], method: str, score_of_best: float | None = None) -> Resolution:
    scored = sorted(scored, key=lambda sp: (-sp[0], sp[1].id))
    best_score, best = scored[0]
    others = [p for s, p in scored[1:] if s >= TIE_SHARE * best_score and p.id != best.id]
    return Resolution(best, method, float(score_of_best if score_of_best is not None else best_score), others)


def _by_file(gen: store.Generation, papers: list[Paper], q: str) -> Resolution | None:
    by_id = {p.id: p for p in papers}
    files = [(f.path, f.paper_id) for f in gen.files() if f.paper_id in by_id]
    looks_like_path = os.sep in q or q.lower().endswith(".pdf")
    if looks_like_path:
        target = os.path.realpath(os.path.expanduser(q))
        for path, pid in files:
            if os.path.realpath(path) == target:
                return Resolution(by_id[pid], "file", 1.0)
    name = Path(q).name
    stem = name[:-4] if name.lower().endswith(".pdf") else name
    want = compact(stem)
    if not want:
        return None
    hits = []
    for path, pid in files:
        base = Path(path).name
        while base.lower().endswith(".pdf"):  # "x.pdf.pdf" happens
            base = base[:-4]
        if compact(base) == want and by_id[pid] not in hits:
            hits.append(by_id[pid])
    return _pick(hits, "file", 1.0) if hits else None


def _fuzzy(papers: list[Paper], qn: str) -> list[tuple[float, Paper]]:
    """Best rapidfuzz score per paper over its titles and alias, best first."""
    from rapidfuzz import fuzz

    out = []
    for p in papers:
        best = 0.0
        for t in _titles(p):
            tn = norm(t)
            best = max(best, fuzz.ratio(qn, tn), fuzz.token_set_ratio(qn, tn) if len(qn.split()) >= 2 else 0)
            if len(qn) >= 8:  # a part of the title, typed loosely
                best = max(best, fuzz.partial_ratio(qn, tn) * (0.97 if len(qn) < len(tn) else 1.0))
        if p.alias:
            best = max(best, fuzz.ratio(qn.replace(" ", ""), compact(p.alias)))
        out.append((float(best), p))
    out.sort(key=lambda sp: (-sp[0], sp[1].id))
    return out


def _mentions(gen: store.Generation, papers: list[Paper], q: str) -> list[tuple[float, Paper]]:
    """Papers whose passages name ``q`` (as a phrase), scored by how often and where.

    A paper names its own method in its title page and abstract and then all through the text; a
    paper that only cites it does so a few times. Counting passages with title-page passages
    counting triple picks the defining paper.
    """
    from kb.storage.base import Terms
    from kb.storage.index import analyze

    tokens = analyze("en", q)
    if not tokens or len(tokens) > 4 or not set(norm(q).split()) - STOP_WORDS:
        return []
    try:
        hits = gen.keyword.passage_hits([("should", Terms(stems=tokens, phrase=True, field="text"))], 2000)
    except CorruptIndexError:  # no passage index (an index built without text): nothing mentioned
        return []
    found = gen.passages(r for _s, r in hits)
    weight: dict[str, float] = {}
    for _score, row in hits:
        passage = found.get(row)
        if passage is not None:
            w = TITLE_PAGE_WEIGHT if passage.page <= TITLE_PAGES else 1.0
            weight[passage.paper_id] = weight.get(passage.paper_id, 0.0) + w
    # The catalog note counts too ("based on SyncNet and LipGAN").
    by_id = {p.id: p for p in papers}
    qn = norm(q)
    for p in papers:
        if p.note and re.search(rf"(?<!\w){re.escape(qn)}(?!\w)", norm(p.note)):
            weight[p.id] = weight.get(p.id, 0.0) + 1.0
    return [(w, by_id[pid]) for pid, w in weight.items() if pid in by_id]


def closest_titles(papers: list[Paper], query: str, n: int = 3) -> list[Paper]:
    """The papers whose title or alias is nearest to ``query`` (for "did you mean")."""
    from rapidfuzz import fuzz

    qn = norm(query)
    scored = []
    for p in papers:
        names = [norm(t) for t in _titles(p)] + ([norm(p.alias)] if p.alias else [])
        scored.append((max(max(fuzz.WRatio(qn, n_), fuzz.ratio(qn, n_)) for n_ in names), p))
    scored.sort(key=lambda sp: (-sp[0], sp[1].id))
    return [p for _s, p in scored[:n]]


def _nothing_message(papers: list[Paper], query: str) -> str:
    near = closest_titles(papers, query)
    if not near:
        return f"no paper matches {query!r}: the library is empty"
    names = "; ".join(f"{p.title} ({p.alias or p.id})" for p in near)
    return f"no paper matches {query!r}; closest titles: {names}"
