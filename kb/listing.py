"""Questions about the library as a whole: listing and filtering papers, the topic tree, status.

Pure functions over ``Paper`` lists read from the live generation; the CLI formats the answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kb.errors import UsageError
from kb.fsutil import json_path
from kb.models import Paper

if TYPE_CHECKING:
    from kb.storage.store import Generation


class LibraryError(UsageError):
    """A bad filter or sort key (exit 2)."""


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def topic_matches(paper: Paper, prefix: str) -> bool:
    """``--topic``: case-insensitive prefix of any level of any topic path.

    "gan" matches "GAN"; "gan/stylegan" matches GAN / StyleGAN and its derivative; "audio emotion"
    matches the third level of Emotion / Emotion recognition / Audio emotion recognition.
    """
    want = [_norm(p) for p in re.split(r"\s*/\s*", prefix.strip()) if p.strip()]
    if not want:
        return True
    for path in paper.topics:
        levels = [_norm(t) for t in path]
        for start in range(len(levels)):
            window = levels[start : start + len(want)]
            if len(window) == len(want) and all(
                lv == w or (i == len(want) - 1 and lv.startswith(w))
                for i, (lv, w) in enumerate(zip(window, want, strict=True))
            ):
                return True
    return False


def parse_year_filter(spec: str) -> tuple[int, int]:
    """``2019``, ``2018-2020``, ``2018..2020``, ``2018:``, ``:2019`` -> inclusive range."""
    s = spec.strip()
    m = re.fullmatch(r"(\d{4})?\s*(?:-|\.\.|:|to)\s*(\d{4})?", s)
    if re.fullmatch(r"\d{4}", s):
        return int(s), int(s)
    if m and (m.group(1) or m.group(2)):
        return int(m.group(1) or 0), int(m.group(2) or 9999)
    raise LibraryError(f"bad year {spec!r}: use 2019, 2018-2020, 2018- or -2020")


@dataclass
class Filters:
    """Which papers a command looks at. A bad ``year`` is a ``LibraryError`` here, at construction,
    so every command refuses it (exit 2) before doing any work."""

    topic: str | None = None
    read: bool | None = None
    year: str | None = None
    venue: str | None = None
    has_pdf: bool | None = None
    years: tuple[int, int] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.years = parse_year_filter(self.year) if self.year else None

    def match(self, paper: Paper) -> bool:
        if self.topic and not topic_matches(paper, self.topic):
            return False
        if self.read is not None and bool(paper.read) != self.read:
            return False
        if self.years is not None:
            lo, hi = self.years
            if paper.year is None or not lo <= paper.year <= hi:
                return False
        if (
            self.venue
            and self.venue.lower() not in " ".join(x for x in (paper.venue, paper.org) if x).lower()
        ):
            return False
        return self.has_pdf is None or bool(paper.files) == self.has_pdf


SORT_KEYS = ("catalog", "year", "title", "added")


def sort_papers(papers: list[Paper], key: str) -> list[Paper]:
    """``catalog`` keeps reading-list order; ``added`` is the order the index first saw them."""
    if key == "year":
        return sorted(papers, key=lambda p: (p.year is None, -(p.year or 0), p.title.lower()))
    if key == "title":
        return sorted(papers, key=lambda p: p.title.lower())
    if key == "added":  # newest first, then reading-list order
        return sorted(sort_papers(papers, "catalog"), key=lambda p: -(p.added or 0.0))
    if key == "catalog":
        return sorted(
            papers,
            key=lambda p: (
                p.catalog is None,
                p.catalog.file if p.catalog else "",
                p.catalog.line if p.catalog else 0,
                p.files[0] if p.files else "",
            ),
        )
    raise LibraryError(f"unknown sort key {key!r}: choose one of {', '.join(SORT_KEYS)}")


@dataclass
class TopicNode:
    """A topic and its sub-topics, with how many papers are filed under it and how many are read."""

    name: str
    papers: int = 0
    read: int = 0
    children: dict[str, TopicNode] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "papers": self.papers,
            "read": self.read,
            "children": [c.to_json() for c in self.children.values()],
        }


def topic_tree(papers: list[Paper]) -> TopicNode:
    """Counts per topic at every level (a paper counts once per topic node, in each of its paths)."""
    root = TopicNode("")
    for p in papers:
        seen: set[int] = set()
        for path in p.topics or [["(no topic)"]]:
            node = root
            for name in path:
                node = node.children.setdefault(name, TopicNode(name))
                if id(node) not in seen:
                    seen.add(id(node))
                    node.papers += 1
                    node.read += 1 if p.read else 0
    return root


@dataclass
class FileProblem:
    """A PDF that is not a searchable paper as it is: failed, a scan, or garbled."""

    file: str
    status: str
    reason: str | None


@dataclass
class MissingPdf:
    """A catalog entry whose ``[[PDF]]`` link points to a file the library does not have."""

    paper: Paper
    pdf: str  # the link as written in the catalog


@dataclass
class UnsureLink:
    file: str
    paper_id: str | None
    score: float | None


@dataclass
class LibraryStatus:
    """``kb status``: what the index holds and what needs the user's attention."""

    index: str  # the live generation's directory
    papers: int
    files: int
    pages: int
    passages: int
    catalogs: list[str]
    by_status: dict[str, int]
    problems: list[FileProblem]
    missing_pdf: list[MissingPdf]
    not_in_catalog: list[Paper]
    unsure_links: list[UnsureLink]
    settings: dict[str, str]

    def to_json(self, cwd: Path | None = None) -> dict:
        return {
            "index": self.index,
            "papers": self.papers,
            "files": self.files,
            "pages": self.pages,
            "passages": self.passages,
            "catalogs": [json_path(c, cwd) for c in self.catalogs],
            "by_status": self.by_status,
            "problems": [
                {"file": json_path(f.file, cwd), "status": f.status, "reason": f.reason}
                for f in self.problems
            ],
            "missing_pdf": [
                {"id": m.paper.id, "title": m.paper.title, "pdf": m.pdf} for m in self.missing_pdf
            ],
            "not_in_catalog": [
                {"id": p.id, "files": [json_path(f, cwd) for f in p.files]} for p in self.not_in_catalog
            ],
            "unsure_links": [
                {"file": json_path(u.file, cwd), "paper": u.paper_id, "score": u.score}
                for u in self.unsure_links
            ],
            "settings": self.settings,
        }


def pdf_link(paper: Paper) -> str | None:
    """The first non-empty ``[[PDF]]`` link of a paper's catalog entry."""
    return next((lk.url for lk in paper.links if lk.label.upper() == "PDF" and lk.url.strip()), None)


def library_status(gen: Generation) -> LibraryStatus:
    papers = gen.papers()
    files = gen.files()
    by_status: dict[str, int] = {}
    for p in papers:
        by_status[p.status] = by_status.get(p.status, 0) + 1
    missing = []
    for p in papers:
        link = pdf_link(p) if p.catalog and not p.files else None
        if link:
            missing.append(MissingPdf(p, link))
    return LibraryStatus(
        index=str(gen.path),
        papers=len(papers),
        files=len(files),
        pages=sum(f.pages or 0 for f in files),
        passages=gen.passage_count(),
        catalogs=[c.path for c in gen.catalogs()],
        by_status=by_status,
        problems=[FileProblem(f.path, f.status, f.reason) for f in files if f.status != "ok"],
        missing_pdf=missing,
        not_in_catalog=[p for p in papers if p.catalog is None],
        unsure_links=[UnsureLink(f.path, f.paper_id, f.link_score) for f in files if f.unsure],
        settings=dict(gen.settings),
    )
