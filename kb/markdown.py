"""One model of a Markdown reading list, shared by reading (:mod:`kb.catalog`) and writing (:mod:`kb.mdedit`).

The block structure comes from markdown-it-py, i.e. from CommonMark, the rules GitHub renders the user's
README with: headings (ATX and setext), list items and their nesting, paragraphs, block quotes and code
are found once, the way a reader of the rendered list sees them, and every one carries its 1-based lines
and the byte span of those lines in the file. What CommonMark leaves open is decided here, once, so the
reader and the writer can never disagree about it:

* **topics**: headings are topics; a leading ``# Title`` whose next heading skips levels (h1 -> h3+)
  names the document, not a topic; organisational headings ("Hosted Papers") are no topic; a list without
  any heading takes its folder's name; a plain list item (no checkbox, no link) that groups other items,
  or any plain item in a list that marks papers with checkboxes, is a sub-topic. Every item knows the
  :class:`Section` it sits in and so its topic path.
* **items**: ``[ ]``, ``[x]`` or ``[X]`` after the bullet is a checkbox, and the item knows the byte
  offset of its mark; an item with a checkbox or a link is a paper, one that links to another ``.md`` page
  is navigation, a plain item inside a paper is a remark of it, as are the paragraphs and quotes inside it
  (and a quote written on the line right after it).

Inline syntax is not left to markdown-it: hand-written lists put spaces into link targets
(``[[PDF]](./paper/A Survey.pdf)``) and labels (``[[PDF] ](...)``), which CommonMark does not read as
links. :data:`LINK` reads them; :func:`plain_text` turns the rest of a title or remark (emphasis, code
spans, escapes, entities) into its words with markdown-it's inline parser, which knows that
``Mittal_Animating_Face`` holds no emphasis.

Lines count LF, CRLF and a lone CR as breaks and nothing else (as Python's text files do); byte offsets
are into the file as read, a UTF-8 BOM included (line 1 starts after it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

BOM = b"\xef\xbb\xbf"
# Headings that organise a list by where the PDF lives, not by what the paper is about.
ORGANISATIONAL_HEADINGS = frozenset(
    {"hosted papers", "external papers", "included papers", "other papers", "papers", "external links"}
)

_LINE_BYTES = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_LINE_TEXT = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_MARKER = re.compile(r"[ \t]*([-*+]|\d{1,9}[.)])")
# "[ ]" / "[x]" / "[X]" opening an item's text; "[x](url)" is a link, not a checkbox.
CHECKBOX = re.compile(r"\[([ xX])\](?!\()[ \t]*")
SHORTCODE = re.compile(r":[a-z0-9_+-]+:")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_CODE_MASK = "\ue000"  # stands in for each character of a code span, so offsets stay the same
# ``[[PDF]](url)``, ``[[PDF] ](url)`` (labelled) or ``[text](url)``; urls may hold spaces and one level
# of parentheses.
_URL = r"(?:[^()]|\([^()]*\))*"
LINK = re.compile(
    r"\[\[(?P<label>[^\[\]]*)\]\s*\]\((?P<lurl>" + _URL + r")\)"
    r"|\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]\((?P<url>" + _URL + r")\)"
)


# ----------------------------------------------------------------------------------------------- bytes


def split_lines(data: bytes) -> list[bytes]:
    """Lines with their endings kept, so joining them gives back ``data`` exactly."""
    return _LINE_BYTES.findall(data)


def detect_encoding(data: bytes) -> str:
    """``utf-8`` when the bytes (after a BOM) are valid UTF-8, else ``cp1252``, else ``latin-1``."""
    body = data[len(BOM) :] if data.startswith(BOM) else data
    for encoding in ("utf-8", "cp1252"):
        try:
            body.decode(encoding)
            return encoding
        except UnicodeDecodeError:
            continue
    return "latin-1"


def decode(data: bytes) -> tuple[str, str, bool]:
    """(text without the BOM, encoding, whether there was a BOM); never fails."""
    bom = data.startswith(BOM)
    encoding = detect_encoding(data)
    return data[len(BOM) if bom else 0 :].decode(encoding), encoding, bom


# ----------------------------------------------------------------------------------------------- inline


def mask_code(text: str) -> str:
    """``text`` with every code span's characters replaced by a placeholder: offsets stay valid, and
    a link written inside code (prose about Markdown) is no link."""
    return _CODE_SPAN.sub(lambda m: _CODE_MASK * len(m.group(0)), text)


def unmask(original: str, masked: str) -> str:
    """``masked`` (a same-length edit of ``mask_code(original)``) with its code spans put back."""
    if _CODE_MASK not in masked:
        return masked
    return "".join(o if m == _CODE_MASK else m for o, m in zip(original, masked, strict=True))


@cache
def _parser(blocks_only: bool = False) -> MarkdownIt:
    from markdown_it import MarkdownIt  # 50 ms: only when a list is read or written

    md = MarkdownIt("commonmark")
    # The model reads each block's inline source and never markdown-it's inline tokens, which would
    # take 70% of the parse (and could not read the lists' links anyway).
    return md.disable(["inline", "text_join"]) if blocks_only else md


def plain_text(source: str) -> str:
    """The words of inline Markdown: emphasis markers dropped, code spans and link texts kept,
    escapes and entities resolved, line breaks as spaces. ``**Bold** `code```  -> ``Bold code``."""
    if not any(ch in source for ch in "*_`\\&[<\n"):
        return source
    out: list[str] = []
    for token in _parser().parseInline(source)[0].children or []:
        if token.type in ("text", "code_inline", "html_inline"):
            out.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif token.type == "image":
            out.append(token.content)
    return "".join(out)


def clean_name(source: str) -> str:
    """A heading or sub-topic bullet as a topic name: plain words, emoji shortcodes dropped."""
    return " ".join(plain_text(SHORTCODE.sub("", source)).split())


def is_nav_url(url: str) -> bool:
    """A link to another Markdown page (navigation between lists, not a paper)."""
    url = url.split("#")[0].split("?")[0].strip().lower()
    return url.endswith((".md", ".markdown"))


# ----------------------------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Line:
    """One physical line: its text (without the line ending) and where its bytes are."""

    no: int  # 1-based
    text: str
    start: int  # byte offset of the first character (after a BOM on line 1)
    end: int  # byte offset after the last character, before the line ending
    stop: int  # byte offset after the line ending

    @property
    def blank(self) -> bool:
        return not self.text.strip()


@dataclass(eq=False)
class Block:
    """A leaf block: ``heading``, ``paragraph``, ``code`` (fenced or indented), ``hr`` or ``html``."""

    kind: str
    line: int  # first line, 1-based
    last: int  # last line (a setext heading's underline included)
    span: tuple[int, int]  # bytes from the first line's start to the last line's end
    text: str = ""  # heading text or paragraph text (its lines joined by newlines), as written
    level: int = 0  # heading level 1-6
    setext: bool = False  # ``Title\n===`` rather than ``# Title``
    quoted: bool = False  # inside a block quote
    item: Item | None = None  # the innermost list item it belongs to, None at the top level


@dataclass(eq=False)
class Item:
    """A list item: where its bullet and checkbox are, its own text, what it contains and its role."""

    line: int
    last: int  # last non-blank line of the item, its children included
    span: tuple[int, int]
    indent: int  # columns before the bullet (tabs to 4)
    prefix: str  # the characters before the bullet, so a new sibling can copy them
    bullet: str  # "-", "*", "+", "1." or "1)"
    content: str  # the item's first paragraph after the bullet (checkbox included), lines joined by "\n"
    content_at: list[tuple[int, int]]  # (line, column) where each line of ``content`` starts
    checkbox: str | None = None  # " ", "x" or "X"
    checkbox_at: int | None = None  # byte offset of the mark between the brackets
    parent: Item | None = None
    children: list[Item] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)  # paragraphs and quotes inside it (remarks)
    role: str = "plain"  # paper, subtopic, note (a plain item inside a paper), nav, plain
    section: Section | None = None  # the topic it is filed under
    opens: Section | None = None  # the sub-topic a ``subtopic`` item opens

    @property
    def topic(self) -> tuple[str, ...]:
        return self.section.topic if self.section else ()

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of character ``offset`` of ``content``."""
        if not self.content_at:  # an item with no text of its own ("-" alone)
            return self.line, len(self.prefix) + len(self.bullet)
        for (line, column), text in zip(self.content_at, self.content.split("\n"), strict=True):
            if offset <= len(text):
                return line, column + offset
            offset -= len(text) + 1
        line, column = self.content_at[-1]
        return line, column + len(self.content.split("\n")[-1])


