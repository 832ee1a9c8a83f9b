"""Read Markdown reading lists into :class:`kb.models.Entry` objects.

Where the papers are, which topic each sits under, its line and its remarks come from the one model of a
list in :mod:`kb.markdown`, the same one :mod:`kb.mdedit` writes with. This module reads what one paper
item says, with forgiving rules, because lists are written by hand in many dialects and the user never
promised a format:

* ``[x]``/``[X]`` read, ``[ ]`` unread, no checkbox: unknown; ``(Alias)`` before the title;
* the title as a link, or as plain text up to the venue (``CVPR, 2019.``) or a bare year (``2019.``);
  a year at the end of a title (``Trusting Trust (1984)``, ``Title. 2019.``) is the year, not the title;
* labelled links ``[[PDF]](...)``, ``[:scroll:](x.pdf)`` (a PDF) and other ``[text](url)`` links;
* after the title: venue and year, an organisation (``Nvidia.``), authors (``by A and B``, ``- A & B``,
  ``(A B)``) and notes in parentheses; the item's remarks (nested bullets, paragraphs, quotes) are notes;
* titles and notes are plain text: ``**bold**``, ``*emphasis*`` and ```code``` keep their words.

A ``- [ ] (3DMM)`` item that only has an alias becomes an entry whose title is the alias: the user put
it in the list as a paper to read, so dropping it would lose it. Nothing is ever an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from kb import markdown
from kb.markdown import LINK, SHORTCODE, plain_text
from kb.models import Entry, Link

# Words that end in a period inside an author list without ending the sentence.
_ABBREVIATIONS = frozenset({"prof", "dr", "mr", "mrs", "ms", "jr", "sr", "st", "et", "al"})

_LEADING = re.compile(r"(?:\s*:[a-z0-9_+-]+:)*\s*")  # blanks and emoji shortcodes before the title
_ALIAS = re.compile(r"\((?P<alias>[^()]{1,40})\)\s*")
_YEAR_IN_TITLE = re.compile(r"(?:\s*\(((?:19|20)\d{2})\)|\.\s+((?:19|20)\d{2})\.?)\s*$")
_VENUE = re.compile(
    r"^(?P<venue>[A-Za-z][\w&.\- ]{0,60}?)[,\s]\s*(?P<year>(?:19|20)\d{2})\b\.?\s*(?P<org>.*)$"
)
_YEAR_ONLY = re.compile(r"^\(?((?:19|20)\d{2})\)?\.?$")
_YEAR_FIRST = re.compile(r"^\(?((?:19|20)\d{2})\)?(?:[.,;](?:\s+(?P<rest>.*))?|\s*)$", re.DOTALL)
_NAME_WORD = r"[A-Z][\w'\-]*\.?"
_NAME = re.compile(rf"^{_NAME_WORD}(?:\s+{_NAME_WORD}){{1,4}}$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass
class CatalogParse:
    """Result of reading one catalog file: its entries and what had to be fixed on the way."""

    entries: list[Entry]
    warnings: list[str] = field(default_factory=list)
    repaired: bool = False


@dataclass
class ItemText:
    """What one paper item says, before it is placed in the topic tree.

    ``title_end`` is the offset in the item's text just after the title (its link, or its words and
    final period): where a new ``[[PDF]]`` link goes. ``empty_pdf`` is the (start, end) of the target of
    an empty ``[[PDF]]()`` link, which a new link fills.
    """

    title: str
    alias: str | None = None
    read: bool | None = None
    links: list[Link] = field(default_factory=list)
    venue: str | None = None
    year: int | None = None
    org: str | None = None
    authors: str | None = None
    notes: list[str] = field(default_factory=list)
    title_end: int = 0
    empty_pdf: tuple[int, int] | None = None


# ---------------------------------------------------------------------------------------------------
# Files


def discover_catalogs(folders: list[Path], cwd: Path) -> list[Path]:
    """Every ``*.md`` under ``folders`` (hidden folders skipped) plus ``cwd/README.md``, sorted.

    Returned as resolved paths, deduplicated, so a folder given twice or a README reachable both ways
    (as ``cwd/README.md`` and inside a folder) is parsed once and its entries are not doubled.
    """
    found: dict[Path, Path] = {}
    for folder in folders:
        if folder.is_file() and folder.suffix.lower() == ".md":
            found.setdefault(folder.resolve(), folder)
            continue
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.lower().endswith(".md") and not name.startswith("."):
                    path = Path(dirpath) / name
                    found.setdefault(path.resolve(), path)
    readme = cwd / "README.md"
    if readme.is_file():
        found.setdefault(readme.resolve(), readme)
    return sorted(found)


def _repair_mojibake(text: str) -> tuple[str, str | None]:
    """Undo 'UTF-8 bytes decoded as a single-byte code page', returning the text and how it was fixed.

    The whole-text round trip is tried first because it is exact (ftfy alone leaves e.g. emoji read as
    Mac Roman broken); ftfy handles partially damaged text. Text that does not look damaged is never
    touched, so real accented Latin text stays as written.
    """
    import ftfy  # only when a list is read
    import ftfy.badness

    if not ftfy.badness.is_bad(text):
        return text, None
    for encoding, name in (("mac_roman", "Mac Roman"), ("cp1252", "cp1252"), ("latin-1", "Latin-1")):
        try:
            fixed = text.encode(encoding).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if fixed != text and ftfy.badness.badness(fixed) < ftfy.badness.badness(text):
            return fixed, f"repaired mojibake (UTF-8 read as {name})"
    fixed = ftfy.fix_text(text, normalization="NFC")
    if fixed != text:
        return fixed, "repaired mojibake with ftfy"
    return text, None


def read_catalog_text(path: Path) -> tuple[str, bool]:
    """Decode a catalog file and repair mojibake; returns (text, repaired?)."""
    text, _encoding, _bom, warnings = _read(Path(path))
    return text, any(w.startswith("repaired") for w in warnings)


def _read(path: Path) -> tuple[str, str, bool, list[str]]:
    """(text, encoding, BOM?, warnings) of a catalog file, mojibake repaired."""
    text, encoding, bom = markdown.decode(path.read_bytes())
    warnings = [] if encoding == "utf-8" else [f"not UTF-8: decoded as {encoding}"]
    text, how = _repair_mojibake(text)
    return text, encoding, bom, warnings + ([how] if how else [])


def parse_catalog(path: Path) -> CatalogParse:
    """Read, repair and parse one catalog file; the entries carry its absolute path."""
    path = Path(path)
    text, encoding, bom, warnings = _read(path)
    doc = markdown.parse_text(text, path, encoding=encoding, bom=bom)
    entries = entries_of(doc, str(path.resolve()))
    repaired = any(w.startswith("repaired") for w in warnings)
    return CatalogParse(entries=entries, warnings=warnings, repaired=repaired)


def parse_text(text: str, path: str) -> list[Entry]:
    """Parse catalog text into entries; ``path`` is stored as each entry's ``catalog``.

    Pure function of its input: never raises on odd input, returns ``[]`` when nothing looks like a
    paper.
    """
    return entries_of(markdown.parse_text(text, path), path)


# ---------------------------------------------------------------------------------------------------
# Entries of a parsed list


def entries_of(doc: markdown.Document, catalog: str) -> list[Entry]:
    """One entry per paper item of ``doc`` that names something; ``catalog`` is stored in each."""
    entries = []
    for item in doc.papers():
        said = parse_item(item.content)
        if said is None:
            continue
        entries.append(Entry(
            title=said.title,
            catalog=catalog,
            line=item.line,
            alias=said.alias,
            topic=list(item.topic),
            read=said.read,
            links=said.links,
            venue=said.venue,
            year=said.year,
            org=said.org,
            authors=said.authors,
            notes=said.notes + [note for _, text in _remarks(item) if (note := _clean_note(text))],
        ))
    return entries


def _remarks(item: markdown.Item) -> list[tuple[int, str]]:
    """(line, text) of the remarks of an item: its paragraphs and quotes, its plain sub-bullets and
    theirs, in document order (a nested paper is an entry of its own)."""
    found = [(block.line, block.text) for block in item.blocks]
    for child in item.children:
        if child.role == "note":
            found.append((child.line, child.content))
            found.extend(_remarks(child))
    return sorted(found, key=lambda found_: found_[0])


def _clean_note(text: str) -> str:
    """Plain text of a remark: link markup reduced to its text, emphasis and wrapping parens removed."""
    text = LINK.sub(lambda m: m.group("text") if m.group("text") is not None else m.group("label"), text)
    text = " ".join(plain_text(text).split())
    if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


# ---------------------------------------------------------------------------------------------------
# One paper item


@dataclass
class _Token:
    """A piece of an item's text: ``text``, a ``link`` (text, url) or a ``labelled`` link (label, url)."""

    kind: str
    start: int
    end: int
    text: str
    url: str = ""
    url_span: tuple[int, int] = (0, 0)


