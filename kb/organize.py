"""Organising the reading list from the terminal: show one paper, mark papers read, add a PDF, export.

The user's Markdown reading list stays the single source of truth, and the user keeps editing it by
hand, so every change here is a small edit of that file (through :mod:`kb.mdedit`: byte-exact, atomic,
refused when the file changed under it) followed by a re-ingest, so the index agrees with the file as
soon as the command returns. Nothing is ever written into the index alone.

Two rules keep those edits safe although the index and the file are separate things:

* **line numbers come from a fresh index.** Before an edit, every catalog the index knows is compared
  with the digest the index recorded; a catalog the user changed since then is re-ingested first, so
  the line kb edits is the line it parsed. Each edit then passes that digest on (``expected_digest``):
  a save in the user's editor between kb's read and kb's write is refused with "run again".
* **writes that may be wrong are refused, not guessed.** A name that matches several papers equally,
  a list without checkboxes, a PDF that is already in the library or cannot be read: one clear
  message each, and nothing written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kb import mdedit
from kb.errors import RefusedError, UsageError
from kb.fsutil import json_path, rel_path, sha256_file
from kb.models import Paper
from kb.papers import humanize_filename, title_key
from kb.storage import store

if TYPE_CHECKING:
    from kb.embed import Encoder
    from kb.ingest import IngestReport
    from kb.listing import Filters
    from kb.related import Space


class OrganizeError(RefusedError):
    """kb refused to show, mark or add something; ``str(error)`` is a one-line message for the user."""


class DuplicatePaper(OrganizeError):
    """The PDF (same content) or its title is already in the library."""


class BadPdf(OrganizeError):
    """The file to add is missing, not a PDF, or cannot be read."""


# ------------------------------------------------------------------------------------------------- show


@dataclass
class FileInfo:
    """One PDF of a paper as the index saw it."""

    path: str
    pages: int
    status: str
    reason: str | None = None

    def to_json(self, cwd: Path | None = None) -> dict:
        return {"path": json_path(self.path, cwd), "pages": self.pages, "status": self.status,
                "reason": self.reason}


@dataclass
class RelatedInfo:
    paper: Paper
    score: float


@dataclass
class PaperDetails:
    """Everything kb knows about one paper (``kb show``)."""

    paper: Paper
    method: str  # how the user's words resolved (alias, title, id, file, ...)
    others: list[Paper]  # papers that matched about as well
    files: list[FileInfo]
    summary: str | None  # the abstract, else the first passage
    summary_kind: str | None  # "abstract" | "first passage" | None
    summary_page: int | None
    related: list[RelatedInfo] = field(default_factory=list)
    related_note: str | None = None  # why there are no related papers, when there are none

    def to_json(self, cwd: Path | None = None) -> dict:
        """``kb show --json``: the paper's own JSON form plus what the index knows around it."""
        data = self.paper.to_json(cwd)
        data["files"] = [f.to_json(cwd) for f in self.files]
        data["resolved_by"] = self.method
        data["also_matched"] = [{"id": p.id, "title": p.title} for p in self.others]
        data["summary"] = (
            {"kind": self.summary_kind, "page": self.summary_page, "text": self.summary}
            if self.summary
            else None
        )
        data["related"] = [
            {"id": r.paper.id, "title": r.paper.title, "score": round(r.score, 4)} for r in self.related
        ]
        return data


def show_paper(
    gen: store.Generation, query: str, n_related: int = 3, space: Space | None = None
) -> PaperDetails:
    """Resolve ``query`` like ``kb related`` does and gather what the index holds about that paper."""
    from kb.resolve import resolve_paper

    res = resolve_paper(gen, query)
    paper = res.paper
    by_path = {f.path: f for f in gen.files()}
    files = []
    for path in paper.files:
        row = by_path.get(path)
        files.append(FileInfo(path, row.pages if row else 0, row.status if row else paper.status,
                              row.reason if row else None))
    summary, kind, page = paper.abstract, "abstract" if paper.abstract else None, None
    if not summary:
        passages = gen.passages_of(paper.id)
        if passages:
            page, summary = passages[0].page, passages[0].text
            kind = "first passage"
    related, note = _related(gen, paper, n_related, space)
    return PaperDetails(paper, res.method, res.others, files, summary, kind, page, related, note)


