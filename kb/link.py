"""Link PDF files on disk to the catalog entries that describe them.

Users write PDF links by hand and move files around, so an exact path is only the first of several
kinds of evidence, strongest first:

1. ``pdf-link``: the entry's ``[[PDF]]`` link resolved against the catalog's folder, each library root
   and its parent (URL-decoded, case-insensitive, spaces/underscores/hyphens alike, doubled ``.pdf``
   ignored), or failing that a PDF with the same file name anywhere;
2. ``other-link``: the file name of any other link of the entry (the title link pointing at a copy of
   the PDF, a ``[[翻译]]`` translation...). Exact file names are near-certain, so this runs before the
   fuzzy pass even though it is weaker in kind; a PDF found through a link that is neither the PDF nor
   the title link is an ``attachment`` (a translation, slides), not the paper itself;
3. ``name`` / ``title``: fuzzy similarity of the file name, and of the title the PDF states about itself,
   to entry titles and aliases, assigned one-to-one best first among PDFs and entries still unlinked.

A PDF that sits under a folder holding a catalog is only fuzzily matched against that catalog's
entries: a paper next to a reading list belongs to that list, and this keeps e.g. a one-word file name
from latching onto a similar title in an unrelated folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from rapidfuzz import fuzz

from kb.models import Entry, PdfMeta

# Fuzzy score needed to link. Measured with every link removed from userlib and pwl-dev: right pairs that
# can be told by name score >= 0.88, the best wrong pairs <= 0.86 ("A Survey on Visual Transformer" vs
# "Transformers in Vision: A Survey").
THRESHOLD = 0.87
UNSURE_MARGIN = 0.06  # scores within this of the threshold (either side) are flagged unsure
PRIMARY_LABELS = frozenset({"pdf", "paper"})  # links that point at the paper itself
GENERIC_NAMES = frozenset({"paper", "pdf", "download", "file", "fulltext", "main", "index", "article"})
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass
class PdfCandidate:
    """A PDF found on disk, with what it says about itself when that has been read."""

    path: Path
    meta: PdfMeta | None = None


@dataclass
class LinkDecision:
    """Which entry (index into the entries list) a PDF belongs to, how that was decided and how surely."""

    pdf: Path
    entry_index: int | None
    method: str  # pdf-link, other-link, name, title, none
    score: float
    unsure: bool
    attachment: bool


# ---------------------------------------------------------------------------------------------------
# Normalisation


def name_key(name: str) -> str:
    """Comparable form of a file name: decoded, lower-case, ``.pdf`` (repeated) dropped, words only.

    ``Facial_Emotion_Recognition_Using_Computer_Vision.pdf.pdf`` and
    ``Facial Emotion Recognition Using Computer-Vision.pdf`` share one key.
    """
    name = unquote(name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    while name.lower().endswith(".pdf"):
        name = name[:-4].rstrip(". ")
    return text_key(name)


def text_key(text: str) -> str:
    """Lower-case words of a title, punctuation and underscores dropped, for fuzzy comparison."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def _path_key(path: Path) -> tuple[str, str]:
    return os.path.normcase(os.path.normpath(str(path.parent))).lower(), name_key(path.name)


def _is_local(url: str) -> bool:
    return not _SCHEME.match(url) or url.lower().startswith("file:")


def _local_path(url: str) -> str:
    """The file path a local link names: ``file://`` dropped, query/fragment cut, URL-decoded."""
    if url.lower().startswith("file:"):
        url = urlsplit(url).path
    url = url.split("#")[0].split("?")[0]
    return unquote(url).strip()


def _link_file_name(url: str) -> str:
    """Last path segment of a URL, or ``""`` for links that do not name a file."""
    path = urlsplit(url).path if not _is_local(url) else _local_path(url)
    return unquote(path.rstrip("/").rsplit("/", 1)[-1]) if path else ""


# ---------------------------------------------------------------------------------------------------
# Index of the PDFs


@dataclass
class _Pdfs:
    """Lookups over the candidate PDFs, built once per call."""

    paths: list[Path]
    by_path: dict[tuple[str, str], list[int]]
    by_name: dict[str, list[int]]

    @classmethod
    def build(cls, pdfs: list[PdfCandidate]) -> _Pdfs:
        paths = [Path(os.path.abspath(p.path)) for p in pdfs]
        by_path: dict[tuple[str, str], list[int]] = {}
        by_name: dict[str, list[int]] = {}
        for i, path in enumerate(paths):
            by_path.setdefault(_path_key(path), []).append(i)
            by_name.setdefault(name_key(path.name), []).append(i)
        return cls(paths, by_path, by_name)