def parse_item(content: str) -> ItemText | None:
    """Read the text of one paper item (checkbox, alias, title, links, venue, notes).

    Returns ``None`` when there is no title at all (e.g. an empty ``- [ ]``).
    """
    # Code spans are prose about Markdown (never a link), and emphasis around a link is no text.
    work = _unwrap_link_emphasis(markdown.mask_code(content))
    item = ItemText(title="")
    pos = _read_head(item, content, work)
    tokens = _tokenise(content, work, pos)
    index, item.links = _find_title(tokens)
    title_token = tokens[index] if index < len(tokens) and tokens[index].kind != "labelled" else None
    item.title_end = tokens[index - 1].end if index else pos
    title, trailing = "", []
    if title_token is not None and title_token.kind == "text":
        raw = title_token.text
        title, moved = _split_plain_title(raw)
        item.title_end = title_token.start + len(raw) - len(raw.lstrip()) + len(title)
        if work[item.title_end : item.title_end + 1] == ".":
            item.title_end += 1
        trailing.append(moved + " ")
    elif title_token is not None:
        title, item.year = _title_year(title_token.text)
        item.title_end = title_token.end
        while work[item.title_end : item.title_end + 1] == " " and content[item.title_end] in "*_":
            item.title_end += 1  # past the "**" that closes "**[Title](url)**"
        link = _title_link(title_token.url)
        if link:
            item.links.append(link)
    for token in tokens[index + (title_token is not None) :]:
        _read_token(item, token, trailing)
    item.title = re.sub(r"\s*\.\s*$", "", " ".join(plain_text(title).split())) or (item.alias or "")
    if not item.title:
        return None
    _apply_trailing(item, plain_text("".join(trailing)))
    return item