@dataclass(eq=False)
class Section:
    """A topic: the whole document, a heading's part of it, or a sub-topic bullet with its items."""

    kind: str  # document, heading, subtopic
    name: str  # as the user wrote it, cleaned ("" for the document)
    topic: tuple[str, ...]  # the topic path of what is filed here
    line: int  # heading or bullet line (0 for the document)
    head_last: int  # last line of the heading itself (setext underline) or of the bullet's text
    last: int  # last line of the section, its sub-sections included
    own_last: int  # last line before its first sub-heading
    level: int = 0  # heading level (0 for the document)
    parent: Section | None = None
    children: list[Section] = field(default_factory=list)
    item: Item | None = None  # the bullet of a sub-topic

    def descendants(self) -> Iterator[Section]:
        """Every section below this one, in document order."""
        for child in sorted(self.children, key=lambda s: s.line):
            yield child
            yield from child.descendants()


@dataclass(eq=False)
class Document:
    """A parsed reading list. ``parse_bytes`` / ``parse_text`` build it."""

    lines: list[Line]
    encoding: str
    bom: bool
    blocks: list[Block]
    items: list[Item]
    root: Section
    uses_checkboxes: bool

    @property
    def headings(self) -> list[Block]:
        """Headings at the top level (not inside a list item or quote): the ones that are topics."""
        return [b for b in self.blocks if b.kind == "heading" and b.item is None and not b.quoted]

    def item_at(self, line: int) -> Item | None:
        """The list item whose bullet is on ``line`` (the innermost one when several start there)."""
        found = [item for item in self.items if item.line == line]
        return found[-1] if found else None

    def offset(self, line: int, column: int) -> int:
        """Byte offset in the file of character ``column`` of ``line``."""
        return _offset(self.lines, self.encoding, line, column)

    def sections(self) -> Iterator[Section]:
        yield self.root
        yield from self.root.descendants()

    def papers(self) -> list[Item]:
        return [item for item in self.items if item.role == "paper"]