def _catalog_dirs(entries: list[Entry]) -> list[Path]:
    return [Path(os.path.abspath(e.catalog)).parent for e in entries]


def _scope(pdf: Path, dirs: set[Path]) -> Path | None:
    """Deepest catalog folder containing the PDF; ``None`` when the PDF lives outside all of them."""
    best: Path | None = None
    for d in dirs:
        if pdf.is_relative_to(d) and (best is None or len(d.parts) > len(best.parts)):
            best = d
    return best


# ---------------------------------------------------------------------------------------------------
# Public entry point


def link_pdfs(
    entries: list[Entry], pdfs: list[PdfCandidate], library_roots: list[Path]
) -> list[LinkDecision]:
    """Decide for every PDF which entry it belongs to (at most one); returns one decision per PDF."""
    index = _Pdfs.build(pdfs)
    dirs = _catalog_dirs(entries)
    dir_set = set(dirs)
    scopes = [_scope(p, dir_set) for p in index.paths]
    roots = [Path(os.path.abspath(r)) for r in library_roots]
    decisions: dict[int, LinkDecision] = {}
    _link_by_pdf_links(entries, index, dirs, roots, scopes, decisions)
    _link_by_other_links(entries, index, dirs, scopes, decisions)
    best_rejected = _link_by_similarity(entries, pdfs, index, dirs, scopes, decisions)
    out: list[LinkDecision] = []
    for i, path in enumerate(index.paths):
        if i in decisions:
            out.append(decisions[i])
        else:
            score = best_rejected.get(i, 0.0)
            out.append(LinkDecision(path, None, "none", score, score >= THRESHOLD - UNSURE_MARGIN, False))
    return out


# ---------------------------------------------------------------------------------------------------
# Pass 1: PDF links


def _link_by_pdf_links(
    entries: list[Entry],
    index: _Pdfs,
    dirs: list[Path],
    roots: list[Path],
    scopes: list[Path | None],
    decisions: dict[int, LinkDecision],
) -> None:
    for e_idx, entry in enumerate(entries):
        for link in entry.links:
            if link.label.lower() != "pdf" or not link.url.strip() or not _is_local(link.url):
                continue
            found = _resolve(_local_path(link.url), dirs[e_idx], roots, index, decisions)
            score = 1.0
            if found is None:
                found = _same_name(name_key(link.url), dirs[e_idx], index, scopes, decisions)
                score = 0.95
            if found is not None:
                decisions[found] = LinkDecision(index.paths[found], e_idx, "pdf-link", score, False, False)


def _resolve(
    rel: str, catalog_dir: Path, roots: list[Path], index: _Pdfs, decisions: dict[int, LinkDecision]
) -> int | None:
    """Try the link relative to the catalog folder, then each library root and the root's parent."""
    candidates = [Path(rel)] if Path(rel).is_absolute() else []
    bases = [catalog_dir] + [b for r in roots for b in (r, r.parent)]
    candidates += [base / rel.lstrip("/") for base in bases]
    for candidate in candidates:
        for i in index.by_path.get(_path_key(Path(os.path.normpath(candidate))), []):
            if i not in decisions:
                return i
    return None


def _same_name(
    key: str,
    catalog_dir: Path,
    index: _Pdfs,
    scopes: list[Path | None],
    decisions: dict[int, LinkDecision],
) -> int | None:
    """A free PDF with the link's file name anywhere, preferring one next to the catalog."""
    if not key or key in GENERIC_NAMES:
        return None
    free = [i for i in index.by_name.get(key, []) if i not in decisions]
    if not free:
        return None
    free.sort(key=lambda i: (scopes[i] != catalog_dir, str(index.paths[i])))
    return free[0]


# ---------------------------------------------------------------------------------------------------
# Pass 2: file names of other links


def _link_by_other_links(
    entries: list[Entry],
    index: _Pdfs,
    dirs: list[Path],
    scopes: list[Path | None],
    decisions: dict[int, LinkDecision],
) -> None:
    for e_idx, entry in enumerate(entries):
        for link in entry.links:
            if link.label.lower() == "pdf" and _is_local(link.url):
                continue  # already tried as a PDF link
            file_name = _link_file_name(link.url)
            if not file_name.lower().endswith(".pdf"):
                continue
            found = _same_name(name_key(file_name), dirs[e_idx], index, scopes, decisions)
            if found is not None:
                attachment = link.label.lower() not in PRIMARY_LABELS
                decisions[found] = LinkDecision(
                    index.paths[found], e_idx, "other-link", 0.9, False, attachment
                )


