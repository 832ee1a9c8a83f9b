"""The storage seam: what any index storage must do, whatever engine is behind it.

kb's stages (ingest, search, related, organize) talk to storage only through these interfaces:

- ``Storage``: write a complete generation and publish it atomically; open the live one; hold the
  ingest lock; the work cache.
- ``IndexReader``: one generation, read-only: papers, files, catalogs, passages, keyword search
  (``KeywordSearch``) and vectors.

Keyword queries cross the seam as plain data (``Terms``: analysed tokens, Han runs, a target field,
phrase and typo flags), never as engine objects, so a second engine maps them to its own query
language. The embedded implementation (``kb.storage.store`` + ``kb.storage.index``: SQLite, numpy
and tantivy in the index directory) is the only one today; ``tests/test_storage_contract.py`` is the
suite a second one must pass too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kb.models import CatalogRow, FileRow, Paper, Passage

if TYPE_CHECKING:
    import numpy as np

# What a passage row is, besides its text (flags of ``IndexReader.passage_flags``).
FLAG_ATTACHMENT = 1  # the passage comes from an attachment (e.g. a translation), not the paper
FLAG_CJK = 2  # mostly Chinese/Japanese text, which the English model does not read


@dataclass
class Terms:
    """One clause of a keyword query, analysed into index tokens.

    ``stems`` are English-analysed tokens (all must be near each other only when ``phrase``; several
    stems that are not a phrase came from one hyphenated word: any part matches, all parts and their
    adjacency rank higher). ``han`` are runs of Han/Kana characters, each matched as a phrase of its
    characters. ``field`` is one paper field (``title``, ``alias``, ``note``, ``topic``, ``venue``,
    ``authors``, ``filename``, ``abstract``), ``text`` for the PDF text only, or None for all of them.
    ``fuzzy`` are stems matched with typos (edit distance 1, 2 from 8 letters).
    """

    stems: list[str]
    han: list[str] = dataclasses.field(default_factory=list)
    phrase: bool = False
    field: str | None = None
    fuzzy: list[str] = dataclasses.field(default_factory=list)


# A keyword query: clauses with how each must occur ("should", "must" or "not").
Clause = tuple[str, Terms]


class KeywordSearch(Protocol):
    """BM25 keyword search over one generation's paper fields and passage texts."""

    def paper_scores(self, clauses: Sequence[Clause], boosts: Mapping[str, float]) -> dict[str, float]:
        """Score of every paper whose fields match (paper id -> score); ``boosts`` weigh the fields."""
        ...

    def passage_hits(self, clauses: Sequence[Clause], limit: int) -> list[tuple[float, int]]:
        """The best ``limit`` passages whose text matches, as (score, passage row), best first."""
        ...

    def doc_freq(self, token: str, fields: Sequence[str]) -> int:
        """How many documents of these fields (``text``: passages) hold the token."""
        ...

    def passage_docs(self) -> int:
        """How many passages the keyword index holds."""
        ...


class IndexReader(Protocol):
    """One generation of an index, read-only; every row type is a dataclass of ``kb.models``."""

    settings: dict[str, str]

    @property
    def name(self) -> str: ...

    @property
    def keyword(self) -> KeywordSearch: ...

    def close(self) -> None: ...

    def papers(self) -> list[Paper]:
        """All papers, in vector-row order (``papers()[i]`` has ``paper_vectors()[i]``)."""
        ...

    def paper(self, paper_id: str) -> Paper | None: ...

    def files(self) -> list[FileRow]: ...

    def catalogs(self) -> list[CatalogRow]: ...

    def passage_count(self) -> int: ...

    def passages(self, rows: Iterable[int]) -> dict[int, Passage]: ...

    def passage_papers(self, rows: Iterable[int]) -> dict[int, str]: ...

    def passages_of(self, paper_id: str) -> list[Passage]: ...

    def vectors(self) -> np.ndarray:
        """Passage vectors, row ``i`` = passage row ``i`` (unit length)."""
        ...

    def paper_vectors(self) -> np.ndarray: ...

    def passage_owner(self) -> np.ndarray:
        """int32 per passage row: the row of its paper in ``papers()``."""
        ...

    def passage_flags(self) -> np.ndarray:
        """uint8 per passage row: ``FLAG_ATTACHMENT | FLAG_CJK``."""
        ...

    def model_dir(self) -> Path:
        """Where the query-time model of this index lives."""
        ...

    def verify(self) -> None:
        """Raise ``CorruptIndexError`` when a part of the generation cannot be read."""
        ...


@dataclass
class GenerationData:
    """A whole generation as ingest assembled it, ready to be written."""

    settings: dict[str, str]
    papers: list[Paper]  # row i = paper vector row i
    files: list[FileRow]
    passages: list[Passage]  # passages[i].row == i
    catalogs: list[CatalogRow]
    vectors: np.ndarray  # one per passage row
    paper_vectors: np.ndarray  # one per paper
    owner: np.ndarray  # paper row of each passage row
    flags: np.ndarray  # FLAG_* of each passage row


class Storage(Protocol):
    """Where indexes live: generations written whole and switched atomically, a lock, a cache."""

    def open(self, root: Path) -> IndexReader:
        """The live generation (``NoIndexError``, ``IndexMismatchError``, ``CorruptIndexError``)."""
        ...

    def live(self, root: Path) -> str | None:
        """The live generation's name, cheaply (to notice that an ingest switched it)."""
        ...

    def write(self, root: Path, data: GenerationData) -> str:
        """Write ``data`` as a new generation and make it live atomically; return its name. A crash at
        any moment leaves the previous generation live and whole."""
        ...

    def lock(
        self, root: Path, wait: float, on_wait: Callable[[], None] | None = None
    ) -> AbstractContextManager[None]:
        """Hold the index's ingest lock (``LockedError`` after ``wait`` seconds)."""
        ...

    def ingesting(self, root: Path) -> bool:
        """Whether an ingest holds the lock right now."""
        ...


def iter_rows(rows: Iterable[int], size: int = 500) -> Iterator[list[int]]:
    """Sorted distinct rows in chunks (for ``IN (...)`` lookups of a bounded size)."""
    wanted = sorted(set(rows))
    for i in range(0, len(wanted), size):
        yield wanted[i : i + size]
