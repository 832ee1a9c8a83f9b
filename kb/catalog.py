"""Parse Markdown reading lists into :class:`kb.models.Entry` objects.

Reading lists are written by hand, in many dialects, and the user never promised a format. The parser
therefore works line by line with forgiving rules instead of a strict Markdown grammar:

* headings (ATX ``####`` and setext ``====``) are topics; a leading ``# Title`` followed by a heading
  that skips levels (h1 -> h4) is a document title and not a topic; organisational headings such as
  "Hosted Papers" are dropped from the topic path;
* list items are papers when they carry a checkbox or a link, sub-topics when they only name something
  and group other items (or sit in a checkbox list), and otherwise ignored (a project README's
  "- Install with pip"); bullets, quotes and indented paragraphs under a paper are notes of it;
* a list item whose link goes to another ``.md`` file is navigation between lists, not a paper;
* anything else (paragraphs, code, rules, bare URLs) is ignored, never an error.

A ``- [ ] (3DMM)`` item that only has an alias becomes an entry whose title is the alias: the user put
it in the list as a paper to read, so dropping it would lose it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import ftfy
import ftfy.badness

from kb.models import Entry, Link

# Headings that organise a list by where the PDF lives, not by what the paper is about.
ORGANISATIONAL_HEADINGS = frozenset(
    {"hosted papers", "external papers", "included papers", "other papers", "papers", "external links"}
)
# Words that end in a period inside an author list without ending the sentence.
_ABBREVIATIONS = frozenset({"prof", "dr", "mr", "mrs", "ms", "jr", "sr", "st", "et", "al"})

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_HR = re.compile(r"^ {0,3}([-*_])(?:\s*\1){2,}\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_ITEM = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])(?:\s+(.*))?$")
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_QUOTE = re.compile(r"^\s*>\s?(.*)$")
_CHECKBOX = re.compile(r"^\[([ xX])\]\s*")
_SHORTCODE = re.compile(r":[a-z0-9_+-]+:")
_LEADING_SHORTCODES = re.compile(r"^(?:\s*:[a-z0-9_+-]+:)+\s*")
_ALIAS = re.compile(r"^\((?P<alias>[^()]{1,40})\)\s*")
# ``[[PDF]](url)``, ``[[PDF] ](url)`` (labelled) or ``[text](url)``; urls may hold spaces and one
# level of parentheses.
_URL = r"(?:[^()]|\([^()]*\))*"
_LINK = re.compile(
    r"\[\[(?P<label>[^\[\]]*)\]\s*\]\((?P<lurl>" + _URL + r")\)"
    r"|\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]\((?P<url>" + _URL + r")\)"
)
_YEAR_IN_TITLE = re.compile(r"\s*\(((?:19|20)\d{2})\)\s*$")
_VENUE = re.compile(
    r"^(?P<venue>[A-Za-z][\w&.\- ]{0,60}?)[,\s]\s*(?P<year>(?:19|20)\d{2})\b\.?\s*(?P<org>.*)$"
)
_YEAR_ONLY = re.compile(r"^\(?((?:19|20)\d{2})\)?\.?$")
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
class _Line:
    no: int  # 1-based
    text: str  # without the newline
    kind: str  # blank, heading, item, quote, hr, code, para
    indent: int = 0
    level: int = 0  # heading level
    body: str = ""  # heading text, item content or quote content


@dataclass
class _Inline:
    """What one list item says, before it is placed in the topic tree."""

    title: str
    alias: str | None = None
    read: bool | None = None
    links: list[Link] = field(default_factory=list)
    venue: str | None = None
    year: int | None = None
    org: str | None = None
    authors: str | None = None
    notes: list[str] = field(default_factory=list)


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


def _decode(data: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM) first; cp1252 then latin-1 for lists saved by old Windows editors.

    Returns the text and the encoding used, so a non-UTF-8 file can be reported.
    """
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _repair_mojibake(text: str) -> tuple[str, str | None]:
    """Undo 'UTF-8 bytes decoded as a single-byte code page', returning the text and how it was fixed.

    The whole-text round trip is tried first because it is exact (ftfy alone leaves e.g. emoji read as
    Mac Roman broken); ftfy handles partially damaged text. Text that does not look damaged is never
    touched, so real accented Latin text stays as written.
    """
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
    text, warnings = _read_with_warnings(Path(path))
    return text, any(w.startswith("repaired") for w in warnings)


def _read_with_warnings(path: Path) -> tuple[str, list[str]]:
    text, encoding = _decode(path.read_bytes())
    warnings = [] if encoding == "utf-8-sig" else [f"not UTF-8: decoded as {encoding}"]
    text, how = _repair_mojibake(text)
    return text, warnings + ([how] if how else [])


