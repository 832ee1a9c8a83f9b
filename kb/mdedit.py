"""Safe edits of the user's Markdown reading list.

The reading list is the user's own single source of truth and they edit it by hand too, so kb edits it
like a careful human would:

* where to write comes from :mod:`kb.markdown`, the one model of a list that :mod:`kb.catalog` reads
  with, so a topic, a line or a checkbox is found exactly where the reader found it (a setext
  ``Security\\n===`` heading is the topic "Security" for both);
* it works on **bytes**: only the characters that must change do change; line endings (LF, CRLF, CR),
  a UTF-8 BOM, a missing final newline and a non-UTF-8 encoding (latin-1, cp1252, ...) are kept;
* it refuses to write over a file that changed since the caller read it (``expected_digest``, and a
  re-read just before the rename), because the user may have saved the file in their editor meanwhile;
* every write is atomic (temp file in the same directory, fsync, ``os.replace``) and keeps the file
  mode, so a crash leaves the old file or the new one, never half of one;
* ``dry_run=True`` shows the unified diff and writes nothing.

Line numbers are 1-based and count LF, CRLF and lone CR as line breaks (as Python's text-mode files
do) and nothing else, so they agree with a parser that reads the file with ``open()``.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kb import markdown
from kb.errors import RefusedError
from kb.fsutil import atomic_write, sha256_bytes

_ENTRY_PREFIX_RE = re.compile(r"^\s*(?:[-*+][ \t]+)?(\[[ xX]\][ \t]+)?")


class EditError(RefusedError):
    """An edit kb refused to make; ``str(error)`` is a one-line message for the user."""


class NoCheckbox(EditError):
    """The line is not a ``- [ ]`` task item, so it has no read state to flip."""


class FileChanged(EditError):
    """The file on disk is not the one the caller read (its digest differs)."""


class LineMismatch(EditError):
    """The line number does not point at the expected item (past the end, or other text)."""


class BadEntry(EditError):
    """The text to add is not a single Markdown list line, or cannot be stored in the file's encoding."""


@dataclass
class EditResult:
    """What an edit did (or, with ``dry_run``, would do)."""

    path: Path
    changed: bool
    diff: str
    message: str
    # sha256 of the file as it is on disk after the call (the new bytes when written, else the bytes
    # read): pass it as ``expected_digest`` to the next edit of the same file, so a run of edits
    # (``kb mark a b c``) stays guarded against the user's own saves in between.
    digest: str = ""


# ----------------------------------------------------------------------------------------------- reading


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes: read, decide, then pass it back as ``expected_digest``."""
    return sha256_bytes(Path(path).read_bytes())


def _read_checked(path: Path, expected_digest: str | None) -> bytes:
    data = path.read_bytes()
    if expected_digest is not None and sha256_bytes(data) != expected_digest:
        raise FileChanged(f"{path.name}: the file changed on disk since kb read it; run again")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise EditError(f"{path.name}: UTF-16 files are not supported for editing; save it as UTF-8")
    return data


def _newline_style(lines: list[bytes]) -> bytes:
    """The file's dominant line ending, LF when it has none."""
    counts = Counter(_ending(line) for line in lines if _ending(line))
    return counts.most_common(1)[0][0] if counts else b"\n"