def _related(
    gen: store.Generation, paper: Paper, n: int, space: Space | None
) -> tuple[list[RelatedInfo], str | None]:
    """The ``n`` nearest papers by kb.related's scoring; an index without vectors has none."""
    if n <= 0:
        return [], None
    from kb.related import RelatedError, related

    try:
        result = related(gen, paper.id, limit=n, space=space)
    except RelatedError as exc:
        return [], str(exc)
    if result.resolution is not None and result.resolution.paper.id != paper.id:
        return [], f"could not compute related papers for {paper.id}"
    return [RelatedInfo(r.paper, r.score) for r in result.results], None


# ------------------------------------------------------------------------------------- fresh index


def _refresh_if_stale(index_dir: Path, encoder: Encoder | None) -> tuple[store.Generation, bool]:
    """Open the index, re-ingesting first when a catalog on disk differs from what the index read.

    The user edits the list by hand; line numbers and duplicate checks must come from the file as it
    is now, not as it was at the last ``kb ingest``. A catalog-only re-ingest takes a second or two.
    """
    from kb.ingest import ingest, options_from_index

    options = options_from_index(index_dir)  # fails early (before any edit) on an index that cannot
    gen = store.open_generation(index_dir)  # be re-ingested by itself
    if not _stale_catalogs(gen):
        return gen, False
    gen.close()
    ingest(options, encoder=encoder)
    return store.open_generation(index_dir), True


def _stale_catalogs(gen: store.Generation) -> list[str]:
    stale = []
    for cat in gen.catalogs():
        try:
            if mdedit.file_digest(Path(cat.path)) != cat.sha256:
                stale.append(cat.path)
        except OSError:
            stale.append(cat.path)
    return stale


def _reingest(index_dir: Path, encoder: Encoder | None) -> IngestReport:
    from kb.ingest import ingest, options_from_index

    return ingest(options_from_index(index_dir), encoder=encoder)


# ------------------------------------------------------------------------------------------------- mark


@dataclass
class MarkOutcome:
    """What happened to one name the user gave ``kb mark``."""

    query: str
    paper: Paper | None = None
    method: str | None = None
    result: mdedit.EditResult | None = None
    error: str | None = None
    note: str | None = None  # e.g. the same paper named twice


@dataclass
class MarkReport:
    outcomes: list[MarkOutcome]
    refreshed: bool  # the index was re-read first because a catalog had changed
    ingest: IngestReport | None = None  # the re-ingest after the edits

    @property
    def failed(self) -> list[MarkOutcome]:
        return [o for o in self.outcomes if o.error]


def _loose_match(query: str, res: object) -> str | None:
    """Why a resolution is too loose to write on, or None.

    Reading a paper may go by a typo or a word its text mentions; writing to the user's list may
    not: a mention ("loss function") or a fuzzy title would tick some other paper's box.
    """
    from kb.stopwords import FUNCTION_WORDS

    method = getattr(res, "method", "")
    paper = getattr(res, "paper", None)
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in FUNCTION_WORDS]
    part_of_title = method == "title" and getattr(res, "score", 1.0) < 1.0
    if method in ("mention", "fuzzy-title") or (part_of_title and len(words) < 2):
        title = paper.title if paper is not None else "?"
        how = {"mention": "its text mentions it", "fuzzy-title": "a similar title"}.get(
            method, "one title word"
        )
        return (
            f"{query!r} only loosely matches {title!r} ({how}); to change the list, name the paper by its "
            f"alias, id, file or more of its title (e.g. `kb mark ... {getattr(paper, 'id', '')}`)"
        )
    return None


