"""`kb search`: a thin command over ``kb.search.search``.

File locations are printed as ``path:page`` (relative to the current directory when shorter). On a
terminal the location is also an OSC-8 hyperlink to ``file:///abs/path.pdf#page=N``, which a
terminal click opens at that page in a browser or PDF viewer; piped output is plain text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kb.cli.common import IndexOpt, JsonOpt, app, err, library, out, run_command
from kb.fsutil import rel_path

if TYPE_CHECKING:
    from kb.search import SearchResults


@app.command()
@run_command
def search(
    query: Annotated[
        list[str],
        typer.Argument(
            help='Words, "phrases", AND/OR/NOT, +/-, title: topic: venue: '
            "year:2019 year:[2018 TO 2020] read:yes.",
            show_default=False,
        ),
    ],
    index: IndexOpt = None,
    json_out: JsonOpt = False,
    mode: Annotated[str, typer.Option(help="hybrid, keyword or semantic.")] = "hybrid",
    limit: Annotated[int, typer.Option(help="How many papers to show.")] = 10,
    topic: Annotated[str | None, typer.Option(help="Topic at any level (case-insensitive prefix).")] = None,
    year: Annotated[str | None, typer.Option(help="2019, 2018-2020, 2018-, -2020.")] = None,
    venue: Annotated[str | None, typer.Option(help="Venue contains this text.")] = None,
    read: Annotated[bool | None, typer.Option("--read/--unread", help="Only read / unread papers.")] = None,
) -> None:
    """Find papers by words, by meaning, or both; show the pages and passages that match."""
    resp = library(index).search(
        " ".join(query), mode=mode, limit=limit, topic=topic, read=read, year=year, venue=venue
    )
    for w in resp.warnings:
        err.print(f"kb: {w}", markup=False)
    if json_out:
        # The JSON object is printed even when empty; the exit code says "nothing found" as in text mode.
        sys.stdout.write(json.dumps(resp.to_json(Path.cwd()), ensure_ascii=False, indent=2) + "\n")
        raise typer.Exit(0 if resp.results else 1)
    if not resp.results:
        err.print("no papers match", markup=False)
        raise typer.Exit(1)
    if resp.fuzzy_terms:
        err.print(
            f"kb: no exact match for {', '.join(resp.fuzzy_terms)}: showing similar spellings (~)",
            markup=False,
        )
    _print(resp)


def _location(file: str | None, page: int | None) -> tuple[str, str | None]:
    if not file:
        return "", None
    shown = rel_path(file) + (f":{page}" if page else "")
    url = Path(file).resolve().as_uri() + (f"#page={page}" if page else "")
    return shown, url


def _print(resp: SearchResults) -> None:
    from rich.text import Text

    for n, r in enumerate(resp.results, 1):
        p = r.paper
        head = Text(f"{n:>2}. ")
        head.append(p.title, style="bold")
        extra = [
            x
            for x in (
                f"({p.alias})" if p.alias and p.alias.lower() not in p.title.lower() else "",
                p.venue or "",
                str(p.year or ""),
            )
            if x
        ]
        if extra:
            head.append("  " + " ".join(extra), style="dim")
        if r.fuzzy:
            head.append("  ~fuzzy", style="yellow")
        out.print(head)
        meta = [f"id {p.id}", {True: "read", False: "unread"}.get(p.read, "")]  # type: ignore[arg-type]
        if p.topics:
            meta.append(" / ".join(p.topics[0]))
        if not p.files:
            meta.append("no PDF")
        out.print(Text("    " + " · ".join(x for x in meta if x), style="dim"))
        for h in r.hits:
            line = Text("    ")
            if h.field == "text":
                shown, url = _location(h.file, h.page)
                line.append(
                    shown or f"p.{h.page}", style=f"cyan link {url}" if url and out.is_terminal else "cyan"
                )
            else:
                line.append(f"[{h.field}]", style="cyan")
            line.append("  ")
            snip = Text(h.snippet)
            for s, e in h.highlights:
                snip.stylize("bold magenta", s, e)
            line.append_text(snip)
            out.print(line)
        if not any(h.field == "text" for h in r.hits) and p.files:
            shown, url = _location(p.files[0], None)
            out.print(Text("    " + shown, style="cyan"))
        out.print("")

