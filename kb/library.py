"""Questions about the library as a whole: listing and filtering papers, the topic tree, status.

Pure functions over ``Paper`` lists read from the live generation; the CLI formats the answers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kb.models import Paper


class LibraryError(Exception):
    pass


def rel_path(path: str, cwd: Path | None = None) -> str:
    """A path relative to the current directory when that is shorter, as users type them."""
    try:
        rel = os.path.relpath(path, cwd or Path.cwd())
    except ValueError:
        return path
    return rel if len(rel) <= len(path) else path


def paper_json(paper: Paper, cwd: Path | None = None) -> dict:
    """The public JSON form of a paper (``kb list --json``)."""
    return {
        "id": paper.id,
        "title": paper.title,
        "alias": paper.alias,
        "topics": paper.topics,
        "read": paper.read,
        "venue": paper.venue,
        "year": paper.year,
        "note": paper.note,
        "authors": paper.authors,
        "links": [{"label": lk.label, "url": lk.url} for lk in paper.links],
        "files": [rel_path(f, cwd) for f in paper.files],
        "catalog": {"file": rel_path(paper.catalog.file, cwd), "line": paper.catalog.line}
        if paper.catalog
        else None,
        "status": paper.status,
        "reason": paper.reason,
        "pages": paper.pages,
        "doi": paper.doi,
        "arxiv": paper.arxiv,
        "added": datetime.fromtimestamp(paper.added, UTC).isoformat(timespec="seconds")
        if paper.added
        else None,
    }


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
    topic: str | None = None
    read: bool | None = None
    year: str | None = None
    venue: str | None = None
    has_pdf: bool | None = None

    def match(self, paper: Paper) -> bool:
        if self.topic and not topic_matches(paper, self.topic):
            return False
        if self.read is not None and bool(paper.read) != self.read:
            return False
        if self.year:
            lo, hi = parse_year_filter(self.year)
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
    name: str
    papers: int = 0
    read: int = 0
    children: dict[str, TopicNode] = field(default_factory=dict)


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