def _read_head(item: ItemText, content: str, work: str) -> int:
    """Read the checkbox and the ``(Alias)`` before the title; returns where the title part starts."""
    pos = 0
    checkbox = markdown.CHECKBOX.match(work)
    if checkbox:
        item.read, pos = checkbox.group(1) != " ", checkbox.end()
    pos = _LEADING.match(work, pos).end()  # type: ignore[union-attr]  # it matches the empty string
    alias = _ALIAS.match(work, pos)
    if alias and not _YEAR_ONLY.match(alias.group(0).strip()):
        item.alias = " ".join(_restore(content, work, *alias.span("alias")).split())
        pos = alias.end()
    return pos


def _read_token(item: ItemText, token: _Token, trailing: list[str]) -> None:
    """A token after the title: its links are the entry's, its text is venue, authors or notes."""
    url = token.url.strip()
    if token.kind == "text":
        trailing.append(token.text)
    elif token.kind == "link" and SHORTCODE.fullmatch(token.text.strip()):
        if url:
            item.links.append(Link("PDF", url))
    elif token.kind == "link":
        trailing.append(token.text)
        if url:
            item.links.append(Link(token.text.strip(), url))
    else:
        trailing.append(" ")  # a labelled link separates the text around it
        label = _label(token.text)
        if url:
            item.links.append(Link(label, url))
        elif label == "PDF" and item.empty_pdf is None:
            item.empty_pdf = token.url_span


