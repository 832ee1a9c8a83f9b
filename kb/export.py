"""Citations out of papers: BibTeX, CSL-JSON, CSV and a Markdown reading list.

The user writes LaTeX and notes with these exports, so two things matter more than looks:

* every value must survive a BibTeX parser and LaTeX (balanced braces, no stray ``%``/``&``/``#``/``_``),
  while non-ASCII text (Chinese titles and notes) stays readable UTF-8 rather than ``\\'{e}`` soup;
* citation keys must be stable, so a ``\\cite{karras2020analyzing}`` written last month still resolves.

BibTeX is produced through ``bibtexparser`` v2 (its model and writer) so the file layout and enclosing
follow a maintained implementation; the LaTeX escaping of values is ours (:func:`latex_escape`), with an
exact inverse (:func:`latex_unescape`) so tests and callers can check a round trip.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import bibtexparser
from bibtexparser import model as bibmodel

from kb.models import Link, Paper

FORMATS = ("bibtex", "csl-json", "csv", "markdown")

CSV_HEADER = ["id", "title", "alias", "authors", "venue", "year", "read", "topics", "doi", "arxiv", "url",
              "files", "note"]

# Words skipped when a key takes "the first significant word" of a title, as Google Scholar does.
_STOPWORDS = frozenset({
    "a", "an", "the", "on", "of", "in", "for", "to", "and", "or", "with", "from", "by", "at", "via",
    "towards", "toward", "is", "are", "do", "does", "how", "what", "why", "when", "we", "our", "into", "as",
    "its", "it", "be", "not", "no", "your", "you",
})

# Venues that are journals (``@article``/``journal``); any other non-arXiv venue is a conference.
_JOURNAL_RE = re.compile(
    r"\b(transactions|journal|letters|magazine|review|ijcv|tpami|pami|tog|tip|tmm|tvcg|jmlr|"
    r"pattern recognition|nature|science|proceedings of the ieee|communications of the acm|cacm|"
    r"computing surveys|acm csur|psychological)\b",
    re.IGNORECASE,
)
_ARXIV_VENUE_RE = re.compile(r"^\s*(arxiv|corr)\b", re.IGNORECASE)

_DOI_RE = re.compile(r"(10\.\d{4,9}/[^\s?#&]+)")
_DOI_URL_RE = re.compile(
    r"(?:doi\.org/|/doi/(?:abs/|full/|pdf/|epdf/)?|link\.springer\.com/(?:content/pdf|article)/)"
    r"(10\.\d{4,9}/[^\s?#&]+)",
    re.IGNORECASE,
)
_ARXIV_URL_RE = re.compile(
    r"arxiv\.org/(?:abs|pdf)/([a-z\-]+(?:\.[A-Z]{2})?/\d{7}|\d{4}\.\d{4,5})(?:v\d+)?", re.IGNORECASE
)
# Links whose target is the paper itself (a "[[Corrigendum]]" or "[[Github]]" DOI/arXiv link is not).
_OWN_LINK_LABELS = frozenset({"paper", "pdf", "doi", "arxiv"})

# LaTeX specials in text fields. Braces and backslash become text commands (not ``\\{``) because BibTeX
# counts every brace, escaped or not, so ``\\{`` alone would leave the entry unbalanced.
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\textbraceleft{}",
    "}": r"\textbraceright{}",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "_": r"\_",
    "$": r"\$",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _LATEX_ESCAPES))
_LATEX_UNESCAPES = {v: k for k, v in _LATEX_ESCAPES.items()}
_LATEX_UNESCAPE_RE = re.compile("|".join(re.escape(v) for v in sorted(_LATEX_UNESCAPES, key=len)[::-1]))


@dataclass
class _Kind:
    """How a paper is cited: BibTeX entry type, the field holding its venue, and the CSL type."""

    bibtype: str
    venue_field: str | None
    csl_type: str
    container: str | None


def export_papers(papers: list[Paper], fmt: str) -> str:
    """Render ``papers`` in ``fmt`` (one of :data:`FORMATS`); the order of ``papers`` is kept."""
    renderers = {"bibtex": to_bibtex, "csl-json": to_csl_json, "csv": to_csv, "markdown": to_markdown}
    try:
        render = renderers[fmt]
    except KeyError:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    return render(papers)


# ---------------------------------------------------------------------------------------------- escaping


def latex_escape(text: str) -> str:
    """Make free text safe inside a braced BibTeX value and in LaTeX; non-ASCII is kept as UTF-8.

    Line breaks collapse to spaces: a blank line inside a value is a paragraph break to LaTeX.
    """
    text = " ".join(text.split())
    return _LATEX_ESCAPE_RE.sub(lambda m: _LATEX_ESCAPES[m.group()], text)


def latex_unescape(text: str) -> str:
    """Exact inverse of :func:`latex_escape` (for values it produced), used to check round trips."""
    return _LATEX_UNESCAPE_RE.sub(lambda m: _LATEX_UNESCAPES[m.group()], text)


def _verbatim_safe(value: str) -> str:
    """Keep a URL/DOI/path as written (biblatex reads these verbatim) unless it would break the entry.

    Only braces (always percent-encoded: BibTeX counts them), whitespace and backslashes are touched.
    """
    value = value.strip()
    return (value.replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D")
            .replace(" ", "%20").replace("\n", "").replace("\r", ""))


# ------------------------------------------------------------------------------------ identifiers & kind


def paper_doi(paper: Paper) -> str | None:
    """The paper's DOI: ``Paper.doi``, else one in a link to the paper itself (doi.org, ACM, Springer)."""
    if paper.doi:
        match = _DOI_RE.search(paper.doi)
        return _clean_doi(match.group(1)) if match else paper.doi.strip()
    for link in _own_links(paper.links):
        match = _DOI_URL_RE.search(link.url)
        if match:
            return _clean_doi(match.group(1))
    return None


