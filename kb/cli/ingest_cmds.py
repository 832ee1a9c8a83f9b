"""`kb ingest`, `kb status`, `kb list`, `kb topics`."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kb.cli.common import (
    HasPdfOpt,
    IndexOpt,
    JsonOpt,
    ReadOpt,
    TopicOpt,
    VenueOpt,
    YearOpt,
    app,
    err,
    library,
    out,
    run_command,
)
from kb.fsutil import rel_path

if TYPE_CHECKING:
    from kb.ingest import IngestReport


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
    lib = library(index)
    progress, bar = _progress()
    with bar if bar is not None else contextlib.nullcontext():
        report = lib.ingest(
            folders or None,
            catalogs=catalog or None,
            extractor=extractor or None,
            rebuild=rebuild,
            embed=False if no_embed else None,
            wait=wait,
            progress=progress,
        )
    _print_report(report)
    raise typer.Exit(1 if report.failed else 0)


def _print_report(report: IngestReport) -> None:
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


@app.command()
@run_command
def status(index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Counts, failed files with reasons, entries whose PDF is missing, PDFs in no catalog."""
    st = library(index).status()
    if json_out:
        out.print_json(json.dumps(st.to_json(Path.cwd()), ensure_ascii=False))
        return
    out.print(
        f"index {rel_path(st.index)}: {st.papers} papers, {st.files} PDFs, "
        f"{st.pages} pages, {st.passages} passages",
        markup=False,
    )
    out.print(
        "papers by status: " + ", ".join(f"{k} {v}" for k, v in sorted(st.by_status.items())), markup=False
    )
    out.print("catalogs: " + (", ".join(rel_path(c) for c in st.catalogs) or "none"), markup=False)
    sections: list[tuple[str, list[str]]] = [
        ("files with problems", [f"{f.status:8} {rel_path(f.file)}: {f.reason}" for f in st.problems]),
        ("catalog entries whose PDF is missing", [f"{m.paper.title}  ->  {m.pdf}" for m in st.missing_pdf]),
        ("PDFs in no catalog", [", ".join(rel_path(f) for f in p.files) for p in st.not_in_catalog]),
        (
            "links kb is unsure about",
            [f"{rel_path(u.file)} -> {u.paper_id} ({u.score or 0:.2f})" for u in st.unsure_links],
        ),
    ]
    for heading, lines in sections:
        if lines:
            out.print(f"\n{heading} ({len(lines)}):", markup=False)
            for line in lines:
                out.print(f"  {line}", markup=False)


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
    papers = library(index).papers(topic=topic, read=read, year=year, venue=venue, has_pdf=has_pdf, sort=sort)
    if json_out:
        cwd = Path.cwd()
        sys.stdout.write(json.dumps([p.to_json(cwd) for p in papers], ensure_ascii=False, indent=2) + "\n")
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
    from kb.listing import TopicNode

    tree = library(index).topics()
    if json_out:
        out.print_json(json.dumps([c.to_json() for c in tree.children.values()], ensure_ascii=False))
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
