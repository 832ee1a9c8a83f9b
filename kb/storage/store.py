"""On-disk state of a kb index: generations, the SQLite manifest, the vectors, the cache, the lock.

Layout of an index directory (``index/`` by default, ``--index DIR`` or ``KB_INDEX`` override)::

    CURRENT              name of the live generation, replaced atomically (os.replace)
    gen-000007/          one complete, immutable index generation
        manifest.sqlite  papers, files, passages, catalogs, settings (versions)
        vectors.npy      passage vectors, float32, row i = passages.row i
        paper_vectors.npy  one vector per paper, row = papers.vec_row
        papers/ passages/  the two tantivy indexes
    cache.sqlite         extraction and embedding results by file content hash (resumable work)
    model/               the ONNX export of the embedding model, for fast queries
    .lock                held by a running ingest

Why generations: an ingest builds a complete new generation in a temporary directory and only then
points CURRENT at it, so ``kill -9`` at any moment leaves the previous generation live and whole.
The cache commits after every file, so the next ingest resumes instead of starting over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, astuple, fields
from pathlib import Path
from typing import TYPE_CHECKING

from kb.errors import CorruptIndexError, IndexMismatchError, LockedError, NoIndexError
from kb.models import CatalogRef, CatalogRow, FileRow, Link, Paper, Passage, PdfMeta
from kb.storage.base import GenerationData, iter_rows

if TYPE_CHECKING:  # numpy costs 30 ms at start-up: keyword search never needs it
    import numpy as np

    from kb.storage.index import KeywordIndex

CURRENT = "CURRENT"
MANIFEST = "manifest.sqlite"
VECTORS = "vectors.npy"
PAPER_VECTORS = "paper_vectors.npy"
PASSAGE_OWNER = "passage_owner.npy"  # int32: paper row (papers.vec_row) of each passage row
PASSAGE_FLAGS = "passage_flags.npy"  # uint8: FLAG_ATTACHMENT | FLAG_CJK per passage row
CACHE = "cache.sqlite"
MODEL_DIR = "model"
LOCK = ".lock"
MANIFEST_VERSION = "2"


# --------------------------------------------------------------------------- lock


@contextlib.contextmanager
def ingest_lock(root: Path, wait: float, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the index's ingest lock; wait up to ``wait`` seconds for another ingest to finish.

    flock is released by the kernel when the holder dies, so a killed ingest never leaves a stale lock.
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise LockedError(
                        f"another kb ingest (pid {holder}) is running on {root}; try again when it ends"
                    ) from None
                if not told and on_wait:
                    on_wait()
                    told = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def ingest_running(root: Path) -> bool:
    """Whether an ingest holds the lock of the index at ``root`` right now (never waits)."""
    try:
        fd = os.open(root / LOCK, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken just now
    return False


# --------------------------------------------------------------------------- generations


def current_generation(root: Path) -> Path | None:
    pointer = root / CURRENT
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return None
    gen = root / name
    return gen if name and gen.is_dir() else None


def new_generation_dir(root: Path) -> Path:
    """A fresh temporary directory inside the index for the generation being built."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".building-{os.getpid()}-{int(time.time() * 1000)}"
    tmp.mkdir()
    return tmp