# ----------------------------------------------------------------------------------------------- parsing


def parse_bytes(data: bytes, path: str | Path | None = None) -> Document:
    """Parse a file's bytes (encoding detected, BOM kept in the offsets); ``path`` names its folder topic."""
    text, encoding, bom = decode(data)
    return parse_text(text, path, encoding=encoding, bom=bom)


def parse_text(
    text: str, path: str | Path | None = None, *, encoding: str = "utf-8", bom: bool = False
) -> Document:
    """Parse decoded text; byte offsets are those of ``text`` encoded with ``encoding`` (after a BOM)."""
    if text.startswith("\ufeff"):
        text, bom = text[1:], True
    lines = _lines(text, encoding, len(BOM) if bom else 0)
    tokens = _parser(blocks_only=True).parse("\n".join(line.text for line in lines))
    builder = _Builder(lines, encoding)
    builder.walk(tokens)
    doc = Document(lines, encoding, bom, builder.blocks, builder.items, _root(), False)
    _attach_trailing_quotes(doc)
    _assign_roles(doc)
    _build_sections(doc, _folder_topic(path))
    return doc


def _lines(text: str, encoding: str, offset: int) -> list[Line]:
    out = []
    for no, raw in enumerate(_LINE_TEXT.findall(text), start=1):
        content = raw.rstrip("\r\n")
        size = len(content.encode(encoding, errors="replace"))
        stop = offset + len(raw.encode(encoding, errors="replace"))
        out.append(Line(no, content, offset, offset + size, stop))
        offset = stop
    return out


