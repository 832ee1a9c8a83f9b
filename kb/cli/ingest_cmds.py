"""`kb ingest`, `kb status`, `kb list`, `kb topics`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from kb.cli.common import (
    HasPdfOpt,
    IndexOpt,
    JsonOpt,
    ReadOpt,
    TopicOpt,
    UsageProblem,
    VenueOpt,
    YearOpt,
    app,
    err,
    index_dir,
    out,
    run_command,
)


def _progress(total_hint: int = 0):  # type: ignore[no-untyped-def]
    """A rich progress bar on a terminal, one plain line per file when stderr is piped."""
    from kb.ingest import FileOutcome, Progress

    if not err.is_terminal:
        state = {"n": 0, "total": 0}

        def start(total: int) -> None:
            state["total"] = total

        def advance(o: FileOutcome) -> None:
            state["n"] += 1
            if o.change != "unchanged" or o.status != "ok":
                extra = f" ({o.reason})" if o.reason else ""
                err.print(
                    f"[{state['n']}/{state['total']}] {o.change} {o.status} {o.pages}p {o.path}{extra}",
                    markup=False,
                )

        return Progress(
            start=start,
            advance=advance,
            stage=lambda s: err.print(f"kb: {s}", markup=False),
            message=lambda s: err.print(f"kb: {s}", markup=False),
        ), None

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import (
        Progress as Bar,
    )

    bar = Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task("files", total=None, rate="")
    pages = {"n": 0}
    import time

    t0 = time.perf_counter()

    def advance(o: FileOutcome) -> None:
        pages["n"] += o.pages
        rate = pages["n"] / max(1e-6, time.perf_counter() - t0)
        bar.update(task, advance=1, rate=f"{rate:.0f} pages/s", description=Path(o.path).name[:40])

    return Progress(
        start=lambda total: bar.update(task, total=total),
        advance=advance,
        stage=lambda s: bar.update(task, description=s),
        message=lambda s: bar.console.print(f"kb: {s}", markup=False),
    ), bar


@app.command()
@run_command
def ingest(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Folders (or PDF files) of your library [default: those of the last ingest].",
            show_default=False,
        ),
    ] = None,
    index: IndexOpt = None,
    catalog: Annotated[
        list[Path] | None, typer.Option("--catalog", help="A reading-list Markdown file (repeatable).")
    ] = None,
    extractor: Annotated[str, typer.Option(help="PDF text extractor: pdfium (fast) or pypdf.")] = "",
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Ignore caches: extract and embed everything.")
    ] = False,
    no_embed: Annotated[bool, typer.Option("--no-embed", help="Keyword index only (no vectors).")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another running ingest.")] = 600.0,
) -> None:
    """Read PDFs and reading lists into the index (incremental: unchanged files are skipped)."""
    from kb import extract, store
    from kb.ingest import IngestOptions, options_from_index
    from kb.ingest import ingest as run_ingest

    if not folders:
        try:
            again = options_from_index(index_dir(index))
        except store.NoIndex:
            raise UsageProblem("name the folder(s) of your library, e.g. `kb ingest paper/`") from None
        folders, catalog = again.folders, catalog or again.catalogs
        extractor = extractor or again.extractor
    options = IngestOptions(
        folders=list(folders),
        index_dir=index_dir(index),
        catalogs=list(catalog) if catalog else None,
        extractor=extractor or extract.DEFAULT_EXTRACTOR,
        rebuild=rebuild,
        wait_lock_s=wait,
        embed=not no_embed,
    )
    for f in options.folders:
        if not f.exists():
            raise UsageProblem(f"folder not found: {f}")
        if f.is_file() and f.suffix.lower() != ".pdf":
            raise UsageProblem(f"{f} is neither a folder nor a PDF (a reading list? use --catalog {f})")
    progress, bar = _progress()
    if bar is not None:
        with bar:
            report = run_ingest(options, progress)
    else:
        report = run_ingest(options, progress)
    _print_report(report)
    raise typer.Exit(1 if report.failed else 0)


def _print_report(report) -> None:  # type: ignore[no-untyped-def]
    from kb.library import rel_path

    for path, reason in report.failed:
        err.print(f"failed: {rel_path(path)}: {reason}", markup=False)
    for path, status, reason in report.flagged:
        err.print(f"{status}: {rel_path(path)}: {reason}", markup=False)
    for pdf, title, score in report.unsure_links:
        err.print(f"unsure link: {rel_path(pdf)} -> {title!r} (score {score:.2f})", markup=False)
    for w in report.warnings:
        err.print(f"warning: {w}", markup=False)
    if not report.changed:
        out.print(
            f"index up to date: {report.papers} papers, {report.unchanged} files unchanged "
            f"({report.seconds:.2f} s)",
            markup=False,
        )
        return
    out.print(
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.moved} moved, {report.removed} removed, {len(report.failed)} failed; "
        f"{report.papers} papers, {report.pages} pages, {report.passages} passages in {report.seconds:.1f} s",
        markup=False,
    )


def _open(index: Path | None):  # type: ignore[no-untyped-def]
    from kb import store
    from kb.index import SCHEMA_VERSION

    return store.Generation(
        index_dir(index),
        expected={"schema_version": SCHEMA_VERSION, "manifest_version": store.MANIFEST_VERSION},
    )


@app.command()
@run_command
def status(index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Counts, failed files with reasons, entries whose PDF is missing, PDFs in no catalog."""
    from kb.library import rel_path

    gen = _open(index)
    papers = gen.papers()
    files = gen.files()
    by_status: dict[str, int] = {}
    for p in papers:
        by_status[p.status] = by_status.get(p.status, 0) + 1
    missing = [
        p
        for p in papers
        if p.catalog and not p.files and any(lk.label.upper() == "PDF" and lk.url.strip() for lk in p.links)
    ]
    uncatalogued = [p for p in papers if p.catalog is None]
    problems = [f for f in files if f["status"] != "ok"]
    unsure = [f for f in files if f["unsure"]]
    passages = gen.db.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
    data = {
        "index": str(gen.path),
        "papers": len(papers),
        "files": len(files),
        "pages": sum(f["pages"] or 0 for f in files),
        "passages": passages,
        "catalogs": [rel_path(c["path"]) for c in gen.catalogs()],
        "by_status": by_status,
        "problems": [
            {"file": rel_path(f["path"]), "status": f["status"], "reason": f["reason"]} for f in problems
        ],
        "missing_pdf": [
            {"id": p.id, "title": p.title, "pdf": next(lk.url for lk in p.links if lk.label.upper() == "PDF")}
            for p in missing
        ],
        "not_in_catalog": [{"id": p.id, "files": [rel_path(f) for f in p.files]} for p in uncatalogued],
        "unsure_links": [
            {"file": rel_path(f["path"]), "paper": f["paper_id"], "score": f["link_score"]} for f in unsure
        ],
        "settings": gen.settings,
    }
    if json_out:
        out.print_json(json.dumps(data, ensure_ascii=False))
        return
    out.print(
        f"index {rel_path(str(gen.path))}: {data['papers']} papers, {data['files']} PDFs, "
        f"{data['pages']} pages, {passages} passages",
        markup=False,
    )
    out.print(
        "papers by status: " + ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())), markup=False
    )
    out.print("catalogs: " + (", ".join(data["catalogs"]) or "none"), markup=False)
    sections = [
        ("files with problems", data["problems"], lambda f: f"{f['status']:8} {f['file']}: {f['reason']}"),
        (
            "catalog entries whose PDF is missing",
            data["missing_pdf"],
            lambda m: f"{m['title']}  ->  {m['pdf']}",
        ),
        ("PDFs in no catalog", data["not_in_catalog"], lambda u: ", ".join(u["files"])),
        (
            "links kb is unsure about",
            data["unsure_links"],
            lambda u: f"{u['file']} -> {u['paper']} ({u['score']:.2f})",
        ),
    ]
    for heading, items, line in sections:
        if items:
            out.print(f"\n{heading} ({len(items)}):", markup=False)
            for item in items:
                out.print(f"  {line(item)}", markup=False)