def _ending(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return b"\r\n"
    return line[-1:] if line.endswith((b"\n", b"\r")) else b""


# ----------------------------------------------------------------------------------------------- writing


def _diff(path: Path, old: bytes, new: bytes) -> str:
    encoding = markdown.detect_encoding(old)
    before = old.decode(encoding, errors="replace").splitlines(keepends=True)
    after = new.decode(encoding, errors="replace").splitlines(keepends=True)
    lines = difflib.unified_diff(before, after, fromfile=f"a/{path.name}", tofile=f"b/{path.name}")
    return "".join(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n"
                   for line in lines)


def _commit(path: Path, old: bytes, new: bytes, dry_run: bool, done: str, planned: str) -> EditResult:
    """Write ``new`` unless dry-run or nothing changed; re-check the file first so no edit is lost."""
    changed = new != old
    diff = _diff(path, old, new) if changed else ""
    written = changed and not dry_run
    if written:
        if path.read_bytes() != old:
            raise FileChanged(f"{path.name}: the file changed on disk since kb read it; run again")
        atomic_write(path, new)  # keeps the mode; a symlinked list has its target replaced
    return EditResult(path=path, changed=changed, diff=diff, message=planned if dry_run else done,
                      digest=sha256_bytes(new if written else old))


class PdfAlreadyLinked(EditError):
    """The entry already links a PDF, so ``add_pdf_link`` would give it a second one."""


# ---------------------------------------------------------------------------------------------- set_read


def _item_on(doc: markdown.Document, line: int, path: Path, expect_text: str | None = None) -> markdown.Item:
    """The list item whose bullet is on ``line``, or a one-line :class:`LineMismatch`."""
    if not 1 <= line <= len(doc.lines):
        raise LineMismatch(
            f"{path.name}: line {line} is outside the file ({len(doc.lines)} lines); run again"
        )
    text = doc.lines[line - 1].text
    if expect_text is not None and _norm(expect_text) not in _norm(text):
        raise LineMismatch(f"{path.name}:{line} does not hold {expect_text!r} any more; run again")
    item = doc.item_at(line)
    if item is None:
        raise LineMismatch(f"{path.name}:{line} is not a list item ({_short(text)!r}); run again")
    return item


def set_read(
    path: Path,
    line: int,
    read: bool,
    expected_digest: str | None = None,
    dry_run: bool = False,
    *,
    expect_text: str | None = None,
) -> EditResult:
    """Flip the checkbox of the task item on 1-based ``line`` (``[ ]`` <-> ``[x]``); nothing else changes.

    ``expect_text`` (e.g. the entry's title) guards against a stale line number when the caller has no
    digest: the line must contain it (case and spacing ignored) or :class:`LineMismatch` is raised.
    Marking an item that is already in the wanted state (``[x]`` or ``[X]`` for read) changes nothing
    (``changed=False``).
    """
    path = Path(path)
    data = _read_checked(path, expected_digest)
    doc = markdown.parse_bytes(data, path)
    item = _item_on(doc, line, path, expect_text)
    if item.checkbox is None or item.checkbox_at is None:
        raise NoCheckbox(
            f"{path.name}:{line} has no checkbox ({_short(doc.lines[line - 1].text)!r}); this list does not"
            " track read state - add '[ ] ' after the bullet to track it"
        )
    state = "read" if read else "unread"
    where = f"{path.name}:{line}"
    if (item.checkbox != " ") == read:
        return EditResult(path, False, "", f"{where} is already marked {state}; nothing changed",
                          sha256_bytes(data))
    at = item.checkbox_at
    new = data[:at] + (b"x" if read else b" ") + data[at + 1 :]
    return _commit(path, data, new, dry_run, f"marked {where} {state}",
                   f"would mark {where} {state} (dry run, nothing written)")


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _short(text: str, limit: int = 60) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------------ add_pdf_link


def add_pdf_link(
    path: Path,
    line: int,
    link_url: str,
    *,
    expected_digest: str | None = None,
    dry_run: bool = False,
) -> EditResult:
    """Give the catalog entry on ``line`` the link `` [[PDF]](link_url)``; nothing else changes.

    The link goes where the list puts its PDF links: right after the title (its link, or its words and
    final period), before other labelled links and the venue. An empty ``[[PDF]]()`` is filled instead.
    An entry that already links a PDF (``[[PDF]](...)``, ``[:scroll:](x.pdf)``, a title linking a local
    ``.pdf``) is refused with :class:`PdfAlreadyLinked`. ``link_url`` is written raw, spaces included,
    as the user's list writes local links; only ``(``/``)`` are percent-encoded.
    """
    from kb.catalog import parse_item

    path = Path(path)
    target = " ".join(link_url.split()).replace("(", "%28").replace(")", "%29")
    if not target or target != link_url.strip().replace("(", "%28").replace(")", "%29"):
        raise BadEntry(f"the PDF link must be one path or URL without line breaks: {link_url!r}")
    data = _read_checked(path, expected_digest)
    doc = markdown.parse_bytes(data, path)
    item = _item_on(doc, line, path)
    where = f"{path.name}:{line}"
    if item.role != "paper":
        raise LineMismatch(f"{where} is not a paper entry ({_short(item.content)!r}); run again")
    said = parse_item(item.content)
    pdf = next((link for link in said.links if link.label == "PDF"), None) if said else None
    if pdf is not None:
        raise PdfAlreadyLinked(f"{where} already links a PDF ({pdf.url}); nothing changed")
    if said is not None and said.empty_pdf is not None:
        start, end, text = said.empty_pdf[0], said.empty_pdf[1], target
    else:
        start = len(item.content[: said.title_end if said else len(item.content)].rstrip())
        end = start
        text = f" [[PDF]]({target})" + ("" if item.content[start:start + 1] in ("", " ", "\t", "\n") else " ")
    new = data[: _byte(doc, item, start)] + _encode(text, doc.encoding) + data[_byte(doc, item, end) :]
    return _commit(path, data, new, dry_run, f"linked the PDF of {where}",
                   f"would link the PDF of {where} (dry run, nothing written)")


def _byte(doc: markdown.Document, item: markdown.Item, offset: int) -> int:
    return doc.offset(*item.position(offset))


def _encode(text: str, encoding: str) -> bytes:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as error:
        raise BadEntry(f"the text has characters the file's encoding ({encoding}) cannot store: "
                       f"{error.object[error.start:error.end]!r}") from None


# --------------------------------------------------------------------------------------------- add_entry


def _same_topic(a: str, b: str) -> bool:
    """Topic names match case-insensitively, ignoring spacing and a trailing colon."""
    return _norm(a).rstrip(":").strip() == _norm(b).rstrip(":").strip()


def _resolve(doc: markdown.Document, topic: list[str]) -> tuple[markdown.Section, int]:
    """Deepest section matching a prefix of ``topic`` and how many components matched.

    Each component matches a heading or sub-topic anywhere below the previous match (so "GAN" finds
    ``#### GAN`` under the list's title heading); a list without headings is its folder's topic.
    """
    section, matched = doc.root, 0
    if topic and doc.root.name and _same_topic(doc.root.name, topic[0]):
        matched = 1
    for name in topic[matched:]:
        child = next((s for s in section.descendants() if _same_topic(s.name, name)), None)
        if child is None:
            break
        section, matched = child, matched + 1
    return section, matched


def _own_lines(section: markdown.Section) -> range:
    """Lines of the section's own part (after its heading or bullet text, before its first sub-heading)."""
    last = section.last if section.kind == "subtopic" else section.own_last
    return range(section.head_last + 1, last + 1)


def _last_content(doc: markdown.Document, lines: range, default: int) -> int:
    """The last non-blank line of ``lines`` (new lines go after it), ``default`` when all are blank."""
    return next((no for no in reversed(lines) if not doc.lines[no - 1].blank), default)


def _siblings(doc: markdown.Document, section: markdown.Section) -> list[markdown.Item]:
    """The items directly under the section, whose style a new item copies."""
    if section.item is not None:
        return section.item.children
    own = _own_lines(section) if section.kind == "heading" else range(1, len(doc.lines) + 1)
    return [item for item in doc.items if item.parent is None and item.line in own]


def _entry_body(entry_markdown: str) -> str:
    """The entry without its bullet (the sibling's bullet is used), keeping or adding ``[ ]``."""
    text = entry_markdown.strip()
    if not text or "\n" in text or "\r" in text:
        raise BadEntry("the entry must be one non-empty line of Markdown")
    match = _ENTRY_PREFIX_RE.match(text)
    box = match.group(1) if match and match.group(1) else "[ ] "
    return box.strip() + " " + text[match.end() if match else 0:].strip()


def _top_heading_level(doc: markdown.Document) -> int:
    """Level used for a new top topic: the most common heading level, not counting a lone title heading."""
    levels = [heading.level for heading in doc.headings]
    if levels and levels.count(levels[0]) == 1 and levels[0] == min(levels):
        title_level, levels = levels[0], levels[1:]
        if not levels:
            return min(title_level + 1, 6)
    return Counter(levels).most_common(1)[0][0] if levels else 2


def _default_marker(doc: markdown.Document) -> str:
    markers = Counter(item.bullet for item in doc.items if item.bullet in ("-", "*", "+"))
    return markers.most_common(1)[0][0] if markers else "-"


def add_entry(
    path: Path,
    topic: list[str],
    entry_markdown: str,
    expected_digest: str | None = None,
    dry_run: bool = False,
) -> EditResult:
    """Insert ``entry_markdown`` as a ``- [ ]`` item at the end of the section ``topic``.

    ``topic`` components match headings (ATX or setext, any level, case-insensitive) and sub-topic
    bullets (``- StyleGAN and its derivative``), as :mod:`kb.catalog` reads them. Missing components are
    created: a missing top topic as a heading at the end of the file (at the file's usual heading level),
    deeper ones as ``- Name`` bullets. An identical item already in that section is not added twice
    (``changed=False``).
    """
    path = Path(path)
    data = _read_checked(path, expected_digest)
    doc = markdown.parse_bytes(data, path)
    body = _entry_body(entry_markdown)
    topic = [t for t in (" ".join(t.split()) for t in topic) if t]

    section, matched = _resolve(doc, topic)
    own = _own_lines(section)
    if matched == len(topic) and any(_norm(item.content) == _norm(body)
                                     for item in doc.items if item.line in own):
        return EditResult(path, False, "", f"{path.name}: the entry is already under {' / '.join(topic)}",
                          sha256_bytes(data))
    if matched == 0 and topic:
        texts, after = _new_heading(doc, topic, body)
    else:
        texts, after = _plan_insert(doc, section, topic[matched:], body)
    new_data = _splice(data, doc, after, texts)
    where = " / ".join(topic) or "the end of the file"
    return _commit(path, data, new_data, dry_run, f"added an entry under {where} in {path.name}",
                   f"would add an entry under {where} in {path.name} (dry run, nothing written)")


def _new_heading(doc: markdown.Document, topic: list[str], body: str) -> tuple[list[str], int]:
    """A new heading for ``topic[0]`` at the end of the file, then its sub-topics and the entry."""
    marker = _default_marker(doc)
    after = _last_content(doc, range(1, len(doc.lines) + 1), 0)
    texts = ([""] if after > 0 else []) + ["#" * _top_heading_level(doc) + " " + topic[0], ""]
    indent = ""
    for name in topic[1:]:
        texts.append(f"{indent}{marker} {name}")
        indent += " " * (len(marker) + 1)
    return texts + [f"{indent}{marker} {body}"], after


def _plan_insert(doc: markdown.Document, section: markdown.Section, missing: list[str],
                 body: str) -> tuple[list[str], int]:
    """The lines to insert into ``section`` (missing sub-topics, then the entry) and the line they go
    after (0: before everything)."""
    own = _own_lines(section) if section.kind != "document" else range(1, len(doc.lines) + 1)
    after = _last_content(doc, own, section.head_last)
    siblings = _siblings(doc, section)
    if siblings:
        indent, bullet = siblings[0].prefix, siblings[0].bullet
    elif section.item is not None:
        indent = section.item.prefix + " " * (len(section.item.bullet) + 1)
        bullet = section.item.bullet
    else:
        indent, bullet = "", _default_marker(doc)
    texts = []
    item_text = any(after in (no for no, _ in item.content_at) for item in doc.items)
    if section.kind == "heading" and not item_text:
        texts.append("")  # after "#### Heading", a paragraph or a remark, a blank line before the item
    for name in missing:
        texts.append(f"{indent}{bullet} {name}")
        indent += " " * (len(bullet) + 1)
    return texts + [f"{indent}{bullet} {body}"], after


def _splice(data: bytes, doc: markdown.Document, after: int, texts: list[str]) -> bytes:
    """Insert encoded ``texts`` after line ``after``, keeping line endings and final-newline state."""
    bom = markdown.BOM if doc.bom else b""
    lines = markdown.split_lines(data[len(bom):])
    newline = _newline_style(lines)
    encoded = [_encode(t, doc.encoding) for t in texts]
    had_final_newline = not lines or bool(_ending(lines[-1]))
    if after == len(lines) and lines and not _ending(lines[-1]):
        lines[-1] += newline
    new = [t + newline for t in encoded]
    if after == len(lines) and not had_final_newline:
        new[-1] = encoded[-1]
    lines[after:after] = new
    return bom + b"".join(lines)


# ------------------------------------------------------------------------------------------ format_entry


def format_entry(
    title: str,
    pdf_rel_path: str | None,
    venue: str | None = None,
    year: int | None = None,
    alias: str | None = None,
) -> str:
    """``- [ ] (Alias) Title. [[PDF]](./paper/x.pdf) CVPR, 2020.`` in the user's own list style.

    The PDF path is written raw, spaces included, because that is how the user's list writes local
    links and how kb's catalog parser reads them; only ``(``/``)`` (which would end the link) are
    percent-encoded, and ``[``/``]`` in the title are backslash-escaped so it cannot read as a link.
    """
    title = " ".join(title.split()).replace("[", "\\[").replace("]", "\\]")
    if title and title[-1] not in ".?!":
        title += "."
    parts = ["- [ ]"]
    if alias:
        parts.append(f"({' '.join(alias.split())})")
    parts.append(title)
    if pdf_rel_path:
        link = pdf_rel_path.strip().replace("(", "%28").replace(")", "%29")
        parts.append(f"[[PDF]]({link})")
    where = ", ".join(s for s in (" ".join((venue or "").split()), str(year) if year else "") if s)
    if where:
        parts.append(where + ".")
    return " ".join(parts)