def _clean_doi(doi: str) -> str:
    """Drop what a link adds after a DOI (``.pdf``, trailing punctuation)."""
    doi = re.sub(r"\.pdf$", "", doi, flags=re.IGNORECASE)
    return doi.rstrip(".,;)")


def paper_arxiv(paper: Paper) -> str | None:
    """The arXiv id (without version): ``Paper.arxiv``, else from an arxiv.org link to the paper."""
    if paper.arxiv:
        arxiv = re.sub(r"^arxiv:\s*", "", paper.arxiv.strip(), flags=re.IGNORECASE)
        return re.sub(r"v\d+$", "", arxiv) or None
    for link in _own_links(paper.links):
        match = _ARXIV_URL_RE.search(link.url)
        if match:
            return match.group(1)
    return None


def paper_url(paper: Paper) -> str | None:
    """The title link (label ``paper``) when it is a web address, else the first web link."""
    web = [link for link in paper.links if link.url.strip().lower().startswith(("http://", "https://"))]
    for link in web:
        if link.label.lower() == "paper":
            return link.url.strip()
    return web[0].url.strip() if web else None


def _own_links(links: Iterable[Link]) -> list[Link]:
    """Links that point at the paper itself, title link first."""
    own = [link for link in links if link.label.lower() in _OWN_LINK_LABELS]
    return sorted(own, key=lambda link: link.label.lower() != "paper")


def _kind(paper: Paper, arxiv: str | None) -> _Kind:
    """Decide entry type from the venue; arXiv-only papers cite as ``arXiv preprint`` articles."""
    venue = (paper.venue or "").strip()
    if (venue and _ARXIV_VENUE_RE.match(venue)) or (not venue and arxiv):
        container = f"arXiv preprint arXiv:{arxiv}" if arxiv else "arXiv preprint"
        return _Kind("article", "journal", "article", container)
    if not venue:
        return _Kind("misc", None, "article", None)
    if _JOURNAL_RE.search(venue):
        return _Kind("article", "journal", "article-journal", venue)
    return _Kind("inproceedings", "booktitle", "paper-conference", venue)


# ----------------------------------------------------------------------------------------------- authors


def split_authors(authors: str | None) -> list[str]:
    """Split a free-form author string ("A, B and C", "A & B", "by A and B", BibTeX "Last, First and ...")."""
    if not authors:
        return []
    text = re.sub(r"^\s*by\s+", "", authors.strip(), flags=re.IGNORECASE)
    text = re.sub(r",?\s*\bet\.?\s+al\.?\s*$", "", text, flags=re.IGNORECASE).strip(" .")
    parts = [p.strip() for p in re.split(r"\s+and\s+|\s*&\s*|\s*;\s*", text) if p.strip()]
    # "Last, First and Last, First" keeps its commas; "A, B, C" is a comma list.
    if len(parts) > 1 and all(p.count(",") == 1 for p in parts):
        return parts
    out: list[str] = []
    for part in parts:
        out.extend(p.strip() for p in part.split(",") if p.strip())
    return out