@app.command("list")
@run_command
def list_papers(
    index: IndexOpt = None,
    json_out: JsonOpt = False,
    topic: TopicOpt = None,
    read: ReadOpt = None,
    year: YearOpt = None,
    venue: VenueOpt = None,
    has_pdf: HasPdfOpt = None,
    sort: Annotated[str, typer.Option(help="catalog, year, title or added.")] = "catalog",
) -> None:
    """List papers (a table on a terminal, --json for scripts)."""
    from kb.library import Filters, LibraryError, paper_json, sort_papers

    try:
        filters = Filters(topic=topic, read=read, year=year, venue=venue, has_pdf=has_pdf)
        papers = sort_papers([p for p in _open(index).papers() if filters.match(p)], sort)
    except LibraryError as exc:
        raise UsageProblem(str(exc)) from None
    if json_out:
        sys.stdout.write(json.dumps([paper_json(p) for p in papers], ensure_ascii=False, indent=2) + "\n")
        return
    if not papers:
        err.print("no papers match", markup=False)
        raise typer.Exit(1)
    from rich.table import Table
    from rich.text import Text

    status_word = {"ok": "pdf", "no-text": "scan", "garbled": "garbled", "failed": "failed"}
    rows = [
        (
            {True: "[x]", False: "[ ]"}.get(p.read, "   "),  # type: ignore[arg-type]
            str(p.year or ""),
            (p.venue or "")[:16],
            p.title,
            status_word.get(p.status, ""),
            p.id,
        )
        for p in papers
    ]
    if not out.is_terminal:  # piped: one plain, tab-separated line per paper, nothing cut
        for row in rows:
            sys.stdout.write("\t".join(row) + "\n")
    else:
        table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
        for col in ("read", "year", "venue", "title", "pdf", "id"):
            table.add_column(
                col,
                overflow="fold" if col == "title" else "ellipsis",
                no_wrap=col != "title",
                style="dim" if col == "id" else None,
                max_width=24 if col == "id" else None,
            )
        for row in rows:
            table.add_row(*(Text(c) for c in row))
        out.print(table)
    err.print(f"{len(papers)} papers", markup=False)


@app.command()
@run_command
def topics(index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """The topic tree with paper counts and read progress per topic."""
    from kb.library import TopicNode, topic_tree

    tree = topic_tree(_open(index).papers())

    def as_json(node: TopicNode) -> dict:
        return {
            "name": node.name,
            "papers": node.papers,
            "read": node.read,
            "children": [as_json(c) for c in node.children.values()],
        }

    if json_out:
        out.print_json(json.dumps([as_json(c) for c in tree.children.values()], ensure_ascii=False))
        return
    width = 0

    def measure(node: TopicNode, depth: int) -> None:
        nonlocal width
        for c in node.children.values():
            width = max(width, depth * 2 + len(c.name))
            measure(c, depth + 1)

    measure(tree, 0)

    def show(node: TopicNode, depth: int) -> None:
        for c in node.children.values():
            label = "  " * depth + c.name
            out.print(f"{label:<{width}}  {c.read:>3}/{c.papers:<3} read", markup=False)
            show(c, depth + 1)

    show(tree, 0)