# ---------------------------------------------------------------------------------------------------
# Pass 3: similarity


def _link_by_similarity(
    entries: list[Entry],
    pdfs: list[PdfCandidate],
    index: _Pdfs,
    dirs: list[Path],
    scopes: list[Path | None],
    decisions: dict[int, LinkDecision],
) -> dict[int, float]:
    """Assign remaining PDFs to entries without a PDF, best score first; returns best scores of the rest."""
    has_paper = {d.entry_index for d in decisions.values() if not d.attachment}
    free_entries = [i for i in range(len(entries)) if i not in has_paper]
    entry_keys = {i: _entry_keys(entries[i]) for i in free_entries}
    scored: list[tuple[float, int, int, str]] = []
    best: dict[int, float] = {}
    for p_idx, cand in enumerate(pdfs):
        if p_idx in decisions:
            continue
        pdf_name = name_key(index.paths[p_idx].name)
        pdf_titles = _meta_titles(cand.meta)
        for e_idx in free_entries:
            if scopes[p_idx] is not None and dirs[e_idx] != scopes[p_idx]:
                continue
            score, method = _similarity(pdf_name, pdf_titles, entry_keys[e_idx])
            best[p_idx] = max(best.get(p_idx, 0.0), score)
            if score >= THRESHOLD:
                scored.append((score, p_idx, e_idx, method))
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    taken: set[int] = set()
    for score, p_idx, e_idx, method in scored:
        if p_idx in decisions or e_idx in taken:
            continue
        taken.add(e_idx)
        unsure = score < THRESHOLD + UNSURE_MARGIN
        decisions[p_idx] = LinkDecision(index.paths[p_idx], e_idx, method, round(score, 3), unsure, False)
    return best


def _entry_keys(entry: Entry) -> list[str]:
    """Strings a file name or PDF title may echo: the title, its short name before ``:``, the alias.

    Files are often named after the short name (``GANimation.pdf`` for "GANimation: Anatomically-aware
    Facial Animation ..."), which is distinctive even though it is a small part of the title.
    """
    keys = [text_key(entry.title)]
    if ":" in entry.title:
        keys.append(text_key(entry.title.split(":", 1)[0]))
    if entry.alias:
        keys.append(text_key(entry.alias))
        keys.append(text_key(f"{entry.alias} {entry.title}"))
    return [k for k in keys if k]


def _meta_titles(meta: PdfMeta | None) -> list[str]:
    if meta is None:
        return []
    titles = [text_key(t) for t in (meta.title, meta.first_page_title) if t]
    return [t for t in titles if len(t) >= 8]  # "untitled", "paper" say nothing


def _similarity(pdf_name: str, pdf_titles: list[str], entry_keys: list[str]) -> tuple[float, str]:
    """Best of file-name and stated-title similarity, with the method that produced it."""
    best, method = 0.0, "name"
    for key in entry_keys:
        score = _text_similarity(pdf_name, key)
        if score > best:
            best, method = score, "name"
        for title in pdf_titles:
            score = _text_similarity(title, key)
            if score > best:
                best, method = score, "title"
    return best, method


def _text_similarity(a: str, b: str) -> float:
    """0..1 similarity of two normalised strings.

    ``ratio``/``token_sort_ratio`` reward near-identical strings. ``token_set_ratio`` and
    ``partial_ratio`` forgive extra words (a subtitle, an alias prefix) but reward a tiny common part too
    much, so they are discounted unless the shorter string is long enough to be specific.
    """
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    plain = max(fuzz.ratio(a, b), fuzz.token_sort_ratio(a, b))
    short, long_ = sorted((a, b), key=len)
    coverage = len(short) / len(long_)
    forgiving = max(fuzz.token_set_ratio(a, b), fuzz.partial_ratio(a, b))
    if len(short.split()) < 3 or len(short) < 15:
        forgiving *= 0.7  # a one- or two-word name inside a long title is weak evidence
    forgiving *= 0.85 + 0.15 * coverage
    score = max(plain, forgiving) / 100.0
    if _numbers(a) != _numbers(b):
        score *= 0.85  # StyleGAN vs StyleGAN2, 3DFFA vs 3DFFA2: a version number is a different paper
    return score


def _numbers(text: str) -> list[str]:
    """Numbers in a name, years left out (file names often carry the year, titles rarely)."""
    return sorted(n for n in re.findall(r"\d+", text) if not re.fullmatch(r"(?:19|20)\d{2}", n))