def parse_catalog(path: Path) -> CatalogParse:
    """Read, repair and parse one catalog file; the entries carry its absolute path."""
    path = Path(path)
    text, warnings = _read_with_warnings(path)
    entries = parse_text(text, str(path.resolve()))
    repaired = any(w.startswith("repaired") for w in warnings)
    return CatalogParse(entries=entries, warnings=warnings, repaired=repaired)


# ---------------------------------------------------------------------------------------------------
# Block structure


def _indent_of(text: str) -> int:
    prefix = text[: len(text) - len(text.lstrip())]
    return len(prefix.expandtabs(4))


def _classify(text: str) -> list[_Line]:
    """Split into lines and give each a block kind; setext underlines turn the line above into a heading."""
    lines: list[_Line] = []
    in_code = False
    for no, raw in enumerate(text.split("\n"), start=1):
        raw = raw.rstrip()
        if _FENCE.match(raw):
            in_code = not in_code
            lines.append(_Line(no, raw, "code"))
            continue
        if in_code:
            lines.append(_Line(no, raw, "code"))
            continue
        lines.append(_classify_line(no, raw, lines[-1] if lines else None))
    return lines


def _classify_line(no: int, raw: str, prev: _Line | None) -> _Line:
    indent = _indent_of(raw)
    if not raw.strip():
        return _Line(no, raw, "blank")
    setext = _SETEXT.match(raw)
    if setext and prev is not None and prev.kind == "para" and prev.indent < 4:
        prev.kind, prev.level, prev.body = "heading", 1 if setext.group(1)[0] == "=" else 2, prev.text.strip()
        return _Line(no, raw, "code")  # the underline itself carries nothing
    if _HR.match(raw):
        return _Line(no, raw, "hr", indent)
    atx = _ATX.match(raw)
    if atx:
        return _Line(no, raw, "heading", indent, len(atx.group(1)), atx.group(2) or "")
    item = _ITEM.match(raw)
    if item:
        return _Line(no, raw, "item", indent, body=item.group(3) or "")
    quote = _QUOTE.match(raw)
    if quote:
        return _Line(no, raw, "quote", indent, body=quote.group(1))
    return _Line(no, raw, "para", indent, body=raw.strip())


def _clean_heading(text: str) -> str:
    text = _SHORTCODE.sub("", text).replace("**", "").replace("__", "")
    return " ".join(text.split())


def _humanise(name: str) -> str:
    words = " ".join(re.split(r"[_\-\s]+", name)).strip()
    return words[:1].upper() + words[1:]


# ---------------------------------------------------------------------------------------------------
# Parser


@dataclass
class _State:
    """Where the parser is in the document: the heading path, sub-topic bullets and the open paper."""

    headings: list[tuple[int, str]] = field(default_factory=list)
    bullets: list[tuple[int, str]] = field(default_factory=list)
    current: Entry | None = None
    current_indent: int = -1
    blank_since_current: bool = False

    def topic(self, base: list[str]) -> list[str]:
        heads = [t for _, t in self.headings if t and t.lower() not in ORGANISATIONAL_HEADINGS]
        return base + heads + [t for _, t in self.bullets]

    def close(self) -> None:
        self.current, self.current_indent = None, -1