def mark(
    index_dir: Path, queries: list[str], read: bool, dry_run: bool = False, *, encoder: Encoder | None = None
) -> MarkReport:
    """Flip the checkbox of each named paper's catalog entry, then re-ingest once.

    Each name is handled on its own: an unknown name, an ambiguous one or a list without checkboxes
    is reported in its ``MarkOutcome`` and the other papers are still marked.
    """
    from kb.resolve import ResolveError, closest_titles, resolve_paper

    gen, refreshed = _refresh_if_stale(index_dir, encoder)
    try:
        digests = {c.path: c.sha256 for c in gen.catalogs()}
        outcomes = []
        seen: set[str] = set()
        for query in queries:
            outcome = MarkOutcome(query)
            outcomes.append(outcome)
            try:
                res = resolve_paper(gen, query)
            except ResolveError as exc:
                outcome.error = str(exc)
                continue
            outcome.paper, outcome.method = res.paper, res.method
            loose = _loose_match(query, res)
            if loose:
                outcome.error = loose
                continue
            if res.others:
                names = "; ".join(f"{p.title} ({p.id})" for p in [res.paper, *res.others][:5])
                outcome.error = f"{query!r} matches several papers: {names}; name one by its id or alias"
                continue
            paper = res.paper
            if paper.id in seen:
                outcome.note = f"{query!r} is {paper.id} again; marked once"
                continue
            seen.add(paper.id)
            if paper.catalog is None:
                near = "; ".join(p.id for p in closest_titles(gen.papers(), paper.title) if p.catalog)
                outcome.error = (f"{paper.id} is a PDF in no reading list, so it has no checkbox; add it"
                                 " with `kb add` first"
                                 + (f" (entries with similar titles: {near})" if near else ""))
                continue
            # Every entry of the paper: the same title listed twice is one paper, ticked everywhere.
            for ref in [paper.catalog, *paper.also_in]:
                path = Path(ref.file)
                try:
                    result = mdedit.set_read(path, ref.line, read,
                                             expected_digest=digests.get(str(path)), dry_run=dry_run)
                except mdedit.NoCheckbox:
                    if ref is paper.catalog:
                        outcome.error = (
                            f"{paper.id} ({_rel(path)}:{ref.line}) has no checkbox: that list does not"
                            " track read state (add '[ ] ' after its bullet to track it)"
                        )
                    continue
                except mdedit.EditError as exc:
                    outcome.error = f"{paper.id}: {exc}"
                    break
                digests[str(path)] = result.digest
                if outcome.result is not None and outcome.result.changed and result.changed:
                    result = dataclasses.replace(result, diff=outcome.result.diff + result.diff)
                if outcome.result is None or result.changed:
                    outcome.result = result
    finally:
        gen.close()
    report = MarkReport(outcomes, refreshed)
    if not dry_run and any(o.result and o.result.changed for o in outcomes):
        report.ingest = _reingest(index_dir, encoder)
    return report


# -------------------------------------------------------------------------------------------------- add


@dataclass
class AddReport:
    """What ``kb add`` did (or, with ``dry_run``, would do)."""

    title: str
    catalog: Path
    topic: list[str]
    source: Path
    destination: Path  # where the PDF is (or would be) in the library
    action: str  # "copied", "moved", "kept" (already in the library folder)
    entry: str  # the Markdown line written
    edit: mdedit.EditResult
    paper_id: str | None = None  # id of the new paper in the re-ingested index
    line: int | None = None  # its line in the catalog
    warnings: list[str] = field(default_factory=list)


def split_topic(topic: str) -> list[str]:
    """``"GAN/StyleGAN and its derivative"`` -> ``["GAN", "StyleGAN and its derivative"]``."""
    return [" ".join(part.split()) for part in topic.split("/") if part.strip()]


