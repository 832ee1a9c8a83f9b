"""The ingest pipeline: PDFs + reading lists -> a new index generation.

Stages, each in its own module: catalog (parse the Markdown), extract (PDF text), link (PDF ->
entry), chunk (passages), embed (vectors), index (tantivy), store (manifest, cache, generations).
This module only orders them and decides what can be skipped:

- nothing changed (same files by size+mtime, same catalogs, same versions): return at once;
- a file whose content hash is in the cache is neither extracted nor embedded again (renamed and
  moved files included); extraction runs in a worker process, so a PDF that crashes or hangs the
  extractor fails alone, and the main process embeds while the worker extracts;
- everything is written into a new generation that replaces the old one atomically at the end.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kb import catalog as catalog_mod
from kb import chunk as chunk_mod
from kb import extract as extract_mod
from kb import index as index_mod
from kb import link as link_mod
from kb import store
from kb.embed import DIM, Encoder, SentenceTransformerEncoder, model_version
from kb.models import CatalogRef, Entry, Extraction, Paper

EXTRACT_TIMEOUT_S = 300
CJK_SHARE = 0.2  # a passage with more Han characters than this share of its letters is flagged CJK
DEFAULT_EXTRACTOR = extract_mod.DEFAULT_EXTRACTOR


class IngestError(Exception):
    """A problem with the ingest as a whole (bad arguments, unusable index); files fail separately."""


@dataclass
class IngestOptions:
    folders: list[Path]
    index_dir: Path
    catalogs: list[Path] | None = None  # explicit catalogs; None = discover
    cwd: Path = field(default_factory=Path.cwd)
    extractor: str = extract_mod.DEFAULT_EXTRACTOR
    rebuild: bool = False
    wait_lock_s: float = 600.0
    embed: bool = True  # False: keyword index only (benchmarks of the text part)


@dataclass
class FileOutcome:
    path: str
    status: str  # ok, no-text, garbled, failed
    reason: str | None
    pages: int
    change: str  # added, updated, unchanged, moved


@dataclass
class IngestReport:
    changed: bool
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    moved: int = 0  # renamed or moved: same content at a new path, not extracted again
    failed: list[tuple[str, str]] = field(default_factory=list)
    flagged: list[tuple[str, str, str]] = field(default_factory=list)  # path, status, reason
    papers: int = 0
    pages: int = 0
    passages: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    unsure_links: list[tuple[str, str, float]] = field(default_factory=list)  # pdf, entry title, score
    warnings: list[str] = field(default_factory=list)
    generation: str = ""


@dataclass
class Progress:
    """Callbacks the CLI plugs a progress bar into; the pipeline never prints."""

    start: Callable[[int], None] = lambda total: None
    advance: Callable[[FileOutcome], None] = lambda outcome: None
    stage: Callable[[str], None] = lambda name: None
    message: Callable[[str], None] = lambda text: None


def settings_for(options: IngestOptions) -> dict[str, str]:
    from kb import __version__

    return {
        "schema_version": index_mod.SCHEMA_VERSION,
        "manifest_version": store.MANIFEST_VERSION,
        "extractor": options.extractor,
        "extractor_version": extract_mod.EXTRACTOR_VERSION[options.extractor],
        "chunker_version": chunk_mod.CHUNKER_VERSION,
        "model_version": model_version() if options.embed else "none",
        "model_dir": _model_dir_name(),
        "kb_version": __version__,
    }


VERSION_KEYS = (
    "schema_version",
    "manifest_version",
    "extractor",
    "extractor_version",
    "chunker_version",
    "model_version",
)


def source_settings(options: IngestOptions) -> dict[str, str]:
    """What was ingested, so `kb ingest` with no folder (and `kb mark`/`kb add`) can run it again."""
    return {
        "folders": json.dumps([os.path.abspath(f) for f in options.folders]),
        "catalog_args": json.dumps([os.path.abspath(c) for c in options.catalogs or []]),
        "cwd": os.path.abspath(options.cwd),
    }


def options_from_index(index_dir: Path, **overrides: object) -> IngestOptions:
    """Rebuild the options of the last ingest of an index (for `kb ingest` without folders)."""
    gen = store.Generation(index_dir)
    try:
        s = gen.settings
        if "folders" not in s:
            raise IngestError(f"the index at {index_dir} does not record its folders: name them")
        catalogs = [Path(c) for c in json.loads(s.get("catalog_args") or "[]")]
        options = IngestOptions(
            folders=[Path(f) for f in json.loads(s["folders"])],
            index_dir=index_dir,
            catalogs=catalogs or None,
            cwd=Path(s.get("cwd") or "."),
            extractor=s.get("extractor", "pdfium"),
            embed=s.get("model_version") != "none",
        )
    finally:
        gen.close()
    for key, value in overrides.items():
        setattr(options, key, value)
    return options


def _model_dir_name() -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", model_version())


# --------------------------------------------------------------------------- discovery


@dataclass
class _Stat:
    path: str
    size: int
    mtime_ns: int


def find_pdfs(folders: list[Path]) -> list[_Stat]:
    """Every *.pdf under the folders (recursive, hidden folders skipped), sorted, deduplicated."""
    seen: dict[str, _Stat] = {}
    for folder in folders:
        if folder.is_file():
            candidates = [folder]
        else:
            candidates = []
            for dirpath, dirs, files in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                candidates.extend(Path(dirpath) / f for f in files if f.lower().endswith(".pdf"))
        for p in candidates:
            try:
                st = p.stat()
            except OSError:
                continue
            key = os.path.abspath(p)  # not resolve(): a symlinked PDF keeps the user's path
            seen[key] = _Stat(key, st.st_size, st.st_mtime_ns)
    return [seen[k] for k in sorted(seen)]


def find_catalogs(options: IngestOptions) -> list[Path]:
    if options.catalogs:
        missing = [str(c) for c in options.catalogs if not c.is_file()]
        if missing:
            raise IngestError(f"catalog not found: {', '.join(missing)}")
        return [c.resolve() for c in options.catalogs]
    found = catalog_mod.discover_catalogs([f for f in options.folders if f.is_dir()], options.cwd)
    cwd_readme = (options.cwd / "README.md").resolve()
    result = []
    for path in found:
        path = path.resolve()
        if (
            path == cwd_readme
            and not _in_folders(path, options.folders)
            and not _looks_like_reading_list(path)
        ):
            continue  # the README of the current directory counts only when it is a reading list
        result.append(path)
    return result


def _in_folders(path: Path, folders: list[Path]) -> bool:
    return any(path.is_relative_to(f.resolve()) for f in folders if f.is_dir())


def _looks_like_reading_list(path: Path) -> bool:
    """A README that is a reading list has checkbox papers or links to PDFs."""
    try:
        entries = catalog_mod.parse_catalog(path).entries
    except Exception:
        return False
    return any(e.read is not None or any(".pdf" in lk.url.lower() for lk in e.links) for e in entries)


def _stat_catalogs(paths: list[Path]) -> list[_Stat]:
    out = []
    for p in paths:
        st = p.stat()
        out.append(_Stat(str(p), st.st_size, st.st_mtime_ns))
    return out


def _readable(gen: store.Generation) -> bool:
    """The live generation opens: a damaged index must be rebuilt, not reported "up to date"."""
    try:
        for name in (index_mod.PAPER_INDEX, index_mod.PASSAGE_INDEX):
            index_mod.open_index(gen.tantivy_dir(name))
        gen.vectors(), gen.paper_vectors(), gen.passage_owner(), gen.passage_flags()
    except (store.StoreError, OSError, ValueError):
        return False
    return True


def _unchanged(gen: store.Generation, settings: dict[str, str], pdfs: list[_Stat], cats: list[_Stat]) -> bool:
    if any(gen.settings.get(k) != settings[k] for k in VERSION_KEYS):
        return False
    files = gen.files()
    if {(f["path"], f["size"], f["mtime_ns"]) for f in files} != {(s.path, s.size, s.mtime_ns) for s in pdfs}:
        return False
    cats_before = {(c["path"], c["size"], c["mtime_ns"]) for c in gen.catalogs()}
    if cats_before != {(s.path, s.size, s.mtime_ns) for s in cats} or not _readable(gen):
        return False
    # Last and only when all else is unchanged: retrying failed files starts a worker process.
    return _failed_still_fail(files, gen.settings.get("extractor", DEFAULT_EXTRACTOR))


def _failed_still_fail(files: list[dict], extractor: str) -> bool:
    """Retry the files that failed last time (a library with one broken PDF must still get an
    instant unchanged run); True when each fails again for the same reason."""
    failed = [f for f in files if f["status"] == "failed"]
    if not failed:
        return True
    runner = _Extractor(extractor)
    try:
        for f in failed:
            again = runner.result(runner.submit(f["path"]))
            if again.status != "failed" or again.reason != f["reason"]:
                return False
    finally:
        runner.close()
    return True


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- extraction


def _extract_worker(path: str, extractor: str) -> Extraction:
    return extract_mod.extract_pdf(Path(path), extractor=extractor)


class _Extractor:
    """Runs extract_pdf in a separate process so a crash or hang costs one file, not the run."""

    def __init__(self, extractor: str) -> None:
        self.extractor = extractor
        self.pool: cf.ProcessPoolExecutor | None = None

    def _pool(self) -> cf.ProcessPoolExecutor:
        if self.pool is None:
            self.pool = cf.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self.pool

    def submit(self, path: str) -> cf.Future:
        return self._pool().submit(_extract_worker, path, self.extractor)

    def result(self, future: cf.Future) -> Extraction:
        try:
            return future.result(timeout=EXTRACT_TIMEOUT_S)
        except cf.TimeoutError:
            self.kill()
            return Extraction(status="failed", reason=f"extraction took over {EXTRACT_TIMEOUT_S} s")
        except cf.process.BrokenProcessPool:
            self.kill()
            return Extraction(status="failed", reason="the PDF crashed the extractor (damaged PDF)")
        except Exception as exc:  # extract_pdf should not raise; never let one file stop the run
            return Extraction(status="failed", reason=f"damaged PDF: {type(exc).__name__}")

    def kill(self) -> None:
        if self.pool is not None:
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.kill()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


# --------------------------------------------------------------------------- papers


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


def _title_key(title: str) -> str:
    return " ".join(re.findall(r"\w+", title.lower()))


@dataclass
class _FileInfo:
    stat: _Stat
    sha: str
    extraction: Extraction
    change: str


def build_papers(
    entries: list[Entry], files: list[_FileInfo], decisions: list[link_mod.LinkDecision]
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
        key = _title_key(e.title)
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
    primaries: dict[str, _FileInfo] = {}
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


def paper_doc(paper: Paper) -> index_mod.PaperDoc:
    return index_mod.PaperDoc(
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
        read={True: "yes", False: "no"}.get(paper.read, "unknown"),  # type: ignore[arg-type]
        status=paper.status,
    )


# --------------------------------------------------------------------------- the run


def ingest(options: IngestOptions, progress: Progress | None = None) -> IngestReport:
    """Bring the index at ``options.index_dir`` up to date with the folders and catalogs."""
    progress = progress or Progress()
    t0 = time.perf_counter()
    for folder in options.folders:
        if not folder.exists():
            raise IngestError(f"folder not found: {folder}")
        if folder.is_file() and folder.suffix.lower() != ".pdf":
            raise IngestError(
                f"{folder} is neither a folder nor a PDF (a reading list? use --catalog {folder})"
            )
    if options.extractor not in extract_mod.EXTRACTORS:
        raise IngestError(
            f"unknown extractor {options.extractor!r}: choose one of {', '.join(extract_mod.EXTRACTORS)}"
        )
    root = options.index_dir
    with store.ingest_lock(
        root,
        options.wait_lock_s,
        lambda: progress.message(f"another kb ingest is running on {root}; waiting for it to finish"),
    ):
        store.clean_stale(root)
        report = _run(options, progress)
    report.seconds = time.perf_counter() - t0
    return report


def _run(options: IngestOptions, progress: Progress) -> IngestReport:
    root = options.index_dir
    settings = settings_for(options)
    pdfs = find_pdfs(options.folders)
    catalog_paths = find_catalogs(options)
    cat_stats = _stat_catalogs(catalog_paths)

    previous: store.Generation | None = None
    try:
        previous = store.Generation(root)
    except store.NoIndex:
        previous = None
    except store.StoreError as exc:
        progress.message(f"previous index unusable ({exc}); building a new one")
    if previous is not None:
        for key in ("schema_version", "extractor_version", "model_version", "chunker_version"):
            if previous.settings.get(key) != settings[key]:
                progress.message(
                    f"{key.replace('_', ' ')} changed "
                    f"({previous.settings.get(key)} -> {settings[key]}): rebuilding"
                )
        if not options.rebuild and _unchanged(previous, settings, pdfs, cat_stats):
            report = IngestReport(changed=False, unchanged=len(pdfs), generation=previous.path.name)
            report.papers = len(previous.papers())
            files = previous.files()
            report.pages = sum(f["pages"] or 0 for f in files)
            report.flagged = [
                (f["path"], f["status"], f["reason"] or "")
                for f in files
                if f["status"] in ("no-text", "garbled")
            ]
            report.failed = [(f["path"], f["reason"] or "failed") for f in files if f["status"] == "failed"]
            report.passages = previous.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
            previous.close()
            return report
    prev_files = {f["path"]: f for f in previous.files()} if previous else {}
    if previous:
        previous.close()

    report = IngestReport(changed=True)
    cache = store.Cache(root)
    extractor = _Extractor(options.extractor)
    encoder: Encoder | None = None
    timings = {"hash": 0.0, "extract": 0.0, "chunk": 0.0, "embed": 0.0, "index": 0.0}
    ex_key = f"{options.extractor}:{settings['extractor_version']}"
    chunk_key = f"{settings['chunker_version']}:{settings['model_version']}"

    def get_encoder() -> Encoder:
        nonlocal encoder
        if encoder is None:
            progress.stage("loading the embedding model")
            encoder = SentenceTransformerEncoder()
        return encoder

    try:
        # 1. hash files (size+mtime cache first) and start extracting what the cache lacks
        progress.start(len(pdfs))
        shas: dict[str, str] = {}
        th = time.perf_counter()
        for s in pdfs:
            sha = None if options.rebuild else cache.stat_hash(s.path, s.size, s.mtime_ns)
            if sha is None:
                try:
                    sha = sha256_file(s.path)
                except OSError as exc:
                    sha = "unreadable:" + s.path
                    report.warnings.append(f"{s.path}: cannot read ({exc.strerror})")
                cache.put_stat(s.path, s.size, s.mtime_ns, sha)
            shas[s.path] = sha
        cache.commit()
        timings["hash"] = time.perf_counter() - th
        prev_by_sha = {f["sha256"]: f for f in prev_files.values()}
        futures: dict[str, cf.Future] = {}
        for s in pdfs:
            cached = None if options.rebuild else cache.get_extraction(shas[s.path], ex_key)
            if cached is None or cached[0] == "failed":
                futures[s.path] = extractor.submit(s.path)

        # 2. per file: extraction result -> cache -> chunks -> vectors (the model works while the
        #    worker process extracts the next file)
        infos: list[_FileInfo] = []
        file_chunks: dict[str, list[tuple[int, str]]] = {}
        file_vecs: dict[str, np.ndarray] = {}
        for s in pdfs:
            sha = shas[s.path]
            tx = time.perf_counter()
            if s.path in futures:
                ex = extractor.result(futures[s.path])
                cache.put_extraction(sha, ex_key, ex.status, ex.reason, ex.meta, ex.pages)
            else:
                status, reason, meta, pages = cache.get_extraction(sha, ex_key)  # type: ignore[misc]
                ex = Extraction(
                    status=status, reason=reason, meta=meta, pages=pages, extractor=options.extractor
                )
            timings["extract"] += time.perf_counter() - tx
            change = _change(s.path, sha, prev_files, prev_by_sha)
            info = _FileInfo(s, sha, ex, change)
            infos.append(info)
            if ex.status == "ok" and sha not in file_chunks:
                got = None if options.rebuild else cache.get_chunks(sha, chunk_key)
                if got is None:
                    tc = time.perf_counter()
                    chunks = [(c.page, c.text) for c in chunk_mod.chunk_pages(ex.pages)]
                    timings["chunk"] += time.perf_counter() - tc
                    te = time.perf_counter()
                    if options.embed:
                        vecs = get_encoder().encode([t for _, t in chunks])
                    else:
                        vecs = np.zeros((len(chunks), DIM), dtype=np.float32)
                    timings["embed"] += time.perf_counter() - te
                    if options.embed:
                        cache.put_chunks(sha, chunk_key, chunks, vecs)
                    got = (chunks, vecs)
                file_chunks[sha], file_vecs[sha] = got[0], got[1]
            cache.commit()
            progress.advance(FileOutcome(s.path, ex.status, ex.reason, len(ex.pages), change))
        extractor.close()

        # 3. catalogs and links
        progress.stage("linking PDFs to the reading list")
        entries: list[Entry] = []
        cat_rows = []
        for path, st in zip(catalog_paths, cat_stats, strict=True):
            parsed = catalog_mod.parse_catalog(path)
            entries.extend(parsed.entries)
            report.warnings.extend(f"{path}: {w}" for w in parsed.warnings)
            cat_rows.append(
                {
                    "path": st.path,
                    "sha256": _sha_bytes(path),
                    "size": st.size,
                    "mtime_ns": st.mtime_ns,
                    "entries": len(parsed.entries),
                    "warnings": json.dumps(parsed.warnings, ensure_ascii=False),
                }
            )
        roots = [f.resolve() for f in options.folders if f.is_dir()]
        candidates = [link_mod.PdfCandidate(Path(i.stat.path), i.extraction.meta) for i in infos]
        decisions = link_mod.link_pdfs(entries, candidates, roots)
        papers, file_paper = build_papers(entries, infos, decisions)
        titles = {i: e.title for i, e in enumerate(entries)}
        report.unsure_links = [
            (str(d.pdf), titles.get(d.entry_index, "?"), d.score)
            for d in decisions
            if d.unsure and d.entry_index is not None
        ]
        decision_by_path = {str(d.pdf): d for d in decisions}

        # 4. passages, vectors, paper vectors
        attachments = {str(d.pdf) for d in decisions if d.attachment}
        passages: list[tuple[int, str, int, int, str | None, str]] = []
        vec_parts: list[np.ndarray] = []
        first_passage: dict[str, str] = {}
        seq: dict[str, int] = {}
        paper_row = {p.id: i for i, p in enumerate(papers)}
        owner: list[int] = []
        flags: list[int] = []
        indexed: set[tuple[str, str]] = set()
        for info in infos:
            pid = file_paper.get(info.stat.path)
            if pid is None or info.sha not in file_chunks or (pid, info.sha) in indexed:
                continue  # a second copy of the same content adds no passages
            indexed.add((pid, info.sha))
            chunks = file_chunks[info.sha]
            vec_parts.append(file_vecs[info.sha])
            attachment = info.stat.path in attachments
            for page, text in chunks:
                n = seq.get(pid, 0)
                seq[pid] = n + 1
                passages.append((len(passages), pid, n, page, info.stat.path, text))
                owner.append(paper_row[pid])
                cjk = chunk_mod.cjk_share(text) > CJK_SHARE
                flags.append((store.FLAG_ATTACHMENT if attachment else 0) | (store.FLAG_CJK if cjk else 0))
                if not attachment:
                    first_passage.setdefault(pid, text)
        vectors = np.concatenate(vec_parts) if vec_parts else np.zeros((0, DIM), dtype=np.float32)
        seen = cache.first_seen([p.id for p in papers], time.time())
        for p in papers:
            p.added = seen.get(p.id)
        descriptors = [paper_descriptor(p, first_passage.get(p.id)) for p in papers]
        paper_vecs = _descriptor_vectors(
            descriptors, cache, settings["model_version"], get_encoder if options.embed else None, timings
        )
        cache.commit()

        # the query-time model, exported once per model version
        model_dir = root / store.MODEL_DIR / settings["model_dir"]
        if options.embed and not (model_dir / "model.onnx").exists():
            progress.stage("exporting the query model (once)")
            enc = get_encoder()
            assert isinstance(enc, SentenceTransformerEncoder)
            enc.export_onnx(model_dir)

        # 5. write the new generation, then switch to it
        progress.stage("writing the index")
        ti = time.perf_counter()
        gen = store.new_generation_dir(root)
        index_mod.write_indexes(
            gen,
            (paper_doc(p) for p in papers),
            (index_mod.PassageDoc(pid, row, page, text) for row, pid, _n, page, _f, text in passages),
        )
        file_rows = []
        for info in infos:
            d = decision_by_path.get(info.stat.path)
            file_rows.append(
                {
                    "path": info.stat.path,
                    "sha256": info.sha,
                    "size": info.stat.size,
                    "mtime_ns": info.stat.mtime_ns,
                    "status": info.extraction.status,
                    "reason": info.extraction.reason,
                    "paper_id": file_paper.get(info.stat.path),
                    "pages": len(info.extraction.pages),
                    "link_method": d.method if d else None,
                    "link_score": d.score if d else None,
                    "unsure": int(bool(d and d.unsure)),
                    "attachment": int(bool(d and d.attachment)),
                }
            )
        store.write_manifest(
            gen, {**settings, **source_settings(options)}, papers, file_rows, passages, cat_rows
        )
        store.write_vectors(gen, vectors, paper_vecs, np.array(owner, np.int32), np.array(flags, np.uint8))
        final = store.publish_generation(root, gen)
        timings["index"] = time.perf_counter() - ti
    finally:
        extractor.kill()
        cache.close()

    seen_paths = {i.stat.path for i in infos}
    for info in infos:
        if info.change == "added":
            report.added += 1
        elif info.change == "updated":
            report.updated += 1
        elif info.change == "moved":
            report.moved += 1
        else:
            report.unchanged += 1
        if info.extraction.status == "failed":
            report.failed.append((info.stat.path, info.extraction.reason or "failed"))
        elif info.extraction.status in ("no-text", "garbled"):
            report.flagged.append((info.stat.path, info.extraction.status, info.extraction.reason or ""))
    moved_shas = {i.sha for i in infos if i.change == "moved"}
    report.removed = sum(
        1 for p, f in prev_files.items() if p not in seen_paths and f["sha256"] not in moved_shas
    )
    report.papers = len(papers)
    report.pages = sum(len(i.extraction.pages) for i in infos)
    report.passages = len(passages)
    report.timings = timings
    report.generation = final.name
    return report


def _change(path: str, sha: str, prev_files: dict[str, dict], prev_by_sha: dict[str, dict]) -> str:
    before = prev_files.get(path)
    if before is not None:
        return "unchanged" if before["sha256"] == sha else "updated"
    return "moved" if sha in prev_by_sha else "added"


def _sha_bytes(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _descriptor_vectors(
    texts: list[str],
    cache: store.Cache,
    model: str,
    get_encoder: Callable[[], Encoder] | None,
    timings: dict[str, float],
) -> np.ndarray:
    if get_encoder is None:
        return np.zeros((len(texts), DIM), dtype=np.float32)
    keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    have = cache.get_textvecs(keys, model)
    missing = sorted({k for k in keys if k not in have})
    if missing:
        te = time.perf_counter()
        by_key = dict(zip(keys, texts, strict=True))
        vecs = get_encoder().encode([by_key[k] for k in missing])
        timings["embed"] += time.perf_counter() - te
        new = dict(zip(missing, vecs, strict=True))
        cache.put_textvecs(new, model)
        have.update(new)
    if not keys:
        return np.zeros((0, DIM), dtype=np.float32)
    return np.stack([have[k] for k in keys]).astype(np.float32)