def _unwrap_link_emphasis(work: str) -> str:
    """Blank the ``**``/``*``/``__`` that wrap a whole link (``**[Title](url)**``), keeping offsets."""
    chars = list(work)
    for m in LINK.finditer(work):
        a, b = m.start(), m.end()
        if a == 0 or b == len(work) or work[a - 1] not in "*_" or work[b] != work[a - 1]:
            continue
        mark = work[b]
        n = min(a - len(work[:a].rstrip(mark)), len(work[b:]) - len(work[b:].lstrip(mark)))
        chars[a - n : a] = " " * n
        chars[b : b + n] = " " * n
    return "".join(chars)


def _restore(content: str, work: str, a: int, b: int) -> str:
    """``work[a:b]`` with its code spans put back."""
    return markdown.unmask(content[a:b], work[a:b])


def _tokenise(content: str, work: str, pos: int) -> list[_Token]:
    """Split ``work[pos:]`` into text, link and labelled-link tokens (texts taken with code restored)."""
    def text(a: int, b: int) -> str:
        return _restore(content, work, a, b)

    tokens: list[_Token] = []
    for m in LINK.finditer(work, pos):
        if m.start() > pos:
            tokens.append(_Token("text", pos, m.start(), text(pos, m.start())))
        if m.group("label") is not None:
            tokens.append(_Token("labelled", m.start(), m.end(), text(*m.span("label")),
                                 text(*m.span("lurl")), m.span("lurl")))
        else:
            tokens.append(_Token("link", m.start(), m.end(), text(*m.span("text")),
                                 text(*m.span("url")), m.span("url")))
        pos = m.end()
    if pos < len(work):
        tokens.append(_Token("text", pos, len(work), text(pos, len(work))))
    return tokens


def _find_title(tokens: list[_Token]) -> tuple[int, list[Link]]:
    """Index of the title token: the first real link when only blanks/emoji links precede it, else the
    leading text; ``len(tokens)`` when there is none. Also the PDF links of the emoji links before it."""
    head_links: list[Link] = []
    for index, token in enumerate(tokens):
        if token.kind == "text" and not token.text.strip(" \t\n*_"):
            continue
        if token.kind == "link" and SHORTCODE.fullmatch(token.text.strip()):
            if token.url.strip():
                head_links.append(Link("PDF", token.url.strip()))
            continue
        return index, head_links
    return len(tokens), head_links


def _title_link(url: str) -> Link | None:
    """The title's own link: a local ``.pdf`` is the paper's PDF, anything else the paper's page."""
    url = url.strip()
    if not url:
        return None
    if _is_local_pdf(url):
        return Link("PDF", url)
    return Link("paper", url)


def _is_local_pdf(url: str) -> bool:
    return not _SCHEME.match(url) and url.split("#")[0].split("?")[0].lower().endswith(".pdf")


def _label(label: str) -> str:
    label = " ".join(label.split())
    return "PDF" if label.lower() == "pdf" else label


def _title_year(title: str) -> tuple[str, int | None]:
    """``Reflections on Trusting Trust (1984)`` or ``Title. 2019.`` -> the title without the year, and
    the year."""
    m = _YEAR_IN_TITLE.search(title)
    if not m:
        return title, None
    return title[: m.start()], int(m.group(1) or m.group(2))