def _offset(lines: list[Line], encoding: str, line: int, column: int) -> int:
    ln = lines[line - 1]
    return ln.start + len(ln.text[:column].encode(encoding, errors="replace"))


def _root() -> Section:
    return Section("document", "", (), 0, 0, 0, 0)


def _folder_topic(path: str | Path | None) -> str:
    """``garbage_collection/README.md`` -> "Garbage collection" (the topic of a list without headings)."""
    name = Path(path).parent.name if path else ""
    words = " ".join(re.split(r"[_\-\s]+", name)).strip()
    return words[:1].upper() + words[1:]


class _Builder:
    """Turns markdown-it's flat token stream into blocks and a tree of list items."""

    def __init__(self, lines: list[Line], encoding: str) -> None:
        self.lines = lines
        self.encoding = encoding
        self.blocks: list[Block] = []
        self.items: list[Item] = []
        self.stack: list[tuple[str, Item | None]] = []  # open containers: ("item", Item) / ("quote", None)

    def _span(self, first: int, last: int) -> tuple[int, int]:
        return self.lines[first - 1].start, self.lines[last - 1].end

    def _last(self, first: int, end: int) -> int:
        """Last non-blank 1-based line of the 0-based half-open map ``[first-1, end)``."""
        last = min(end, len(self.lines))
        while last > first and self.lines[last - 1].blank:
            last -= 1
        return last

    @property
    def _item(self) -> Item | None:
        return next((item for kind, item in reversed(self.stack) if kind == "item"), None)

    @property
    def _quoted(self) -> bool:
        return any(kind == "quote" for kind, _ in self.stack)

    def walk(self, tokens: list[Any]) -> None:
        for i, token in enumerate(tokens):
            kind = token.type
            if kind == "blockquote_open":
                self.stack.append(("quote", None))
            elif kind == "list_item_open":
                item = None if self._quoted else self._new_item(token, tokens, i)
                self.stack.append(("item", item))
            elif kind in ("blockquote_close", "list_item_close"):
                self.stack.pop()
            elif kind == "heading_open":
                self._block("heading", token, tokens[i + 1].content, level=int(token.tag[1:]),
                            setext=token.markup in ("=", "-"))
            elif kind == "paragraph_open":
                item = self._item
                if not (item is not None and tokens[i - 1].type == "list_item_open" and item.content_at
                        and item.content_at[0][0] == token.map[0] + 1):
                    self._block("paragraph", token, tokens[i + 1].content)
            elif kind in ("fence", "code_block"):
                self._block("code", token)
            elif kind in ("hr", "html_block"):
                self._block(kind, token)

    def _block(self, kind: str, token: Any, text: str = "", level: int = 0, setext: bool = False) -> None:
        first = token.map[0] + 1
        last = self._last(first, token.map[1])
        item = self._item
        block = Block(kind, first, last, self._span(first, last), text, level, setext, self._quoted, item)
        self.blocks.append(block)
        if item is not None and kind == "paragraph":
            item.blocks.append(block)

    def _new_item(self, token: Any, tokens: list[Any], i: int) -> Item:
        first = token.map[0] + 1
        text = self.lines[first - 1].text
        parent = self._item
        start = 0
        if parent is not None and parent.line == first:  # "- - x": the inner item starts after the outer
            start = parent.content_at[0][1] if parent.content_at else 0
        marker = _MARKER.match(text, start)
        bullet_end = marker.end() if marker else start
        bullet = (marker.group(1) if marker else token.markup) or "-"
        column = bullet_end + len(text[bullet_end:]) - len(text[bullet_end:].lstrip(" \t"))
        prefix = text[start : marker.start(1)] if marker else ""
        content_at: list[tuple[int, int]] = []
        paragraph = tokens[i + 1] if i + 1 < len(tokens) else None
        if paragraph is not None and paragraph.type == "paragraph_open" and paragraph.map[0] == token.map[0]:
            content_at.append((first, column))
            for no in range(first + 1, paragraph.map[1] + 1):
                line = self.lines[no - 1].text
                content_at.append((no, len(line) - len(line.lstrip(" \t"))))
        content = "\n".join(self.lines[no - 1].text[col:] for no, col in content_at)
        last = self._last(first, token.map[1])
        item = Item(first, last, self._span(first, last), len(text[: marker.start(1)].expandtabs(4))
                    if marker else 0, prefix, bullet, content, content_at, parent=parent)
        box = CHECKBOX.match(content)
        if box:
            item.checkbox = box.group(1)
            item.checkbox_at = _offset(self.lines, self.encoding, first, column + 1)
        if parent is not None:
            parent.children.append(item)
        self.items.append(item)
        return item