def name_parts(name: str) -> tuple[str, str]:
    """(family, given) of one author name, for CSL and for citation keys."""
    name = name.strip()
    if "," in name:
        family, given = (s.strip() for s in name.split(",", 1))
        return family, given
    tokens = name.split()
    if len(tokens) >= 2 and tokens[-1].rstrip(".").lower() in {"jr", "sr", "ii", "iii"}:
        tokens = tokens[:-1]
    if len(tokens) == 1:
        return tokens[0], ""
    return tokens[-1], " ".join(tokens[:-1])


# -------------------------------------------------------------------------------------------------- keys


def ascii_fold(text: str) -> str:
    """Lowercase ASCII letters/digits only ("Müller" -> "muller"); what BibTeX keys can safely hold."""
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z0-9]", "", decomposed.encode("ascii", "ignore").decode("ascii").lower())


def _significant_words(text: str | None) -> list[str]:
    words = [ascii_fold(w) for w in re.split(r"[\s\-_/:.,;!?()\[\]{}'\"]+", text or "")]
    return [w for w in words if w and w not in _STOPWORDS]


def base_key(paper: Paper) -> str:
    """``karras2020analyzing``: first author's surname + year (or ``nd``) + first significant title word.

    Without authors the alias (or the title) names the key; when the title itself named it, the next
    title word follows so the key does not read ``analyzing2020analyzing``.
    """
    title_words = _significant_words(paper.title)
    authors = split_authors(paper.authors)
    name = ascii_fold(name_parts(authors[0])[0]) if authors else ""
    word_index = 0
    if not name:
        alias_words = _significant_words(paper.alias)
        if alias_words:
            name = alias_words[0]
        elif title_words:
            name, word_index = title_words[0], 1
    name = name or "anon"
    year = str(paper.year) if paper.year else "nd"
    word = title_words[word_index] if len(title_words) > word_index else ""
    return f"{name}{year}{word}"


def citation_keys(papers: list[Paper]) -> list[str]:
    """Unique keys, parallel to ``papers``; collisions get ``a``, ``b``, ... after the first.

    Who keeps the bare key is decided by ``Paper.id`` (stable across runs), not by input order, so
    reordering or filtering the list does not reshuffle keys among colliding papers.
    """
    bases = [base_key(p) for p in papers]
    order = sorted(range(len(papers)), key=lambda i: (bases[i], papers[i].id, papers[i].title, i))
    taken: set[str] = set(bases)
    keys: list[str | None] = [None] * len(papers)
    seen: dict[str, int] = {}
    for i in order:
        n = seen.get(bases[i], 0)
        seen[bases[i]] = n + 1
        if n == 0:
            keys[i] = bases[i]
            continue
        key = bases[i] + _suffix(n - 1)
        while key in taken:
            n += 1
            key = bases[i] + _suffix(n - 1)
        taken.add(key)
        keys[i] = key
    return [k for k in keys if k is not None]


