"""`kb fetch`: download the PDFs the reading list links to but the library lacks (the one network command)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kb.cli.common import IndexOpt, JsonOpt, TopicOpt, app, err, library, out, run_command
from kb.errors import UsageError
from kb.fsutil import rel_path

if TYPE_CHECKING:
    from kb.fetch import FetchOutcome, FetchReport

_SHOWN = {"fetched": "fetched", "present": "present", "no-link": "no link", "refused": "refused",
          "failed": "failed"}


@app.command()
@run_command
def fetch(
    papers: Annotated[
        list[str] | None,
        typer.Argument(help="Papers to fetch (alias, title, id) [default: every entry without a PDF].",
                       show_default=False),
    ] = None,
    index: IndexOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be fetched and why; no network.")]
    = False,
    topic: TopicOpt = None,
    limit: Annotated[int | None, typer.Option(help="Download at most this many PDFs.")] = None,
    mirror: Annotated[
        list[str] | None,
        typer.Option("--mirror", help="HOST=URL: send requests for HOST to URL instead (repeatable).",
                     show_default=False),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Download the PDFs that entries link to (arXiv, CVF, direct PDF links, open-access publisher
    pages), link them into the reading list and ingest them."""
    from kb.fetch import parse_mirrors

    try:
        mirrors = parse_mirrors(mirror or [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    def shown(outcome: FetchOutcome) -> None:
        if not json_out:
            _print_outcome(outcome)

    report = library(index).fetch(
        papers or (), topic=topic, limit=limit, dry_run=dry_run, mirrors=mirrors, on_outcome=shown
    )
    if json_out:
        sys.stdout.write(json.dumps(report.to_json(Path.cwd()), ensure_ascii=False, indent=2) + "\n")
        raise typer.Exit(report.exit_code)
    if dry_run:
        for plan in report.plans:
            out.print(plan.describe(), markup=False, soft_wrap=True)
        todo = sum(p.action == "fetch" for p in report.plans)
        err.print(f"kb: dry run: {todo} of {len(report.plans)} papers have a link to fetch; nothing "
                  "downloaded", markup=False)
        return
    _print_summary(report)
    raise typer.Exit(report.exit_code)


def _print_outcome(o: FetchOutcome) -> None:
    if o.status == "fetched" and o.path is not None:
        line = f"fetched  {o.paper_id}: {o.url} ({o.size / 1e6:.1f} MB) -> {rel_path(str(o.path))}"
    else:
        line = f"{_SHOWN.get(o.status, o.status):8} {o.paper_id}: {o.reason}"
    (out if o.status == "fetched" else err).print(line, markup=False, soft_wrap=True)


def _print_summary(report: FetchReport) -> None:
    for pid, note in report.link_notes.items():
        err.print(f"kb: {pid}: {note}", markup=False)
    no_link = sum(p.action == "no-link" for p in report.plans)
    present = sum(p.action == "present" for p in report.plans)
    c = report.counts
    out.print(
        f"{c['fetched']} fetched, {present + c['present']} already present, {no_link + c['no-link']} with "
        f"no usable link, {c['refused']} refused, {c['failed']} failed",
        markup=False,
    )
    hosts = ", ".join(f"{h} ({n})" for h, n in report.hosts.items())
    err.print(f"kb: hosts contacted: {hosts or 'none'}", markup=False)
    if report.ingest is not None:
        ing = report.ingest
        err.print(f"kb: ingested: {ing.papers} papers, {ing.passages} passages", markup=False)