def add_pdf(
    index_dir: Path,
    pdf: Path,
    topic: list[str],
    catalog: Path | None = None,
    move: bool = False,
    dry_run: bool = False,
    *,
    title: str | None = None,
    alias: str | None = None,
    venue: str | None = None,
    year: int | None = None,
    encoder: Encoder | None = None,
) -> AddReport:
    """Put ``pdf`` into the library and a new unread entry for it under ``topic`` of a catalog.

    The order is chosen so a failure leaves nothing half done: read the PDF and check for duplicates
    (nothing written yet), copy it into the library under a temporary name, write the entry, then
    rename; a ``--move`` removes the original only after the entry is written. The re-ingest at the
    end makes the paper searchable at once.
    """
    from kb.extract import extract_pdf

    pdf = Path(pdf)
    if not pdf.is_file():
        raise BadPdf(f"no such file: {pdf}")
    if not topic:
        raise UsageError("give the topic to file the paper under, e.g. --topic \"GAN/StyleGAN\"")
    sha = sha256_file(str(pdf))
    extraction = extract_pdf(pdf)
    if extraction.status == "failed":
        raise BadPdf(f"{pdf.name}: cannot read this PDF ({extraction.reason}); nothing written")

    gen, _refreshed = _refresh_if_stale(index_dir, encoder)
    try:
        from kb.ingest import options_from_index

        options = options_from_index(index_dir)
        warnings: list[str] = []
        meta = extraction.meta
        title = " ".join((title or meta.title or meta.first_page_title or "").split())
        if not title:
            title = humanize_filename(str(pdf))
            warnings.append(f"no title found in the PDF; used its file name {title!r} (set one with --title)")
        if extraction.status != "ok":
            warnings.append(f"{pdf.name}: {extraction.reason}; it is added but its text cannot be searched")
        existing = _same_file(gen, sha)
        if existing is not None and existing[1] is not None and existing[1].catalog is not None:
            raise DuplicatePaper(f"{pdf.name} is already in the library: {_where(existing[1])}")
        _check_title(gen, title, existing[1] if existing else None)
        cat = _choose_catalog(gen, options, catalog)
        cat_digest = {c.path: c.sha256 for c in gen.catalogs()}[str(cat)]
        if existing is not None:  # the same PDF, already in a library folder but in no list: link it
            destination, action = Path(existing[0]), "kept"
            if os.path.realpath(existing[0]) != os.path.realpath(pdf):
                warnings.append(f"the same PDF is already in the library at {existing[0]}; the entry"
                                f" links that copy and {pdf} is left as it is")
        elif _inside(pdf, options.folders):  # already in a library folder, not ingested yet: link it there
            destination, action = pdf.absolute(), "kept"
        else:
            destination = _destination(gen, options, cat, pdf)
            action = "moved" if move else "copied"
    finally:
        gen.close()

    # the folder resolved like the catalog's path is, the file not (a symlinked PDF keeps its name)
    rel = os.path.relpath(destination.parent.resolve() / destination.name, cat.parent).replace(os.sep, "/")
    link = rel if rel.startswith("../") else "./" + rel
    entry = mdedit.format_entry(title, link, venue=venue, year=year or meta.year, alias=alias)
    if dry_run:
        edit = mdedit.add_entry(cat, topic, entry, expected_digest=cat_digest, dry_run=True)
        return AddReport(title, cat, topic, pdf, destination, action, entry, edit, warnings=warnings)

    tmp = _stage_copy(pdf, destination) if action != "kept" else None
    try:
        edit = mdedit.add_entry(cat, topic, entry, expected_digest=cat_digest)
        if not edit.changed:
            where = " / ".join(topic)
            raise DuplicatePaper(f"{cat.name} already has this entry under {where}; nothing written")
        if tmp is not None:
            os.replace(tmp, destination)
            tmp = None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    if move and action == "moved":
        with contextlib.suppress(FileNotFoundError):
            pdf.unlink()
    report = AddReport(title, cat, topic, pdf, destination, action, entry, edit, warnings=warnings)
    _reingest(index_dir, encoder)
    _find_new_paper(index_dir, report)
    return report


def _same_file(gen: store.Generation, sha: str) -> tuple[str, Paper | None] | None:
    """(path, paper) of an indexed PDF with these bytes, if any."""
    for f in gen.files():
        if f.sha256 == sha:
            return f.path, gen.paper(f.paper_id) if f.paper_id else None
    return None


def _rel(path: str | Path) -> str:
    return rel_path(str(path))


def _where(paper: Paper) -> str:
    place = f" at {_rel(paper.catalog.file)}:{paper.catalog.line}" if paper.catalog else ""
    return f"{paper.id} ({paper.title}){place}"


def _check_title(gen: store.Generation, title: str, itself: Paper | None) -> None:
    """Refuse a title the library has; say where the PDF should go when that entry lacks its file."""
    key = title_key(title)
    if not key:
        return
    for paper in gen.papers():
        if itself is not None and paper.id == itself.id:
            continue
        if key not in {title_key(t) for t in (paper.title, paper.pdf_title) if t}:
            continue
        hint = ""
        if paper.catalog is not None and not paper.files:
            pdf_links = [lk.url for lk in paper.links if lk.label.upper() == "PDF" and lk.url.strip()]
            if pdf_links:
                hint = f"; its [[PDF]] link points to {pdf_links[0]}, which is missing: copy the file there"
        raise DuplicatePaper(f"a paper with this title is already in the library: {_where(paper)}{hint}")


def _catalog_order(options, catalogs: list[Path]) -> list[Path]:  # type: ignore[no-untyped-def]
    """Catalogs in the order the user named things: ``--catalog`` order, else by ingested folder."""
    if options.catalogs:
        named = [Path(c).resolve() for c in options.catalogs]
        return [c for c in named if c in catalogs] + [c for c in catalogs if c not in named]
    folders = [Path(f).resolve() for f in options.folders]

    def rank(path: Path) -> tuple[int, str]:
        hits = [i for i, f in enumerate(folders) if path == f or path.is_relative_to(f)]
        return (hits[0] if hits else len(folders), str(path))

    return sorted(catalogs, key=rank)