def _suffix(n: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa: enough letters for any number of collisions."""
    letters = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("a") + rem) + letters
    return letters


# ------------------------------------------------------------------------------------------------ bibtex


def _topic_paths(paper: Paper) -> list[str]:
    return [" / ".join(t) for t in paper.topics if t]


def bibtex_entry(paper: Paper, key: str) -> bibmodel.Entry:
    """One ``bibtexparser`` entry; text values are LaTeX-escaped, the title double-braced to keep case."""
    arxiv = paper_arxiv(paper)
    kind = _kind(paper, arxiv)
    authors = split_authors(paper.authors)
    doi = paper_doi(paper)
    url = paper_url(paper)
    fields: list[tuple[str, str | None]] = [
        ("title", "{" + latex_escape(paper.title) + "}"),
        ("author", " and ".join(latex_escape(a) for a in authors) if authors else None),
        (kind.venue_field or "", latex_escape(kind.container) if kind.container else None),
        ("year", str(paper.year) if paper.year else None),
        ("doi", _verbatim_safe(doi) if doi else None),
        ("eprint", _verbatim_safe(arxiv) if arxiv else None),
        ("archiveprefix", "arXiv" if arxiv else None),
        ("url", _verbatim_safe(url) if url else None),
        ("note", latex_escape(paper.note) if paper.note else None),
        ("file", _verbatim_safe(paper.files[0]) if paper.files else None),
        ("keywords", latex_escape(", ".join(_topic_paths(paper))) if paper.topics else None),
    ]
    return bibmodel.Entry(kind.bibtype, key, [bibmodel.Field(k, v) for k, v in fields if k and v])


def to_bibtex(papers: list[Paper]) -> str:
    """A ``.bib`` file for ``papers`` written by ``bibtexparser``."""
    library = bibtexparser.Library()
    for paper, key in zip(papers, citation_keys(papers), strict=True):
        library.add(bibtex_entry(paper, key))
    return bibtexparser.write_string(library)


# ---------------------------------------------------------------------------------------------- csl-json


def csl_item(paper: Paper, key: str) -> dict[str, object]:
    """One CSL-JSON item (what Zotero, Pandoc and citeproc read); plain UTF-8, no LaTeX escaping."""
    arxiv = paper_arxiv(paper)
    kind = _kind(paper, arxiv)
    item: dict[str, object] = {"id": key, "type": kind.csl_type, "title": paper.title}
    authors = []
    for name in split_authors(paper.authors):
        family, given = name_parts(name)
        authors.append({"family": family, "given": given} if given else {"literal": family})
    optional: dict[str, object | None] = {
        "author": authors or None,
        "issued": {"date-parts": [[paper.year]]} if paper.year else None,
        "container-title": kind.container,
        "DOI": paper_doi(paper),
        "URL": paper_url(paper),
        "note": paper.note,
        "number": f"arXiv:{arxiv}" if arxiv else None,
        "keyword": ", ".join(_topic_paths(paper)) or None,
    }
    item.update({k: v for k, v in optional.items() if v})
    return item


def to_csl_json(papers: list[Paper]) -> str:
    """A CSL-JSON array; ``id`` equals the BibTeX key so both exports cite alike."""
    items = [csl_item(p, k) for p, k in zip(papers, citation_keys(papers), strict=True)]
    return json.dumps(items, ensure_ascii=False, indent=2) + "\n"


# --------------------------------------------------------------------------------------------------- csv


def to_csv(papers: list[Paper]) -> str:
    """One row per paper; list cells are ``"; "``-joined, ``read`` is ``true``/``false``/empty (unknown)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for paper, key in zip(papers, citation_keys(papers), strict=True):
        read = "" if paper.read is None else str(paper.read).lower()
        writer.writerow([
            key, paper.title, paper.alias or "", paper.authors or "", paper.venue or "", paper.year or "",
            read, "; ".join(_topic_paths(paper)), paper_doi(paper) or "", paper_arxiv(paper) or "",
            paper_url(paper) or "", "; ".join(paper.files), paper.note or "",
        ])
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- markdown


def _md_text(text: str) -> str:
    """Escape what would start a link or emphasis in Markdown link text."""
    return re.sub(r"([\\\[\]*_`<>])", r"\\\1", " ".join(text.split()))


def _md_url(url: str) -> str:
    return url.strip().replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def markdown_item(paper: Paper) -> str:
    """``- [x] (Alias) [Title](url) Venue, Year. (note)``; no checkbox when read state is unknown."""
    box = {True: "[x]", False: "[ ]", None: ""}[paper.read]
    parts = [f"- {box}".rstrip()]
    if paper.alias:
        parts.append(f"({_md_text(paper.alias)})")
    url = paper_url(paper)
    parts.append(f"[{_md_text(paper.title)}]({_md_url(url)})" if url else _md_text(paper.title))
    where = ", ".join(s for s in (paper.venue or "", str(paper.year or "")) if s)
    if where:
        parts.append(where + ".")
    if paper.note:
        parts.append(f"({' '.join(paper.note.split())})")
    return " ".join(parts)


def to_markdown(papers: list[Paper]) -> str:
    """A reading list grouped by each paper's first topic path, groups in order of first appearance."""
    groups: dict[str, list[Paper]] = {}
    for paper in papers:
        topic = _topic_paths(paper)
        groups.setdefault(topic[0] if topic else "Uncategorized", []).append(paper)
    blocks = []
    for topic, members in groups.items():
        lines = [f"## {topic}", ""] + [markdown_item(p) for p in members]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else ""
