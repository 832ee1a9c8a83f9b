"""`kb show`, `kb mark`, `kb add`, `kb export`: thin commands over ``kb.organize``.

The reading list is edited in place (``kb mark``, ``kb add``) and the index re-ingested before the
command returns, so the next `kb list` / `kb search` already sees the change. ``--dry-run`` prints
the unified diff of the Markdown file instead of writing it.
"""

from __future__ import annotations

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
from kb.errors import UsageError
from kb.fsutil import atomic_write, rel_path

if TYPE_CHECKING:
    from kb.organize import PaperDetails

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the diff of the list; write nothing.")]


# ------------------------------------------------------------------------------------------------- show


@app.command()
@run_command
def show(
    paper: Annotated[list[str], typer.Argument(help="Alias, title (or part of one), id or PDF file name.",
                                               show_default=False)],
    index: IndexOpt = None,
    json_out: JsonOpt = False,
    related: Annotated[int, typer.Option("--related", help="How many related papers to show.")] = 3,
) -> None:
    """Everything kb knows about one paper, and the papers most related to it."""
    details = library(index).paper(" ".join(paper), related=related)
    if json_out:
        sys.stdout.write(json.dumps(details.to_json(Path.cwd()), ensure_ascii=False, indent=2) + "\n")
        return
    _print_details(details)


def _print_details(d: PaperDetails) -> None:
    p = d.paper
    out.print(p.title, markup=False, style="bold")
    read = {True: "yes", False: "no"}.get(p.read, "not tracked (no checkbox)")  # type: ignore[arg-type]
    files = [f"{rel_path(f.path)} ({f.pages} pages{', ' + f.status if f.status != 'ok' else ''})"
             for f in d.files]
    rows: list[tuple[str, str | list[str]]] = [
        ("id", p.id),
        ("alias", p.alias or ""),
        ("topics", "; ".join(" / ".join(t) for t in p.topics)),
        ("venue", ", ".join(x for x in (p.venue, p.org) if x)),
        ("year", str(p.year or "")),
        ("authors", p.authors or ""),
        ("read", read),
        ("links", [f"[{lk.label}] {lk.url or '(empty)'}" for lk in p.links]),
        ("files", files or ["none"]),
        ("note", p.note or ""),
        ("catalog", f"{rel_path(p.catalog.file)}:{p.catalog.line}" if p.catalog
         else "none (a PDF in no reading list)"),
        ("status", p.status + (f" ({p.reason})" if p.reason else "")),
        ("doi", p.doi or ""),
        ("arxiv", p.arxiv or ""),
    ]
    for label, value in rows:
        for i, line in enumerate([value] if isinstance(value, str) else value):
            if line:
                out.print(f"{label + ':' if i == 0 else '':9} {line}", markup=False)
    if d.summary:
        page = f", page {d.summary_page}" if d.summary_page else ""
        out.print(f"\n{d.summary_kind}{page}:", markup=False, style="bold")
        out.print(d.summary, markup=False)
    if d.related:
        out.print("\nrelated:", markup=False, style="bold")
        for r in d.related:
            out.print(f"  {r.paper.title} ({r.paper.id})", markup=False)
    elif d.related_note:
        err.print(f"kb: no related papers: {d.related_note}", markup=False)
    if d.others:
        names = ", ".join(o.id for o in d.others[:5])
        err.print(f"kb: {len(d.others)} other paper(s) also match ({names}); name one by id to see it",
                  markup=False)


# ------------------------------------------------------------------------------------------------- mark