def _choose_catalog(gen: store.Generation, options, catalog: Path | None) -> Path:  # type: ignore[no-untyped-def]
    known = [Path(c.path) for c in gen.catalogs()]
    if not known:
        raise OrganizeError("the index has no reading list to add to: ingest a folder with a README.md list")
    if catalog is None:
        return _catalog_order(options, known)[0]
    want = Path(catalog).resolve()
    if want in known:
        return want
    names = ", ".join(rel_path(str(k)) for k in _catalog_order(options, known))
    raise OrganizeError(f"{catalog} is not a reading list of this index; choose one of: {names}")


def _destination(gen: store.Generation, options, cat: Path, pdf: Path) -> Path:  # type: ignore[no-untyped-def]
    """Where the PDF goes: where this catalog's PDFs already are, else ``paper/`` beside it, else beside it.

    The folder must be one kb ingests, or the new file would not be found by the re-ingest.
    """
    folders = [Path(f).absolute() for f in options.folders if Path(f).is_dir()]
    used = Counter(str(Path(f).parent) for p in gen.papers()
                   if p.catalog and Path(p.catalog.file) == cat for f in p.files)
    candidates = [Path(d) for d, _n in used.most_common()]
    candidates += [cat.parent / "paper", cat.parent] + folders
    folder = next((d for d in candidates if d.is_dir() and _inside(d, folders)), None)
    if folder is None:
        raise OrganizeError(f"no library folder to copy {pdf.name} into: ingest the folder of {cat.name}")
    return _free_name(folder, _safe_name(pdf.name))


def _inside(path: Path, folders: list[Path]) -> bool:
    """``path`` is one of the ingested folders or under one (as written, or with links resolved)."""
    path = Path(path).absolute()
    real = path.resolve()
    for folder in (Path(f).absolute() for f in folders):
        if folder.is_dir() and (path.is_relative_to(folder) or real.is_relative_to(folder.resolve())):
            return True
    return False


def _safe_name(name: str) -> str:
    """A file name that a Markdown link can hold as written: no brackets or parentheses."""
    stem = name[:-4] if name.lower().endswith(".pdf") else name
    stem = re.sub(r"[()\[\]]+", "_", stem).strip() or "paper"
    return stem + ".pdf"


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    n = 2
    while target.exists() or target.is_symlink():
        target = folder / f"{name[:-4]}-{n}.pdf"
        n += 1
    return target


def _stage_copy(pdf: Path, destination: Path) -> str:
    """Copy ``pdf`` to a hidden temp file beside ``destination`` (renamed into place once the entry is in)."""
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".kb-tmp")
    os.close(fd)
    try:
        shutil.copyfile(pdf, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # an ordinary new file (mkstemp makes it private)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _find_new_paper(index_dir: Path, report: AddReport) -> None:
    """Fill in the new paper's id and line, and warn when the PDF and the entry did not link."""
    gen = store.open_generation(index_dir)
    try:
        target = os.path.realpath(report.destination)
        paper = next((p for p in gen.papers() if any(os.path.realpath(f) == target for f in p.files)), None)
    finally:
        gen.close()
    if paper is None:
        report.warnings.append(f"the index does not show {report.destination.name}; run `kb status`")
        return
    report.paper_id = paper.id
    if paper.catalog is not None and Path(paper.catalog.file) == report.catalog:
        report.line = paper.catalog.line
    else:
        report.warnings.append(f"kb did not link {report.destination.name} to the new entry; run `kb status`")


# ----------------------------------------------------------------------------------------------- export


@dataclass
class Export:
    """Citations of some papers in one format: the text to write and how many papers it holds."""

    format: str
    text: str
    count: int


def export(gen: store.Generation, fmt: str, filters: Filters | None = None) -> Export:
    """The papers ``filters`` accepts, in reading-list order, rendered in ``fmt``."""
    from kb.export import FORMATS, export_papers
    from kb.listing import sort_papers

    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    papers = sort_papers([p for p in gen.papers() if filters is None or filters.match(p)], "catalog")
    return Export(fmt, export_papers(papers, fmt), len(papers))