def publish_generation(root: Path, tmp: Path) -> Path:
    """Move a finished generation into place and point CURRENT at it; keep the previous one.

    The previous generation is kept (a search that opened it a moment ago can finish reading it);
    older ones are removed.
    """
    existing = sorted(p.name for p in root.glob("gen-*") if p.is_dir())
    number = int(existing[-1].split("-")[1]) + 1 if existing else 1
    final = root / f"gen-{number:06d}"
    _fsync_tree(tmp)
    os.replace(tmp, final)
    pointer_tmp = root / f".{CURRENT}.tmp"
    with open(pointer_tmp, "w") as fh:
        fh.write(final.name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(pointer_tmp, root / CURRENT)
    _fsync_dir(root)
    keep = {final.name}
    if existing:
        keep.add(existing[-1])
    for name in existing:
        if name not in keep:
            shutil.rmtree(root / name, ignore_errors=True)
    return final


def clean_stale(root: Path) -> None:
    """Remove half-built generations left by a killed ingest (call while holding the lock)."""
    for p in root.glob(".building-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in root.glob(f".{CURRENT}.tmp"):
        p.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


# --------------------------------------------------------------------------- manifest

_MANIFEST_SQL = """
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE papers (
    id TEXT PRIMARY KEY, vec_row INTEGER, title TEXT NOT NULL, year INTEGER, read INTEGER,
    status TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE files (
    path TEXT PRIMARY KEY, sha256 TEXT, size INTEGER, mtime_ns INTEGER, status TEXT NOT NULL,
    reason TEXT, paper_id TEXT, pages INTEGER, link_method TEXT, link_score REAL, unsure INTEGER,
    attachment INTEGER
);
CREATE TABLE passages (
    row INTEGER PRIMARY KEY, paper_id TEXT NOT NULL, seq INTEGER NOT NULL, page INTEGER NOT NULL,
    file TEXT, text TEXT NOT NULL
);
CREATE INDEX passages_paper ON passages(paper_id);
CREATE TABLE catalogs (path TEXT PRIMARY KEY, sha256 TEXT, size INTEGER, mtime_ns INTEGER,
    entries INTEGER, warnings TEXT);
"""


def _read_flag(read: bool | None) -> int | None:
    return None if read is None else int(read)


def paper_to_json(paper: Paper) -> str:
    return json.dumps(asdict(paper), ensure_ascii=False)


def paper_from_json(text: str) -> Paper:
    data = json.loads(text)
    data["links"] = [Link(**x) for x in data.get("links", [])]
    data["catalog"] = CatalogRef(**data["catalog"]) if data.get("catalog") else None
    data["also_in"] = [CatalogRef(**c) for c in data.get("also_in") or []]
    return Paper(**data)


_FILE_COLUMNS = tuple(f.name for f in fields(FileRow))
_CATALOG_COLUMNS = tuple(f.name for f in fields(CatalogRow))


def write_manifest(
    gen: Path,
    settings: dict[str, str],
    papers: list[Paper],
    files: list[FileRow],
    passages: Iterable[Passage],
    catalogs: list[CatalogRow],
) -> None:
    """The manifest of a new generation: papers in vector-row order, files, passages by row, catalogs."""
    db = sqlite3.connect(gen / MANIFEST)
    try:
        db.executescript(_MANIFEST_SQL)
        db.executemany("INSERT INTO settings VALUES (?, ?)", sorted(settings.items()))
        db.executemany(
            "INSERT INTO papers VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (p.id, i, p.title, p.year, _read_flag(p.read), p.status, paper_to_json(p))
                for i, p in enumerate(papers)
            ],
        )
        db.executemany(
            f"INSERT INTO files VALUES ({', '.join('?' * len(_FILE_COLUMNS))})",
            [astuple(f) for f in files],
        )
        db.executemany(
            "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?)",
            ((x.row, x.paper_id, x.seq, x.page, x.file, x.text) for x in passages),
        )
        db.executemany(
            "INSERT INTO catalogs VALUES (?, ?, ?, ?, ?, ?)",
            [
                (c.path, c.sha256, c.size, c.mtime_ns, c.entries, json.dumps(c.warnings, ensure_ascii=False))
                for c in catalogs
            ],
        )
        db.commit()
    finally:
        db.close()


def write_vectors(
    gen: Path, passage_vectors: np.ndarray, paper_vectors: np.ndarray, owner: np.ndarray, flags: np.ndarray
) -> None:
    """Vectors plus, per passage row, its paper's row and flags: what search and related need per
    query, precomputed so they never loop over passages in Python."""
    import numpy as np

    np.save(gen / VECTORS, np.ascontiguousarray(passage_vectors, dtype=np.float32))
    np.save(gen / PAPER_VECTORS, np.ascontiguousarray(paper_vectors, dtype=np.float32))
    np.save(gen / PASSAGE_OWNER, np.ascontiguousarray(owner, dtype=np.int32))
    np.save(gen / PASSAGE_FLAGS, np.ascontiguousarray(flags, dtype=np.uint8))


def format_versions() -> dict[str, str]:
    """The storage formats this kb writes and reads, recorded in every generation's settings."""
    from kb.storage.index import SCHEMA_VERSION

    return {"schema_version": SCHEMA_VERSION, "manifest_version": MANIFEST_VERSION}


def open_generation(root: Path) -> Generation:
    """The live generation of the index at ``root``, refused (``IndexMismatchError``) when its formats
    are not this kb's: every reader opens the index through here."""
    return Generation(root, expected=format_versions())


class Generation:
    """Read-only view of the live generation: what search, related, list and status read.

    Opening checks the recorded schema versions, so an index written by another kb fails with a
    message instead of giving silently empty results. The SQLite manifest is private: callers get
    typed rows (``Paper``, ``FileRow``, ``CatalogRow``, ``Passage``) from the methods below.
    """

    def __init__(self, root: Path, expected: dict[str, str] | None = None) -> None:
        self.root = root
        gen = current_generation(root)
        if gen is None:
            raise NoIndexError(root)
        self.path = gen
        try:
            self._db = sqlite3.connect(f"file:{gen / MANIFEST}?mode=ro", uri=True, check_same_thread=False)
            self.settings = dict(self._db.execute("SELECT key, value FROM settings"))
        except sqlite3.DatabaseError as exc:
            raise CorruptIndexError(
                f"the index at {root} is damaged ({exc}); run `kb ingest --rebuild`"
            ) from exc
        for key, want in (expected or {}).items():
            have = self.settings.get(key)
            if have != want:
                raise IndexMismatchError(
                    f"the index at {root} was built with {key} {have}, this kb needs {want}: "
                    "run `kb ingest` to rebuild it"
                )
        self._papers: list[Paper] | None = None
        self._keyword: KeywordIndex | None = None

    @property
    def keyword(self) -> KeywordIndex:
        """Keyword search over this generation (tantivy, opened on first use)."""
        if self._keyword is None:
            from kb.storage.index import KeywordIndex

            self._keyword = KeywordIndex(self.path)
        return self._keyword

    def verify(self) -> None:
        """Open every part once: a damaged generation raises ``CorruptIndexError`` here."""
        from kb.storage.index import KeywordIndex

        KeywordIndex(self.path)
        try:
            self.vectors(), self.paper_vectors(), self.passage_owner(), self.passage_flags()
        except (OSError, ValueError) as exc:
            raise CorruptIndexError(f"the vectors of {self.path} are damaged or missing ({exc})") from exc

    @property
    def name(self) -> str:
        """The generation's name (``gen-000007``): it changes with every ingest that changes anything."""
        return self.path.name

    def close(self) -> None:
        self._db.close()

    def papers(self) -> list[Paper]:
        """All papers, in vector-row order (papers[i] has paper_vectors row i)."""
        if self._papers is None:
            rows = self._db.execute("SELECT data FROM papers ORDER BY vec_row").fetchall()
            self._papers = [paper_from_json(r[0]) for r in rows]
        return self._papers

    def paper(self, paper_id: str) -> Paper | None:
        row = self._db.execute("SELECT data FROM papers WHERE id = ?", (paper_id,)).fetchone()
        return paper_from_json(row[0]) if row else None

    def files(self) -> list[FileRow]:
        cols = ", ".join(_FILE_COLUMNS)
        rows = self._db.execute(f"SELECT {cols} FROM files ORDER BY path").fetchall()
        out = []
        for r in rows:
            f = FileRow(*r)
            f.unsure, f.attachment = bool(f.unsure), bool(f.attachment)
            out.append(f)
        return out

    def catalogs(self) -> list[CatalogRow]:
        cols = ", ".join(_CATALOG_COLUMNS)
        rows = self._db.execute(f"SELECT {cols} FROM catalogs ORDER BY path").fetchall()
        return [CatalogRow(*r[:5], warnings=json.loads(r[5] or "[]")) for r in rows]

    def passage_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM passages").fetchone()[0])

    def _by_rows(self, columns: str, rows: Iterable[int]) -> Iterator[tuple]:
        for part in iter_rows(rows):
            marks = ",".join("?" * len(part))
            yield from self._db.execute(f"SELECT {columns} FROM passages WHERE row IN ({marks})", part)

    def passages(self, rows: Iterable[int]) -> dict[int, Passage]:
        """The stored passages of the given rows (vector rows, keyword hits), by row."""
        return {
            r[0]: Passage(paper_id=r[1], seq=r[2], page=r[3], file=r[4], text=r[5], row=r[0])
            for r in self._by_rows("row, paper_id, seq, page, file, text", rows)
        }

    def passage_papers(self, rows: Iterable[int]) -> dict[int, str]:
        """The paper id of each given passage row, read for those rows only (cheap for a few hundred)."""
        return dict(self._by_rows("row, paper_id", rows))

    def passages_of(self, paper_id: str) -> list[Passage]:
        """One paper's passages, in reading order."""
        rows = self._db.execute(
            "SELECT row, seq, page, file, text FROM passages WHERE paper_id = ? ORDER BY seq", (paper_id,)
        ).fetchall()
        return [Passage(paper_id=paper_id, seq=r[1], page=r[2], file=r[3], text=r[4], row=r[0]) for r in rows]

    def all_passage_texts(self) -> Iterator[str]:
        """Every passage's text in row order (benchmarks that re-embed an index)."""
        for (text,) in self._db.execute("SELECT text FROM passages ORDER BY row"):
            yield text

    def vectors(self) -> np.ndarray:
        import numpy as np

        return np.load(self.path / VECTORS, mmap_mode="r")

    def paper_vectors(self) -> np.ndarray:
        import numpy as np

        return np.load(self.path / PAPER_VECTORS, mmap_mode="r")

    def passage_owner(self) -> np.ndarray:
        """int32 per passage row: the row of its paper in ``papers()`` / ``paper_vectors()``."""
        import numpy as np

        return np.load(self.path / PASSAGE_OWNER)

    def passage_flags(self) -> np.ndarray:
        """uint8 per passage row: FLAG_ATTACHMENT, FLAG_CJK."""
        import numpy as np

        return np.load(self.path / PASSAGE_FLAGS)

    def model_dir(self) -> Path:
        return self.root / MODEL_DIR / self.settings.get("model_dir", "")

    def tantivy_dir(self, name: str) -> Path:
        return self.path / name


def write_generation(root: Path, data: GenerationData) -> str:
    """Write a complete new generation beside the live one, then switch to it atomically."""
    from kb.storage.index import write_indexes

    gen = new_generation_dir(root)
    write_indexes(gen, data.papers, data.passages)
    settings = {**data.settings, **format_versions()}
    write_manifest(gen, settings, data.papers, data.files, data.passages, data.catalogs)
    write_vectors(gen, data.vectors, data.paper_vectors, data.owner, data.flags)
    return publish_generation(root, gen).name


class EmbeddedStorage:
    """``base.Storage`` in the index directory itself: SQLite, numpy and tantivy (no server)."""

    def open(self, root: Path) -> Generation:
        return open_generation(root)

    def live(self, root: Path) -> str | None:
        gen = current_generation(root)
        return gen.name if gen is not None else None

    def write(self, root: Path, data: GenerationData) -> str:
        return write_generation(root, data)

    def lock(
        self, root: Path, wait: float, on_wait: Callable[[], None] | None = None
    ) -> contextlib.AbstractContextManager[None]:
        return ingest_lock(root, wait, on_wait)

    def ingesting(self, root: Path) -> bool:
        return ingest_running(root)


# --------------------------------------------------------------------------- cache

_CACHE_SQL = """
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS filestat (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT);
CREATE TABLE IF NOT EXISTS extractions (
    sha256 TEXT, extractor TEXT, status TEXT, reason TEXT, meta TEXT, pages TEXT,
    PRIMARY KEY (sha256, extractor)
);
CREATE TABLE IF NOT EXISTS chunks (
    sha256 TEXT, key TEXT, chunks TEXT, vectors BLOB, PRIMARY KEY (sha256, key)
);
CREATE TABLE IF NOT EXISTS textvecs (sha256 TEXT, model TEXT, vector BLOB, PRIMARY KEY (sha256, model));
CREATE TABLE IF NOT EXISTS seen (paper_key TEXT PRIMARY KEY, first_seen REAL NOT NULL);
"""


class Cache:
    """Work already done, keyed by content hash, committed file by file.

    A renamed or moved PDF has the same hash, so it is never extracted or embedded again; a killed
    ingest resumes from the last committed file.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(root / CACHE, timeout=30)
            self.db.executescript(_CACHE_SQL)
        except sqlite3.DatabaseError:
            # A damaged cache only costs time: start a new one rather than fail.
            with contextlib.suppress(Exception):
                self.db.close()
            for suffix in ("", "-wal", "-shm"):
                (root / (CACHE + suffix)).unlink(missing_ok=True)
            self.db = sqlite3.connect(root / CACHE, timeout=30)
            self.db.executescript(_CACHE_SQL)

    def close(self) -> None:
        self.db.close()

    def stat_hash(self, path: str, size: int, mtime_ns: int) -> str | None:
        row = self.db.execute(
            "SELECT sha256 FROM filestat WHERE path = ? AND size = ? AND mtime_ns = ?", (path, size, mtime_ns)
        ).fetchone()
        return row[0] if row else None

    def put_stat(self, path: str, size: int, mtime_ns: int, sha: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO filestat VALUES (?, ?, ?, ?)", (path, size, mtime_ns, sha))

    def get_extraction(self, sha: str, extractor: str) -> tuple[str, str | None, PdfMeta, list[str]] | None:
        row = self.db.execute(
            "SELECT status, reason, meta, pages FROM extractions WHERE sha256 = ? AND extractor = ?",
            (sha, extractor),
        ).fetchone()
        if not row:
            return None
        return row[0], row[1], PdfMeta(**json.loads(row[2])), json.loads(row[3])

    def put_extraction(
        self, sha: str, extractor: str, status: str, reason: str | None, meta: PdfMeta, pages: list[str]
    ) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO extractions VALUES (?, ?, ?, ?, ?, ?)",
            (sha, extractor, status, reason, json.dumps(asdict(meta)), json.dumps(pages, ensure_ascii=False)),
        )

    def get_chunks(self, sha: str, key: str) -> tuple[list[tuple[int, str]], np.ndarray] | None:
        import numpy as np

        row = self.db.execute(
            "SELECT chunks, vectors FROM chunks WHERE sha256 = ? AND key = ?", (sha, key)
        ).fetchone()
        if not row:
            return None
        chunks = [tuple(c) for c in json.loads(row[0])]
        vecs = np.frombuffer(row[1], dtype=np.float32).reshape(len(chunks), -1) if chunks else None
        return chunks, vecs  # type: ignore[return-value]

    def put_chunks(self, sha: str, key: str, chunks: list[tuple[int, str]], vectors: np.ndarray) -> None:
        import numpy as np

        self.db.execute(
            "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?)",
            (
                sha,
                key,
                json.dumps(chunks, ensure_ascii=False),
                np.ascontiguousarray(vectors, np.float32).tobytes(),
            ),
        )

    def get_textvecs(self, shas: list[str], model: str) -> dict[str, np.ndarray]:
        import numpy as np

        out: dict[str, np.ndarray] = {}
        for i in range(0, len(shas), 500):
            part = shas[i : i + 500]
            marks = ",".join("?" * len(part))
            q = f"SELECT sha256, vector FROM textvecs WHERE model = ? AND sha256 IN ({marks})"
            for sha, blob in self.db.execute(q, [model, *part]):
                out[sha] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_textvecs(self, items: dict[str, np.ndarray], model: str) -> None:
        import numpy as np

        self.db.executemany(
            "INSERT OR REPLACE INTO textvecs VALUES (?, ?, ?)",
            [(sha, model, np.ascontiguousarray(v, np.float32).tobytes()) for sha, v in items.items()],
        )

    def first_seen(self, keys: list[str], now: float) -> dict[str, float]:
        """When each paper (by a stable key) was first ingested; unseen keys get ``now``."""
        self.db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", [(k, now) for k in keys])
        out: dict[str, float] = {}
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            marks = ",".join("?" * len(part))
            q = f"SELECT paper_key, first_seen FROM seen WHERE paper_key IN ({marks})"
            out.update(self.db.execute(q, part))
        return out

    def commit(self) -> None:
        self.db.commit()