@app.command()
@run_command
def mark(
    state: Annotated[str, typer.Argument(help="read or unread.", show_default=False)],
    papers: Annotated[list[str], typer.Argument(help="Papers: alias, title, id or PDF name (quote titles).",
                                                show_default=False)],
    index: IndexOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Tick (read) or untick (unread) the checkbox of papers in their reading list."""
    if state.lower() not in ("read", "unread"):
        raise UsageError(f"say `kb mark read PAPER...` or `kb mark unread PAPER...`, not {state!r}")
    wanted = state.lower()
    report = library(index).mark(list(papers), read=wanted == "read", dry_run=dry_run)
    if report.refreshed:
        err.print("kb: a reading list changed since the last ingest; re-read it first", markup=False)
    for o in report.outcomes:
        if o.error:
            err.print(f"kb: {o.error}", markup=False)
            continue
        if o.note:
            err.print(f"kb: {o.note}", markup=False)
            continue
        how = f" (matched by {o.method}: check it is the paper you meant)" if o.method in (
            "fuzzy-title", "mention") else ""
        where = f"{rel_path(str(o.result.path))}:{o.paper.catalog.line}"
        if not o.result.changed:
            verb = f"already {wanted}"
        else:
            verb = f"would mark {wanted}" if dry_run else f"marked {wanted}"
        out.print(f"{verb}: {o.paper.id} ({o.paper.title}) at {where}{how}", markup=False)
        if dry_run and o.result.diff:
            out.print(o.result.diff, markup=False, end="")
    if dry_run:
        err.print("kb: dry run: nothing written", markup=False)
    if report.failed:
        raise typer.Exit(1)


# -------------------------------------------------------------------------------------------------- add


@app.command()
@run_command
def add(
    pdf: Annotated[Path, typer.Argument(help="The PDF to add.", show_default=False)],
    topic: Annotated[str, typer.Option(
        "--topic", help='Where to file it: "GAN/StyleGAN and its derivative" (headings and sub-topics, '
        "created when missing).", show_default=False)],
    index: IndexOpt = None,
    catalog: Annotated[Path | None, typer.Option("--catalog", help="Reading list to add to [default: the "
                                                  "index's first]", show_default=False)] = None,
    move: Annotated[bool, typer.Option("--move", help="Move the PDF in (default: copy it).")] = False,
    title: Annotated[str | None, typer.Option(help="Title to write instead of the PDF's own.")] = None,
    alias: Annotated[str | None, typer.Option(help="Short name written as (Alias) before the title.")] = None,
    venue: Annotated[str | None, typer.Option(help="Venue to write, e.g. CVPR.")] = None,
    year: Annotated[int | None, typer.Option(help="Year to write [default: read from the PDF].")] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Copy a PDF into the library and add an unread entry for it to the reading list."""
    report = library(index).add(pdf, topic, catalog=catalog, move=move, dry_run=dry_run,
                                title=title, alias=alias, venue=venue, year=year)
    for w in report.warnings:
        err.print(f"kb: {w}", markup=False)
    dest = rel_path(str(report.destination))
    if dry_run:
        verb = {"copied": "copy", "moved": "move", "kept": "keep"}[report.action]
        out.print(f"would {verb} {rel_path(str(report.source))} -> {dest}", markup=False)
        out.print(report.edit.diff, markup=False, end="")
        return
    where = f"{rel_path(str(report.catalog))}:{report.line}" if report.line else rel_path(str(report.catalog))
    out.print(f"added {report.paper_id or '?'}: {report.title}", markup=False)
    out.print(f"  entry under {' / '.join(report.topic)} at {where}", markup=False)
    out.print(f"  PDF {report.action} to {dest}" if report.action != "kept" else f"  PDF {dest}",
              markup=False)


# ----------------------------------------------------------------------------------------------- export


@app.command()
@run_command
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="bibtex, csl-json, csv or markdown.")] = "bibtex",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file [default: stdout]",
                                                show_default=False)] = None,
    index: IndexOpt = None,
    topic: TopicOpt = None,
    read: ReadOpt = None,
    year: YearOpt = None,
    venue: VenueOpt = None,
    has_pdf: HasPdfOpt = None,
) -> None:
    """Citations of the (filtered) library as BibTeX, CSL-JSON, CSV or a Markdown list."""
    result = library(index).export(fmt, topic=topic, read=read, year=year, venue=venue, has_pdf=has_pdf)
    if result.count == 0:
        err.print("no papers match", markup=False)
        raise typer.Exit(1)
    if output is None:
        sys.stdout.write(result.text)
        return
    # A half-written .bib breaks a LaTeX build: written beside it, then renamed into place.
    atomic_write(output, result.text.encode("utf-8"))
    err.print(f"wrote {result.count} papers to {output}", markup=False)
