"""The ingest pipeline: PDFs + reading lists -> a new index generation.

Stages, each in its own module: catalog (parse the Markdown), extract (PDF text), link (PDF ->
entry), chunk (passages), embed (vectors), papers (assembly), storage (tantivy, manifest, cache,
generations). This module orders them — plan -> extract and embed -> assemble papers -> write the
generation -> report, each passing a dataclass to the next — and decides what can be skipped:

- nothing changed (same files by size+mtime, same catalogs, same versions): return at once;
- a file whose content hash is in the cache is neither extracted nor embedded again (renamed and
  moved files included); extraction runs in a worker process, so a PDF that crashes or hangs the
  extractor fails alone, and the main process embeds while the worker extracts;
- everything is written into a new generation that replaces the old one atomically at the end.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kb import catalog as catalog_mod
from kb import chunk as chunk_mod
from kb import extract as extract_mod
from kb import link as link_mod
from kb.embed import DIM, Encoder, SentenceTransformerEncoder, model_version
from kb.errors import BadIndexError, NoIndexError, UsageError
from kb.fsutil import sha256_bytes, sha256_file, sha256_text
from kb.models import CatalogRow, Entry, Extraction, FileRow, Paper, Passage
from kb.papers import FileStat, IngestedFile, build_papers, paper_descriptor
from kb.storage import store
from kb.storage.base import FLAG_ATTACHMENT, FLAG_CJK, GenerationData, Storage

STORAGE: Storage = store.EmbeddedStorage()

EXTRACT_TIMEOUT_S = 300
CJK_SHARE = 0.2  # a passage with more Han characters than this share of its letters is flagged CJK
DEFAULT_EXTRACTOR = extract_mod.DEFAULT_EXTRACTOR


class IngestError(UsageError):
    """The ingest cannot start as asked (a missing folder or catalog); files fail separately."""


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


def settings_for(options: IngestOptions, model: str) -> dict[str, str]:
    """What an index records about how it was built; ``model`` is the encoder's version ("none")."""
    from kb import __version__

    return {
        **store.format_versions(),
        "extractor": options.extractor,
        "extractor_version": extract_mod.EXTRACTOR_VERSION[options.extractor],
        "chunker_version": chunk_mod.CHUNKER_VERSION,
        "model_version": model,
        "model_dir": re.sub(r"[^A-Za-z0-9.=-]+", "_", model),
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


# --------------------------------------------------------------------------- discovery


def find_pdfs(folders: list[Path]) -> list[FileStat]:
    """Every *.pdf under the folders (recursive, hidden folders skipped), sorted, deduplicated."""
    seen: dict[str, FileStat] = {}
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
            seen[key] = FileStat(key, st.st_size, st.st_mtime_ns)
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


def _stat_catalogs(paths: list[Path]) -> list[FileStat]:
    out = []
    for p in paths:
        st = p.stat()
        out.append(FileStat(str(p), st.st_size, st.st_mtime_ns))
    return out


def _readable(gen: store.Generation) -> bool:
    """The live generation opens: a damaged index must be rebuilt, not reported "up to date"."""
    try:
        gen.verify()
    except (BadIndexError, OSError, ValueError):
        return False
    return True


def _unchanged(gen: store.Generation, plan: _Plan) -> bool:
    """Nothing to do: same versions, same files and catalogs by size+mtime, a readable index, and the
    files that failed last time still fail the same way."""
    if any(gen.settings.get(k) != plan.settings[k] for k in VERSION_KEYS):
        return False
    files = gen.files()
    if {(f.path, f.size, f.mtime_ns) for f in files} != {(s.path, s.size, s.mtime_ns) for s in plan.pdfs}:
        return False
    cats_before = {(c.path, c.size, c.mtime_ns) for c in gen.catalogs()}
    if cats_before != {(s.path, s.size, s.mtime_ns) for s in plan.catalogs} or not _readable(gen):
        return False
    # Last and only when all else is unchanged: retrying failed files starts a worker process.
    return _failed_still_fail(files, gen.settings.get("extractor", DEFAULT_EXTRACTOR))


def _failed_still_fail(files: list[FileRow], extractor: str) -> bool:
    """Retry the files that failed last time (a library with one broken PDF must still get an
    instant unchanged run); True when each fails again for the same reason."""
    failed = [f for f in files if f.status == "failed"]
    if not failed:
        return True
    runner = _Extractor(extractor)
    try:
        for f in failed:
            again = runner.result(runner.submit(f.path))
            if again.status != "failed" or again.reason != f.reason:
                return False
    finally:
        runner.close()
    return True


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


# --------------------------------------------------------------------------- the run


def ingest(
    options: IngestOptions, progress: Progress | None = None, encoder: Encoder | None = None
) -> IngestReport:
    """Bring the index at ``options.index_dir`` up to date with the folders and catalogs.

    ``encoder`` embeds passages (default: the sentence-transformers model, loaded only when something
    needs embedding); the index records its ``version``, so vectors of two models are never mixed.
    """
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
        report = _run(options, progress, _Embedder(encoder, options.embed, progress))
    report.seconds = time.perf_counter() - t0
    return report


def _run(options: IngestOptions, progress: Progress, embedder: _Embedder) -> IngestReport:
    """The stages: plan -> (unchanged? done) -> extract and embed -> assemble papers -> write -> report."""
    plan = _plan(options, embedder)
    previous = _open_previous(plan, progress)
    if previous is not None:
        try:
            if not options.rebuild and _unchanged(previous, plan):
                return _unchanged_report(previous, plan)
            plan.previous = {f.path: f for f in previous.files()}
        finally:
            previous.close()

    cache = store.Cache(options.index_dir)
    try:
        text = _extract_and_embed(plan, cache, embedder, progress)
        progress.stage("linking PDFs to the reading list")
        catalogs = _read_catalogs(plan)
        assembled = _assemble(plan, text, catalogs, cache, embedder)
        _export_query_model(plan, embedder, progress)
        progress.stage("writing the index")
        tw = time.perf_counter()
        generation = _write_generation(plan, assembled, catalogs)
        embedder.timings["index"] = time.perf_counter() - tw
    finally:
        cache.close()
    return _report(plan, text, assembled, catalogs, generation, embedder.timings)


# --------------------------------------------------------------------------- stage 1: plan


@dataclass
class _Plan:
    """What this ingest looks at, and what the live generation holds (``previous``, by path)."""

    options: IngestOptions
    settings: dict[str, str]
    pdfs: list[FileStat]
    catalogs: list[FileStat]
    previous: dict[str, FileRow] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _plan(options: IngestOptions, embedder: _Embedder) -> _Plan:
    catalogs = find_catalogs(options)
    return _Plan(
        options=options,
        settings=settings_for(options, embedder.version),
        pdfs=find_pdfs(options.folders),
        catalogs=_stat_catalogs(catalogs),
    )


def _open_previous(plan: _Plan, progress: Progress) -> store.Generation | None:
    try:
        previous = store.Generation(plan.options.index_dir)
    except NoIndexError:
        return None
    except BadIndexError as exc:
        progress.message(f"previous index unusable ({exc}); building a new one")
        return None
    for key in ("schema_version", "extractor_version", "model_version", "chunker_version"):
        if previous.settings.get(key) != plan.settings[key]:
            progress.message(
                f"{key.replace('_', ' ')} changed "
                f"({previous.settings.get(key)} -> {plan.settings[key]}): rebuilding"
            )
    return previous


def _unchanged_report(previous: store.Generation, plan: _Plan) -> IngestReport:
    files = previous.files()
    report = IngestReport(changed=False, unchanged=len(plan.pdfs), generation=previous.name)
    report.papers = len(previous.papers())
    report.pages = sum(f.pages or 0 for f in files)
    report.flagged = [(f.path, f.status, f.reason or "") for f in files if f.status in ("no-text", "garbled")]
    report.failed = [(f.path, f.reason or "failed") for f in files if f.status == "failed"]
    report.passages = previous.passage_count()
    return report


# --------------------------------------------------------------------------- stage 2: extract and embed


class _Embedder:
    """The encoder, loaded on first use (an unchanged or catalog-only run never pays for the model),
    with the time spent in it."""

    def __init__(self, encoder: Encoder | None, enabled: bool, progress: Progress) -> None:
        self._encoder = encoder
        self.enabled = enabled
        self.progress = progress
        self.version = (encoder.version if encoder is not None else model_version()) if enabled else "none"
        self.timings = {"hash": 0.0, "extract": 0.0, "chunk": 0.0, "embed": 0.0, "index": 0.0}

    def encoder(self) -> Encoder:
        if self._encoder is None:
            self.progress.stage("loading the embedding model")
            self._encoder = SentenceTransformerEncoder()
        return self._encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        if not self.enabled or not texts:
            return np.zeros((len(texts), DIM), dtype=np.float32)
        te = time.perf_counter()
        vecs = self.encoder().encode(texts)
        self.timings["embed"] += time.perf_counter() - te
        return vecs


@dataclass
class _Text:
    """Every PDF after extraction, and the passages and vectors of each distinct content."""

    files: list[IngestedFile]
    chunks: dict[str, list[tuple[int, str]]]  # sha -> [(page, text)]
    vectors: dict[str, np.ndarray]  # sha -> one row per chunk


def _hash_files(plan: _Plan, cache: store.Cache) -> dict[str, str]:
    """Content hash per path: from the cache when size and mtime are unchanged, else read."""
    shas: dict[str, str] = {}
    for s in plan.pdfs:
        sha = None if plan.options.rebuild else cache.stat_hash(s.path, s.size, s.mtime_ns)
        if sha is None:
            try:
                sha = sha256_file(s.path)
            except OSError as exc:
                sha = "unreadable:" + s.path
                plan.warnings.append(f"{s.path}: cannot read ({exc.strerror})")
            cache.put_stat(s.path, s.size, s.mtime_ns, sha)
        shas[s.path] = sha
    cache.commit()
    return shas


def _extract_and_embed(plan: _Plan, cache: store.Cache, embedder: _Embedder, progress: Progress) -> _Text:
    """Per file: extraction (cached by content, else in the worker process) -> chunks -> vectors.

    The model embeds one file while the worker process extracts the next; the cache commits after
    every file, so a killed ingest resumes where it stopped.
    """
    options, timings = plan.options, embedder.timings
    ex_key = f"{options.extractor}:{plan.settings['extractor_version']}"
    chunk_key = f"{plan.settings['chunker_version']}:{plan.settings['model_version']}"
    progress.start(len(plan.pdfs))
    th = time.perf_counter()
    shas = _hash_files(plan, cache)
    timings["hash"] = time.perf_counter() - th
    prev_by_sha = {f.sha256: f for f in plan.previous.values()}
    extractor = _Extractor(options.extractor)
    text = _Text(files=[], chunks={}, vectors={})
    try:
        futures: dict[str, cf.Future] = {}
        for s in plan.pdfs:
            cached = None if options.rebuild else cache.get_extraction(shas[s.path], ex_key)
            if cached is None or cached[0] == "failed":
                futures[s.path] = extractor.submit(s.path)
        for s in plan.pdfs:
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
            change = _change(s.path, sha, plan.previous, prev_by_sha)
            text.files.append(IngestedFile(s, sha, ex, change))
            if ex.status == "ok" and sha not in text.chunks:
                got = None if options.rebuild else cache.get_chunks(sha, chunk_key)
                if got is None:
                    tc = time.perf_counter()
                    chunks = [(c.page, c.text) for c in chunk_mod.chunk_pages(ex.pages)]
                    timings["chunk"] += time.perf_counter() - tc
                    vecs = embedder.encode([t for _, t in chunks])
                    if embedder.enabled:
                        cache.put_chunks(sha, chunk_key, chunks, vecs)
                    got = (chunks, vecs)
                text.chunks[sha], text.vectors[sha] = got[0], got[1]
            cache.commit()
            progress.advance(FileOutcome(s.path, ex.status, ex.reason, len(ex.pages), change))
        extractor.close()
    finally:
        extractor.kill()
    return text


def _change(path: str, sha: str, previous: dict[str, FileRow], prev_by_sha: dict[str, FileRow]) -> str:
    before = previous.get(path)
    if before is not None:
        return "unchanged" if before.sha256 == sha else "updated"
    return "moved" if sha in prev_by_sha else "added"


# --------------------------------------------------------------------------- stage 3: assemble papers


@dataclass
class _Catalogs:
    entries: list[Entry]
    rows: list[CatalogRow]
    warnings: list[str]


def _read_catalogs(plan: _Plan) -> _Catalogs:
    out = _Catalogs(entries=[], rows=[], warnings=[])
    for st in plan.catalogs:
        path = Path(st.path)
        parsed = catalog_mod.parse_catalog(path)
        out.entries.extend(parsed.entries)
        out.warnings.extend(f"{path}: {w}" for w in parsed.warnings)
        out.rows.append(
            CatalogRow(
                path=st.path,
                sha256=sha256_bytes(path.read_bytes()),
                size=st.size,
                mtime_ns=st.mtime_ns,
                entries=len(parsed.entries),
                warnings=parsed.warnings,
            )
        )
    return out


@dataclass
class _Assembled:
    """A whole generation in memory: papers (row = paper vector row), files, passages and vectors."""

    papers: list[Paper]
    files: list[FileRow]
    passages: list[Passage]
    vectors: np.ndarray
    paper_vectors: np.ndarray
    owner: np.ndarray  # paper row of each passage row
    flags: np.ndarray  # store.FLAG_* of each passage row
    unsure_links: list[tuple[str, str, float]]


def _assemble(
    plan: _Plan, text: _Text, catalogs: _Catalogs, cache: store.Cache, embedder: _Embedder
) -> _Assembled:
    """Link PDFs to entries, build the papers, lay out passages and vectors by row."""
    options = plan.options
    roots = [f.resolve() for f in options.folders if f.is_dir()]
    candidates = [link_mod.PdfCandidate(Path(i.stat.path), i.extraction.meta) for i in text.files]
    decisions = link_mod.link_pdfs(catalogs.entries, candidates, roots)
    papers, file_paper = build_papers(catalogs.entries, text.files, decisions)
    titles = {i: e.title for i, e in enumerate(catalogs.entries)}
    unsure = [
        (str(d.pdf), titles.get(d.entry_index, "?"), d.score)
        for d in decisions
        if d.unsure and d.entry_index is not None
    ]
    decision_by_path = {str(d.pdf): d for d in decisions}
    attachments = {str(d.pdf) for d in decisions if d.attachment}

    passages: list[Passage] = []
    vec_parts: list[np.ndarray] = []
    first_passage: dict[str, str] = {}
    seq: dict[str, int] = {}
    paper_row = {p.id: i for i, p in enumerate(papers)}
    owner: list[int] = []
    flags: list[int] = []
    indexed: set[tuple[str, str]] = set()
    for info in text.files:
        pid = file_paper.get(info.stat.path)
        if pid is None or info.sha not in text.chunks or (pid, info.sha) in indexed:
            continue  # a second copy of the same content adds no passages
        indexed.add((pid, info.sha))
        vec_parts.append(text.vectors[info.sha])
        attachment = info.stat.path in attachments
        for page, chunk in text.chunks[info.sha]:
            n = seq.get(pid, 0)
            seq[pid] = n + 1
            passages.append(Passage(paper_id=pid, seq=n, page=page, text=chunk, file=info.stat.path,
                                    row=len(passages)))
            owner.append(paper_row[pid])
            cjk = chunk_mod.cjk_share(chunk) > CJK_SHARE
            flags.append((FLAG_ATTACHMENT if attachment else 0) | (FLAG_CJK if cjk else 0))
            if not attachment:
                first_passage.setdefault(pid, chunk)
    vectors = np.concatenate(vec_parts) if vec_parts else np.zeros((0, DIM), dtype=np.float32)
    seen = cache.first_seen([p.id for p in papers], time.time())
    for p in papers:
        p.added = seen.get(p.id)
    descriptors = [paper_descriptor(p, first_passage.get(p.id)) for p in papers]
    paper_vectors = _descriptor_vectors(descriptors, cache, plan.settings["model_version"], embedder)
    cache.commit()

    file_rows = []
    for info in text.files:
        d = decision_by_path.get(info.stat.path)
        file_rows.append(
            FileRow(
                path=info.stat.path,
                sha256=info.sha,
                size=info.stat.size,
                mtime_ns=info.stat.mtime_ns,
                status=info.extraction.status,
                reason=info.extraction.reason,
                paper_id=file_paper.get(info.stat.path),
                pages=len(info.extraction.pages),
                link_method=d.method if d else None,
                link_score=d.score if d else None,
                unsure=bool(d and d.unsure),
                attachment=bool(d and d.attachment),
            )
        )
    return _Assembled(
        papers=papers,
        files=file_rows,
        passages=passages,
        vectors=vectors,
        paper_vectors=paper_vectors,
        owner=np.array(owner, np.int32),
        flags=np.array(flags, np.uint8),
        unsure_links=unsure,
    )


def _descriptor_vectors(texts: list[str], cache: store.Cache, model: str, embedder: _Embedder) -> np.ndarray:
    """One vector per paper descriptor, from the cache by text hash, the rest embedded now."""
    if not embedder.enabled or not texts:
        return np.zeros((len(texts), DIM), dtype=np.float32)
    keys = [sha256_text(t) for t in texts]
    have = cache.get_textvecs(keys, model)
    missing = sorted({k for k in keys if k not in have})
    if missing:
        by_key = dict(zip(keys, texts, strict=True))
        new = dict(zip(missing, embedder.encode([by_key[k] for k in missing]), strict=True))
        cache.put_textvecs(new, model)
        have.update(new)
    return np.stack([have[k] for k in keys]).astype(np.float32)


# --------------------------------------------------------------------------- stage 4: write


def _export_query_model(plan: _Plan, embedder: _Embedder, progress: Progress) -> None:
    """The query-time ONNX model, exported once per model version (only the real model can be)."""
    model_dir = plan.options.index_dir / store.MODEL_DIR / plan.settings["model_dir"]
    if not embedder.enabled or (model_dir / "model.onnx").exists():
        return
    encoder = embedder.encoder()
    if isinstance(encoder, SentenceTransformerEncoder):
        progress.stage("exporting the query model (once)")
        encoder.export_onnx(model_dir)


def _write_generation(plan: _Plan, a: _Assembled, catalogs: _Catalogs) -> str:
    """Write a complete new generation beside the live one, then switch to it atomically."""
    data = GenerationData(
        settings={**plan.settings, **source_settings(plan.options)},
        papers=a.papers,
        files=a.files,
        passages=a.passages,
        catalogs=catalogs.rows,
        vectors=a.vectors,
        paper_vectors=a.paper_vectors,
        owner=a.owner,
        flags=a.flags,
    )
    return STORAGE.write(plan.options.index_dir, data)


# --------------------------------------------------------------------------- stage 5: report


def _report(
    plan: _Plan,
    text: _Text,
    a: _Assembled,
    catalogs: _Catalogs,
    generation: str,
    timings: dict[str, float],
) -> IngestReport:
    report = IngestReport(changed=True, generation=generation, timings=timings)
    report.warnings = [*plan.warnings, *catalogs.warnings]
    report.unsure_links = a.unsure_links
    for info in text.files:
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
    seen_paths = {i.stat.path for i in text.files}
    moved_shas = {i.sha for i in text.files if i.change == "moved"}
    report.removed = sum(
        1 for p, f in plan.previous.items() if p not in seen_paths and f.sha256 not in moved_shas
    )
    report.papers = len(a.papers)
    report.pages = sum(len(i.extraction.pages) for i in text.files)
    report.passages = len(a.passages)
    return report
