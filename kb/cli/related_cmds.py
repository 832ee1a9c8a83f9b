"""`kb related`: the papers most like one the user names, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from kb.cli.common import IndexOpt, JsonOpt, app, err, library, out, run_command
from kb.fsutil import rel_path


@app.command()
@run_command
def related(
    query: Annotated[
        str, typer.Argument(help="A paper: alias, title or part of one, file, id, or a method name.")
    ],
    index: IndexOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many papers to show.")] = 10,
    topic: Annotated[
        str | None, typer.Option(help="Only papers under this topic (prefix of any level).")
    ] = None,
    year: Annotated[
        str | None, typer.Option(help="Only papers of these years: 2019, 2018-2020, 2018-.")
    ] = None,
    unread: Annotated[bool, typer.Option("--unread", help="Only papers not marked read.")] = False,
    text: Annotated[bool, typer.Option("--text", help="Treat QUERY as free text, not a paper name.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Papers most like QUERY, each with its score, shared topics and terms, and best matching passage."""
    result = library(index).related(query, text=text, limit=limit, topic=topic, year=year, unread=unread)
    res = result.resolution
    if res is not None:
        how = f" ({res.method})" if res.method not in ("alias", "id", "title") else ""
        err.print(f"related to: {res.paper.title} [{res.paper.id}]{how}", markup=False)
        if res.others:
            err.print(
                "also matched: " + "; ".join(f"{p.title} [{p.id}]" for p in res.others[:5]), markup=False
            )
    if json_out:
        out.print(json.dumps(result.to_json(Path.cwd()), ensure_ascii=False, indent=2), markup=False)
        raise typer.Exit(0 if result.results else 1)
    if not result.results:
        err.print("kb: no related papers (try without --topic/--year/--unread)", markup=False)
        raise typer.Exit(1)
    for n, r in enumerate(result.results, 1):
        p = r.paper
        year_s = f", {p.year}" if p.year else ""
        out.print(f"{n:>2}. {r.score:5.2f}  {p.title}{year_s}  [{p.alias or p.id}]", markup=False)
        why = r.why
        if why.shared_topics:
            out.print(f"      topics: {'; '.join(why.shared_topics)}", markup=False)
        if why.shared_terms:
            out.print(f"      terms:  {', '.join(why.shared_terms)}", markup=False)
        for h in why.passages:
            where = f"{rel_path(h.file)} p.{h.page}" if h.file else f"p.{h.page}"
            out.print(f"      {where}: {h.snippet}", markup=False)
        if not p.files:
            out.print("      (catalog entry, no PDF)", markup=False)
