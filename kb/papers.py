"""Papers assembled from catalog entries and PDFs: ids, titles, merged entries, abstracts, descriptors.

``build_papers`` is the one place that decides what a paper is: an entry of a reading list (the same
title listed twice is one paper), a PDF linked to it (a second copy of the same content joins its
paper), or a PDF in no list (a paper of its own, titled from the PDF). Ids are short readable slugs.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from kb.link import LinkDecision
from kb.models import CatalogRef, Entry, Extraction, Paper


def slugify(text: str, max_len: int = 48) -> str:
    """A short, readable, stable id: ascii words of the text joined by '-'."""
    text = unicodedata.normalize("NFKD", text)
    words = re.findall(r"[a-z0-9]+", text.encode("ascii", "ignore").decode().lower())
    slug = ""
    for w in words:
        nxt = f"{slug}-{w}" if slug else w
        if len(nxt) > max_len:
            break
        slug = nxt
    if not slug:
        slug = "p" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return slug


def humanize_filename(path: str) -> str:
    stem = Path(path).name
    while stem.lower().endswith(".pdf"):
        stem = stem[:-4]
    return re.sub(r"\s+", " ", re.sub(r"[_\-.]+", " ", stem)).strip()


_ABSTRACT = re.compile(r"\babstract\b[\s.:—-]*", re.IGNORECASE)
_INTRO = re.compile(r"\n\s*(?:1\.?|I\.)?\s*introduction\b", re.IGNORECASE)


def find_abstract(pages: list[str]) -> str | None:
    """The abstract from the first two pages, when the paper labels it."""
    head = "\n".join(pages[:2])
    m = _ABSTRACT.search(head)
    if not m:
        return None
    rest = head[m.end() :]
    end = _INTRO.search(rest)
    text = rest[: end.start()] if end else rest[:1500]
    text = re.sub(r"\s+", " ", text).strip()[:1500]
    return text if len(text.split()) >= 20 else None


def title_key(title: str) -> str:
    """The normalised title two entries share when they are the same paper (``kb add`` checks it too)."""
    return " ".join(re.findall(r"[^\W_]+", title.casefold()))  # underscores separate words, as in norm()


@dataclass
class FileStat:
    """A file as the file system describes it: enough to tell "unchanged" without reading it."""

    path: str  # absolute, as the user's folders spell it (a symlinked PDF keeps its own name)
    size: int
    mtime_ns: int


@dataclass
class IngestedFile:
    """A PDF after extraction: its content hash, what it read as, and how it changed since last time."""

    stat: FileStat
    sha: str
    extraction: Extraction
    change: str  # added, updated, unchanged, moved


def build_papers(
    entries: list[Entry], files: list[IngestedFile], decisions: list[LinkDecision]
) -> tuple[list[Paper], dict[str, str]]:
    """Merge catalog entries (the same title in two lists is one paper) and attach linked PDFs.

    Returns the papers and a map file path -> paper id.
    """
    by_path = {f.stat.path: f for f in files}
    papers: list[Paper] = []
    entry_paper: dict[int, Paper] = {}
    by_title: dict[str, Paper] = {}
    used_ids: set[str] = set()

    def new_id(base: str) -> str:
        pid, n = base, 2
        while pid in used_ids:
            pid, n = f"{base}-{n}", n + 1
        used_ids.add(pid)
        return pid

    for i, e in enumerate(entries):
        key = title_key(e.title)
        existing = by_title.get(key) if key else None
        if existing is not None:
            if e.topic and e.topic not in existing.topics:
                existing.topics.append(list(e.topic))
            existing.links.extend(lk for lk in e.links if lk not in existing.links)
            existing.also_in.append(CatalogRef(e.catalog, e.line))
            existing.alias = existing.alias or e.alias
            if e.read is not None:  # ticked in any of its entries means read
                existing.read = bool(existing.read) or e.read
            entry_paper[i] = existing
            continue
        paper = Paper(
            id=new_id(slugify(e.alias or e.title)),
            title=e.title,
            alias=e.alias,
            topics=[list(e.topic)] if e.topic else [],
            read=e.read,
            venue=e.venue,
            year=e.year,
            org=e.org,
            authors=e.authors,
            note="; ".join(e.notes) or None,
            links=list(e.links),
            catalog=CatalogRef(e.catalog, e.line),
        )
        papers.append(paper)
        entry_paper[i] = paper
        if key:
            by_title[key] = paper

    file_paper: dict[str, str] = {}
    primaries: dict[str, IngestedFile] = {}
    by_sha: dict[str, Paper] = {}
    # Linked files first, so a copy of a linked PDF joins that paper instead of becoming its twin.
    ordered = sorted(decisions, key=lambda d: (d.entry_index is None, d.attachment, str(d.pdf)))
    for d in ordered:
        info = by_path.get(str(d.pdf))
        if info is None:
            continue
        if d.entry_index is not None and d.entry_index in entry_paper:
            paper = entry_paper[d.entry_index]
        elif info.sha in by_sha:
            paper = by_sha[info.sha]  # the same content at another path: one paper, two files
        else:
            meta = info.extraction.meta
            title = (meta.title or meta.first_page_title or humanize_filename(info.stat.path)).strip()
            paper = Paper(id=new_id(slugify(humanize_filename(info.stat.path))), title=title, year=meta.year)
            papers.append(paper)
        paper.files.append(info.stat.path)
        paper.sha256.append(info.sha)
        by_sha.setdefault(info.sha, paper)
        file_paper[info.stat.path] = paper.id
        if not d.attachment and paper.id not in primaries:
            primaries[paper.id] = info
    for paper in papers:
        info = primaries.get(paper.id)
        if info is None and paper.files:
            info = by_path[paper.files[0]]
        if info is None:
            paper.status = "no-pdf"
            continue
        ex = info.extraction
        paper.status = ex.status
        paper.reason = ex.reason
        paper.pages = len(ex.pages)
        paper.doi = paper.doi or ex.meta.doi
        paper.arxiv = paper.arxiv or ex.meta.arxiv
        paper.pdf_title = ex.meta.title or ex.meta.first_page_title
        paper.year = paper.year or ex.meta.year
        paper.authors = paper.authors or ex.meta.authors
        if ex.status == "ok":
            paper.abstract = find_abstract(ex.pages)
    return papers, file_paper


def paper_descriptor(paper: Paper, first_passage: str | None) -> str:
    """The text that stands for a paper as a whole: what the user wrote about it, then its abstract.

    A catalog-only paper is just its title, alias, note and topics; mixing the same kind of text into
    every paper's vector keeps catalog-only papers comparable with the ones that have PDFs.
    """
    parts = [paper.title]
    if paper.alias and paper.alias.lower() not in paper.title.lower():
        parts.append(f"({paper.alias})")
    if paper.note:
        parts.append(paper.note)
    if paper.topics:
        parts.append("Topics: " + "; ".join(" / ".join(t) for t in paper.topics))
    body = paper.abstract or first_passage
    if body:
        parts.append(body)
    return ". ".join(parts)