def parse_text(text: str, path: str) -> list[Entry]:
    """Parse catalog text into entries; ``path`` is stored as each entry's ``catalog``.

    Pure function of its input: never raises on odd input, returns ``[]`` when nothing looks like a
    paper.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    lines = _classify(text)
    headings = [ln for ln in lines if ln.kind == "heading"]
    title_line = _document_title(headings)
    base = [] if headings else [_humanise(Path(path).parent.name)] if Path(path).parent.name else []
    uses_checkboxes = any(ln.kind == "item" and _CHECKBOX.match(ln.body) for ln in lines)
    state = _State()
    entries: list[Entry] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.kind == "heading":
            _enter_heading(state, line, line is title_line)
        elif line.kind == "item":
            end = _continuation_end(lines, i)
            body = " ".join([line.body] + [lines[k].body for k in range(i + 1, end)])
            _handle_item(state, lines, i, end, body, path, base, uses_checkboxes, entries)
            i = end
            continue
        elif line.kind == "quote":
            _handle_quote(state, line)
        elif line.kind == "para":
            i = _handle_paragraph(state, lines, i)
            continue
        elif line.kind == "hr":
            state.close()
            state.bullets = []
        elif line.kind == "blank" and state.current is not None:
            state.blank_since_current = True
        i += 1
    return entries


def _document_title(headings: list[_Line]) -> _Line | None:
    """A leading h1 whose next heading skips a level (h1 -> h3+) names the document, not a topic."""
    if len(headings) >= 2 and headings[0].level == 1 and headings[1].level >= 3:
        return headings[0]
    return None


def _enter_heading(state: _State, line: _Line, is_title: bool) -> None:
    state.close()
    state.bullets = []
    while state.headings and state.headings[-1][0] >= line.level:
        state.headings.pop()
    state.headings.append((line.level, "" if is_title else _clean_heading(line.body)))


def _continuation_end(lines: list[_Line], i: int) -> int:
    """Index after the lazy continuation lines of item ``i`` (a title may wrap onto the next line)."""
    end = i + 1
    while end < len(lines) and lines[end].kind == "para":
        end += 1
    return end


def _has_children(lines: list[_Line], i: int, end: int) -> bool:
    indent = lines[i].indent
    for line in lines[end:]:
        if line.kind in ("blank", "code"):
            continue
        if line.kind in ("para", "quote") and line.indent > indent:
            continue
        return line.kind == "item" and line.indent > indent
    return False


def _handle_item(
    state: _State,
    lines: list[_Line],
    i: int,
    end: int,
    body: str,
    path: str,
    base: list[str],
    uses_checkboxes: bool,
    entries: list[Entry],
) -> None:
    line = lines[i]
    has_checkbox = bool(_CHECKBOX.match(body))
    links = list(_LINK.finditer(_CODE_SPAN.sub(" ", body)))
    under_paper = state.current is not None and line.indent > state.current_indent
    if under_paper and not has_checkbox and not links:
        _add_note(state.current, body)
        return
    if not has_checkbox and links and _is_nav_link(links[0]):
        state.close()
        return
    while state.bullets and state.bullets[-1][0] >= line.indent:
        state.bullets.pop()
    if not has_checkbox and not links:
        # Only names something: a sub-topic when it groups items (or the list marks papers with
        # checkboxes); otherwise a plain bullet such as "- Install with pip" in a project README.
        state.close()
        name = _clean_heading(body)
        if name and (uses_checkboxes or _has_children(lines, i, end)):
            state.bullets.append((line.indent, name))
        return
    inline = _parse_item(body)
    if inline is None:
        state.close()
        return
    entry = Entry(
        title=inline.title,
        catalog=path,
        line=line.no,
        alias=inline.alias,
        topic=state.topic(base),
        read=inline.read,
        links=inline.links,
        venue=inline.venue,
        year=inline.year,
        org=inline.org,
        authors=inline.authors,
        notes=inline.notes,
    )
    entries.append(entry)
    state.current, state.current_indent, state.blank_since_current = entry, line.indent, False


def _is_nav_link(match: re.Match[str]) -> bool:
    """A list item linking to another Markdown page is navigation between lists, not a paper."""
    url = (match.group("url") or "").split("#")[0].split("?")[0].strip().lower()
    return url.endswith((".md", ".markdown"))


def _handle_quote(state: _State, line: _Line) -> None:
    if state.current is not None and (line.indent > state.current_indent or not state.blank_since_current):
        _add_note(state.current, line.body)
    else:
        state.close()


def _handle_paragraph(state: _State, lines: list[_Line], i: int) -> int:
    """An indented paragraph under a paper is one note; a paragraph at the margin ends the list."""
    end = i + 1
    while end < len(lines) and lines[end].kind == "para":
        end += 1
    if state.current is not None and lines[i].indent > state.current_indent:
        _add_note(state.current, " ".join(ln.body for ln in lines[i:end]))
    elif lines[i].indent == 0:
        state.close()
        state.bullets = []
    return end


def _add_note(entry: Entry | None, text: str) -> None:
    if entry is None:
        return
    note = _clean_note(text)
    if note:
        entry.notes.append(note)


def _clean_note(text: str) -> str:
    """Plain text of a remark: link markup reduced to its text, emphasis and wrapping parens removed."""
    text = _LINK.sub(lambda m: m.group("text") if m.group("text") is not None else m.group("label"), text)
    text = text.replace("**", "").replace("__", "")
    text = " ".join(text.split()).strip()
    if len(text) > 1 and text[0] == "*" and text[-1] == "*":
        text = text[1:-1].strip()
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
# One list item


def _parse_item(body: str) -> _Inline | None:
    """Parse the text of one paper item (checkbox, alias, title, links, venue, notes).

    Returns ``None`` when there is no title at all (e.g. an empty ``- [ ]``).
    """
    text = body.replace("**", "").strip()
    read = None
    checkbox = _CHECKBOX.match(text)
    # Inline code is prose about Markdown (a README explaining a list), never a paper's link.
    text = (
        text[: checkbox.end()] + _CODE_SPAN.sub(" ", text[checkbox.end() :])
        if checkbox
        else _CODE_SPAN.sub(" ", text)
    )
    if checkbox:
        read = checkbox.group(1).lower() == "x"
        text = text[checkbox.end() :]
    text = _LEADING_SHORTCODES.sub("", text)
    alias = None
    alias_match = _ALIAS.match(text)
    if alias_match and not _YEAR_ONLY.match(alias_match.group(0).strip()):
        alias = alias_match.group("alias").strip()
        text = text[alias_match.end() :]
    tokens = _tokenise(text)
    title, title_link, head_links, rest = _split_title(tokens)
    item = _Inline(title="", alias=alias, read=read, links=head_links)
    trailing: list[str] = []
    if title_link is None:
        title, moved = _split_plain_title(title)
        trailing.append(moved + " ")
    else:
        title, year = _title_year(title)
        item.year = year
        link = _title_link(title_link)
        if link:
            item.links.append(link)
    for kind, a, b in rest:
        if kind == "text":
            trailing.append(a)
        elif kind == "link" and _SHORTCODE.fullmatch(a.strip()):
            if b.strip():
                item.links.append(Link("PDF", b.strip()))
        elif kind == "link":
            trailing.append(a)
            if b.strip():
                item.links.append(Link(a.strip(), b.strip()))
        else:
            trailing.append(" ")  # a labelled link separates the text around it
            if b.strip():
                item.links.append(Link(_label(a), b.strip()))
    title = re.sub(r"\s*\.\s*$", "", " ".join(title.split()))
    item.title = title or (alias or "")
    if not item.title:
        return None
    _apply_trailing(item, "".join(trailing))
    return item


def _tokenise(text: str) -> list[tuple[str, str, str]]:
    """Split into ("text", s, ""), ("link", text, url) and ("labelled", label, url) tokens."""
    tokens: list[tuple[str, str, str]] = []
    pos = 0
    for m in _LINK.finditer(text):
        if m.start() > pos:
            tokens.append(("text", text[pos : m.start()], ""))
        if m.group("label") is not None:
            tokens.append(("labelled", m.group("label"), m.group("lurl")))
        else:
            tokens.append(("link", m.group("text"), m.group("url")))
        pos = m.end()
    if pos < len(text):
        tokens.append(("text", text[pos:], ""))
    return tokens


def _split_title(
    tokens: list[tuple[str, str, str]],
) -> tuple[str, tuple[str, str] | None, list[Link], list[tuple[str, str, str]]]:
    """Find the title: the first real link when only blanks/emoji links precede it, else leading text.

    Returns (title text, (text, url) of the title link or None, links seen before it, remaining tokens).
    """
    head_links: list[Link] = []
    for idx, (kind, a, b) in enumerate(tokens):
        if kind == "text" and not a.strip():
            continue
        if kind == "link" and _SHORTCODE.fullmatch(a.strip()):
            if b.strip():
                head_links.append(Link("PDF", b.strip()))
            continue
        if kind == "link":
            return a, (a, b), head_links, tokens[idx + 1 :]
        if kind == "text":
            return a, None, head_links, tokens[idx + 1 :]
        return "", None, head_links, tokens[idx:]
    return "", None, head_links, []


def _title_link(link: tuple[str, str]) -> Link | None:
    """The title's own link: a local ``.pdf`` is the paper's PDF, anything else the paper's page."""
    url = link[1].strip()
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
    """``Reflections on Trusting Trust (1984)`` -> title without the year, and the year."""
    m = _YEAR_IN_TITLE.search(title)
    if not m:
        return title, None
    return title[: m.start()], int(m.group(1))


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
        if _venue_match(rest):
            moved.insert(0, rest)
            text = text[: dot.start()]
            break
    return text, " ".join(moved)


def _venue_match(text: str) -> re.Match[str] | None:
    m = _VENUE.match(text.strip())
    if not m or len(m.group("venue").split()) > 6:
        return None
    return m


def _apply_trailing(item: _Inline, text: str) -> None:
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


def _apply_remark(item: _Inline, remark: str) -> None:
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


def _apply_text(item: _Inline, text: str) -> None:
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
    elif (year := _YEAR_ONLY.match(text)) and item.year is None:
        item.year = int(year.group(1))
    else:
        item.notes.append(text)


def _apply_org(item: _Inline, text: str) -> None:
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