def _split_plain_title(text: str) -> tuple[str, str]:
    """Split ``Title. CVPR, 2019. (note)`` written without a link into (title, trailing text)."""
    moved: list[str] = []
    text = text.strip()
    while True:
        m = re.search(r"\s\(([^()]*)\)\s*$", text)
        if not m:
            break
        moved.insert(0, text[m.start() :].strip())
        text = text[: m.start()].rstrip()
    for dot in re.finditer(r"\.\s+", text):
        rest = text[dot.end() :]
        if _venue_match(rest) or _YEAR_FIRST.match(rest.strip()):
            moved.insert(0, rest)
            text = text[: dot.start()]
            break
    return text, " ".join(moved)


def _venue_match(text: str) -> re.Match[str] | None:
    m = _VENUE.match(text.strip())
    if not m or len(m.group("venue").split()) > 6:
        return None
    return m


def _apply_trailing(item: ItemText, text: str) -> None:
    """Read venue, year, organisation, authors and notes from the text after the title."""
    for kind, piece in _split_parens(text):
        piece = " ".join(piece.split()).strip(" ,;")
        if not piece or not piece.strip(".-–—|"):
            continue
        if kind == "paren":
            _apply_remark(item, piece)
        else:
            _apply_text(item, piece)


def _split_parens(text: str) -> list[tuple[str, str]]:
    """Split into ("text", s) and top-level ("paren", inner) pieces; unbalanced text stays text."""
    pieces: list[tuple[str, str]] = []
    buf: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            if depth == 0:
                pieces.append(("text", "".join(buf)))
                buf = []
            else:
                buf.append(ch)
            depth += 1
        elif ch == ")" and depth > 0:
            depth -= 1
            if depth == 0:
                pieces.append(("paren", "".join(buf)))
                buf = []
            else:
                buf.append(ch)
        else:
            buf.append(ch)
    pieces.append(("text" if depth == 0 else "paren", "".join(buf)))
    return pieces


def _apply_remark(item: ItemText, remark: str) -> None:
    year = _YEAR_ONLY.match(remark)
    if year and item.year is None:
        item.year = int(year.group(1))
    elif item.authors is None and _looks_like_names(remark):
        item.authors = remark
    else:
        item.notes.append(remark)


def _looks_like_names(text: str) -> bool:
    """``Peter W Shor`` or ``A B, C D and E F``: every part is 2-5 capitalised words."""
    parts = [p.strip() for p in re.split(r",|\band\b|&", text) if p.strip()]
    return bool(parts) and all(_NAME.match(p) for p in parts)


def _apply_text(item: ItemText, text: str) -> None:
    by = re.match(r"^by\s+(.+)$", text, flags=re.IGNORECASE)
    dash = re.match(r"^[-–—]\s*(.+)$", text)
    venue = _venue_match(text)
    if by and item.authors is None:
        authors, note = _split_sentence(by.group(1))
        item.authors = authors
        if note:
            item.notes.append(note)
    elif dash and item.authors is None:
        item.authors = dash.group(1).rstrip(".").strip()
    elif venue and item.venue is None:
        item.venue = venue.group("venue").strip()
        item.year = int(venue.group("year"))
        _apply_org(item, venue.group("org"))
    elif (year := _YEAR_FIRST.match(text)) and item.year is None:
        item.year = int(year.group(1))
        _apply_org(item, year.group("rest") or "")
    else:
        item.notes.append(text)


def _apply_org(item: ItemText, text: str) -> None:
    """``Nvidia.`` after the year is the organisation; a longer sentence there is a note."""
    text = text.strip()
    if not text:
        return
    org = text.rstrip(".").strip()
    if len(org.split()) <= 4 and "." not in org:
        item.org = org
    else:
        item.notes.append(text)


def _split_sentence(text: str) -> tuple[str, str]:
    """Split ``Luc Maranget. Paper address ...`` at the first period that is not an initial/title."""
    for m in re.finditer(r"\.\s+", text):
        word = text[: m.start()].split()[-1] if text[: m.start()].split() else ""
        if len(word) == 1 or word.lower() in _ABBREVIATIONS:
            continue
        return text[: m.start()].strip(), text[m.end() :].strip()
    return text.rstrip(".").strip(), ""