def _attach_trailing_quotes(doc: Document) -> None:
    """A quote written on the very next line after an item (``> my note``) is a remark of that item."""
    ends = {item.last: item for item in doc.items}  # the innermost item wins: it comes later
    for block in doc.blocks:
        if block.quoted and block.item is None and block.kind == "paragraph" and block.line - 1 in ends:
            owner = ends[block.line - 1]
            block.item = owner
            owner.blocks.append(block)


def _assign_roles(doc: Document) -> None:
    doc.uses_checkboxes = any(item.checkbox is not None for item in doc.items)
    for item in doc.items:  # parents come before their children
        links = list(LINK.finditer(mask_code(item.content)))
        if item.checkbox is not None or links:
            first_url = links[0].group("url") if links else None
            nav = item.checkbox is None and first_url is not None and is_nav_url(first_url)
            item.role = "nav" if nav else "paper"
        elif _inside_paper(item):
            item.role = "note"
        elif clean_name(item.content) and (doc.uses_checkboxes or item.children):
            item.role = "subtopic"


def _inside_paper(item: Item) -> bool:
    parent = item.parent
    while parent is not None:
        if parent.role == "paper":
            return True
        parent = parent.parent
    return False


def _document_title(headings: list[Block]) -> Block | None:
    """A leading h1 whose next heading skips a level (h1 -> h3+) names the document, not a topic."""
    if len(headings) >= 2 and headings[0].level == 1 and headings[1].level >= 3:
        return headings[0]
    return None


def _build_sections(doc: Document, folder_topic: str) -> None:
    headings = doc.headings
    end = len(doc.lines)
    root = doc.root
    root.last = end
    root.own_last = headings[0].line - 1 if headings else end
    if not headings and folder_topic:
        root.name, root.topic = folder_topic, (folder_topic,)
    title = _document_title(headings)
    stack = [root]
    by_line: list[Section] = []  # heading sections in document order
    for n, heading in enumerate(headings):
        while stack[-1].level >= heading.level and stack[-1] is not root:
            stack.pop()
        parent = stack[-1]
        name = clean_name(heading.text)
        counts = bool(name) and heading is not title and name.lower() not in ORGANISATIONAL_HEADINGS
        following = headings[n + 1 :]
        section = Section(
            "heading", name, parent.topic + ((name,) if counts else ()), heading.line, heading.last,
            last=next((h.line - 1 for h in following if h.level <= heading.level), end),
            own_last=following[0].line - 1 if following else end, level=heading.level, parent=parent,
        )
        parent.children.append(section)
        stack.append(section)
        by_line.append(section)
    for item in doc.items:
        if item.parent is not None:
            section = item.parent.opens or item.parent.section or root
        else:
            section = next((s for s in reversed(by_line) if s.line <= item.line), root)
        item.section = section
        if item.role == "subtopic":
            name = clean_name(item.content)
            head_last = item.content_at[-1][0] if item.content_at else item.line
            item.opens = Section("subtopic", name, section.topic + (name,), item.line, head_last, item.last,
                                 item.last, section.level, section, item=item)
            section.children.append(item.opens)
