"""Safe edits of the user's Markdown reading list.

The reading list is the user's own single source of truth and they edit it by hand too, so kb edits it
like a careful human would:

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

import contextlib
import difflib
import hashlib
import os
import re
import stat
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kb.errors import RefusedError

_BOM = b"\xef\xbb\xbf"
_LINE_RE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
# A list item with a task checkbox: indentation, bullet, spaces, "[ ]" / "[x]" / "[X]".
_CHECKBOX_RE = re.compile(rb"^([ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\[)([ xX])(\])")
_BULLET_RE = re.compile(r"^([ \t]*)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$")
_HEADING_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
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
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_checked(path: Path, expected_digest: str | None) -> bytes:
    data = path.read_bytes()
    if expected_digest is not None and hashlib.sha256(data).hexdigest() != expected_digest:
        raise FileChanged(f"{path.name}: the file changed on disk since kb read it; run again")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise EditError(f"{path.name}: UTF-16 files are not supported for editing; save it as UTF-8")
    return data


def _split_lines(data: bytes) -> list[bytes]:
    """Lines with their endings kept, so joining them gives back ``data`` exactly."""
    return _LINE_RE.findall(data)


def _guess_encoding(data: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8 (with or without BOM), else cp1252/latin-1 (never fails)."""
    body = data[len(_BOM):] if data.startswith(_BOM) else data
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        body.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _newline_style(lines: list[bytes]) -> bytes:
    """The file's dominant line ending, LF when it has none."""
    counts = Counter(_ending(line) for line in lines if _ending(line))
    return counts.most_common(1)[0][0] if counts else b"\n"


def _ending(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return b"\r\n"
    return line[-1:] if line.endswith((b"\n", b"\r")) else b""


def _content(line: bytes) -> bytes:
    return line[: len(line) - len(_ending(line))]


# ----------------------------------------------------------------------------------------------- writing


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, keeping its mode; a symlink's target is replaced."""
    target = path.resolve()
    mode = stat.S_IMODE(target.stat().st_mode)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".kb-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; not possible on every platform, hence best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _diff(path: Path, old: bytes, new: bytes) -> str:
    encoding = _guess_encoding(old)
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
        _atomic_write(path, new)
    return EditResult(path=path, changed=changed, diff=diff, message=planned if dry_run else done,
                      digest=hashlib.sha256(new if written else old).hexdigest())


# ---------------------------------------------------------------------------------------------- set_read


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
    Marking an item that is already in the wanted state changes nothing (``changed=False``).
    """
    path = Path(path)
    data = _read_checked(path, expected_digest)
    lines = _split_lines(data)
    if not 1 <= line <= len(lines):
        raise LineMismatch(f"{path.name}: line {line} is outside the file ({len(lines)} lines); run again")
    raw = lines[line - 1]
    if line == 1 and raw.startswith(_BOM):
        prefix, raw = _BOM, raw[len(_BOM):]
    else:
        prefix = b""
    encoding = _guess_encoding(data)
    text = _content(raw).decode(encoding, errors="replace")
    if expect_text is not None and _norm(expect_text) not in _norm(text):
        raise LineMismatch(f"{path.name}:{line} does not hold {expect_text!r} any more; run again")
    match = _CHECKBOX_RE.match(raw)
    if not match and not _BULLET_RE.match(text):
        raise LineMismatch(f"{path.name}:{line} is not a list item ({_short(text)!r}); run again")
    if not match:
        raise NoCheckbox(
            f"{path.name}:{line} has no checkbox ({_short(text)!r}); this list does not track read state"
            " - add '[ ] ' after the bullet to track it"
        )
    state = "read" if read else "unread"
    if (match.group(2) != b" ") == read:
        return EditResult(path, False, "", f"{path.name}:{line} is already marked {state}; nothing changed",
                          hashlib.sha256(data).hexdigest())
    mark = b"x" if read else b" "
    new_line = prefix + match.group(1) + mark + raw[match.end(2):]
    lines[line - 1] = new_line
    where = f"{path.name}:{line}"
    return _commit(path, data, b"".join(lines), dry_run, f"marked {where} {state}",
                   f"would mark {where} {state} (dry run, nothing written)")


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def _short(text: str, limit: int = 60) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------- add_entry


@dataclass
class _Line:
    """One decoded line and what Markdown structure it is (headings, bullets, fenced code)."""

    text: str
    heading: int = 0  # level 1-6, 0 when not a heading
    title: str = ""  # heading text or bullet text
    bullet: str = ""  # bullet marker when a list item
    indent: int = -1  # columns before the bullet, -1 when not a list item
    task: bool = False  # has a checkbox

    @property
    def blank(self) -> bool:
        return not self.text.strip()


@dataclass
class _Region:
    """Lines [start, end) that belong to a matched heading or sub-topic bullet."""

    start: int  # index of the heading/bullet line, -1 for the whole file
    end: int
    own_end: int  # end of the part before the first sub-heading (where new items go)
    heading_level: int  # level of the enclosing heading, 0 for none
    bullet_indent: int  # indent of the enclosing sub-topic bullet, -1 for none


def _indent_width(prefix: str) -> int:
    return len(prefix.expandtabs(4))


def _parse(texts: list[str]) -> list[_Line]:
    """Classify lines; headings and bullets inside fenced code blocks are plain text."""
    out: list[_Line] = []
    fence: str | None = None
    for text in texts:
        fence_match = _FENCE_RE.match(text)
        if fence is not None:
            closing = fence_match.group(1) if fence_match else ""
            if closing[:1] == fence[0] and len(closing) >= len(fence):
                fence = None
            out.append(_Line(text))
            continue
        if fence_match:
            fence = fence_match.group(1)
            out.append(_Line(text))
            continue
        heading = _HEADING_RE.match(text)
        if heading:
            title = re.sub(r"[ \t]+#+$", "", heading.group(2) or "").strip()
            out.append(_Line(text, heading=len(heading.group(1)), title=title))
            continue
        bullet = _BULLET_RE.match(text)
        if bullet:
            body = bullet.group(3) or ""
            task = bool(re.match(r"\[[ xX]\]", body))
            out.append(_Line(text, title=body.strip(), bullet=bullet.group(2),
                             indent=_indent_width(bullet.group(1)), task=task))
            continue
        out.append(_Line(text))
    return out


def _same_topic(a: str, b: str) -> bool:
    """Topic names match case-insensitively, ignoring spacing and a trailing colon."""
    return _norm(a).rstrip(":").strip() == _norm(b).rstrip(":").strip()


def _heading_region(lines: list[_Line], i: int) -> _Region:
    level = lines[i].heading
    end = next((j for j in range(i + 1, len(lines)) if 0 < lines[j].heading <= level), len(lines))
    own_end = next((j for j in range(i + 1, end) if lines[j].heading), end)
    return _Region(i, end, own_end, level, -1)


def _bullet_region(lines: list[_Line], i: int, parent: _Region) -> _Region:
    indent = lines[i].indent
    end = parent.own_end
    for j in range(i + 1, parent.own_end):
        line = lines[j]
        if line.heading or (not line.blank and _indent_width(_leading(line.text)) <= indent):
            end = j
            break
    return _Region(i, end, end, parent.heading_level, indent)


def _leading(text: str) -> str:
    return text[: len(text) - len(text.lstrip(" \t"))]


def _find_child(lines: list[_Line], region: _Region, name: str) -> _Region | None:
    """A heading deeper than the region's heading, else a plain (non-task) bullet deeper than its bullet."""
    lo = region.start + 1
    for j in range(lo, region.end):
        line = lines[j]
        if line.heading > region.heading_level and region.bullet_indent < 0 and _same_topic(line.title, name):
            return _heading_region(lines, j)
    for j in range(lo, region.own_end):
        line = lines[j]
        if line.indent > region.bullet_indent and not line.task and _same_topic(line.title, name):
            return _bullet_region(lines, j, region)
    return None


def _resolve(lines: list[_Line], topic: list[str]) -> tuple[_Region, int]:
    """Deepest region matching a prefix of ``topic`` and how many components matched."""
    region = _Region(-1, len(lines), len(lines), 0, -1)
    for depth, name in enumerate(topic):
        child = _find_child(lines, region, name)
        if child is None:
            return region, depth
        region = child
    return region, len(topic)


def _last_content(lines: list[_Line], region: _Region) -> int:
    """Index after which new lines go: the last non-blank line of the region's own part."""
    for j in range(region.own_end - 1, region.start, -1):
        if not lines[j].blank:
            return j
    return region.start


def _child_style(lines: list[_Line], region: _Region, default_marker: str) -> tuple[str, str]:
    """(indent, marker) of the items directly under the region, so a new item looks like its siblings."""
    items = [lines[j] for j in range(region.start + 1, region.own_end)
             if lines[j].indent > region.bullet_indent]
    if items:
        top = min(item.indent for item in items)
        sibling = next(item for item in items if item.indent == top)
        prefix = next(_leading(lines[j].text) for j in range(region.start + 1, region.own_end)
                      if lines[j] is sibling)
        return prefix, sibling.bullet
    if region.bullet_indent < 0:
        return "", default_marker
    parent = lines[region.start]
    return _leading(parent.text) + "  ", parent.bullet


def _entry_body(entry_markdown: str) -> str:
    """The entry without its bullet (the sibling's bullet is used), keeping or adding ``[ ]``."""
    text = entry_markdown.strip()
    if not text or "\n" in text or "\r" in text:
        raise BadEntry("the entry must be one non-empty line of Markdown")
    match = _ENTRY_PREFIX_RE.match(text)
    box = match.group(1) if match and match.group(1) else "[ ] "
    return box.strip() + " " + text[match.end() if match else 0:].strip()


def _top_heading_level(lines: list[_Line]) -> int:
    """Level used for a new top topic: the most common heading level, not counting a lone title heading."""
    levels = [line.heading for line in lines if line.heading]
    if levels and levels.count(levels[0]) == 1 and levels[0] == min(levels):
        title_level, levels = levels[0], levels[1:]
        if not levels:
            return min(title_level + 1, 6)
    return Counter(levels).most_common(1)[0][0] if levels else 2


def _default_marker(lines: list[_Line]) -> str:
    markers = Counter(line.bullet for line in lines if line.bullet in ("-", "*", "+"))
    return markers.most_common(1)[0][0] if markers else "-"


def _already_there(lines: list[_Line], region: _Region, body: str) -> bool:
    target = _norm(body)
    return any(lines[j].indent >= 0 and _norm(lines[j].title) == target
               for j in range(region.start + 1, region.own_end))


def add_entry(
    path: Path,
    topic: list[str],
    entry_markdown: str,
    expected_digest: str | None = None,
    dry_run: bool = False,
) -> EditResult:
    """Insert ``entry_markdown`` as a ``- [ ]`` item at the end of the section ``topic``.

    ``topic`` components match headings (any level, case-insensitive) and sub-topic bullets
    (``- StyleGAN and its derivative``). Missing components are created: a missing top topic as a
    heading at the end of the file (at the file's usual heading level), deeper ones as ``- Name``
    bullets. An identical item already in that section is not added twice (``changed=False``).
    """
    path = Path(path)
    data = _read_checked(path, expected_digest)
    bom = _BOM if data.startswith(_BOM) else b""
    encoding = _guess_encoding(data)
    raw_lines = _split_lines(data[len(bom):])
    texts = [_content(line).decode(encoding) for line in raw_lines]
    lines = _parse(texts)
    body = _entry_body(entry_markdown)
    topic = [t for t in (" ".join(t.split()) for t in topic) if t]

    region, matched = _resolve(lines, topic)
    if matched == len(topic) and _already_there(lines, region, body):
        return EditResult(path, False, "", f"{path.name}: the entry is already under {' / '.join(topic)}",
                          hashlib.sha256(data).hexdigest())
    new_texts, after = _plan_insert(lines, region, topic[matched:], body, matched == 0 and bool(topic))
    new_data = _splice(raw_lines, after, new_texts, encoding, bom)
    where = " / ".join(topic) or "the end of the file"
    return _commit(path, data, new_data, dry_run, f"added an entry under {where} in {path.name}",
                   f"would add an entry under {where} in {path.name} (dry run, nothing written)")


def _plan_insert(lines: list[_Line], region: _Region, missing: list[str], body: str,
                 new_heading: bool) -> tuple[list[str], int]:
    """The lines to insert and the index they go after (-1: before everything)."""
    marker = _default_marker(lines)
    if new_heading:
        level = _top_heading_level(lines)
        after = _last_content(lines, _Region(-1, len(lines), len(lines), 0, -1))
        texts = ([""] if after >= 0 else []) + ["#" * level + " " + missing[0], ""]
        indent = ""
        for name in missing[1:]:
            texts.append(f"{indent}{marker} {name}")
            indent += "  "
        return texts + [f"{indent}{marker} {body}"], after
    after = _last_content(lines, region)
    indent, sibling_marker = _child_style(lines, region, marker)
    texts = []
    if region.bullet_indent < 0 and after == region.start and region.start >= 0:
        texts.append("")  # "#### Heading" then a blank line, as the file does
    elif region.bullet_indent < 0 and region.start >= 0 and lines[after].indent < 0 \
            and not lines[after].heading:
        texts.append("")  # after a paragraph, start the list on its own
    for name in missing:
        texts.append(f"{indent}{sibling_marker} {name}")
        indent += "  "
    return texts + [f"{indent}{sibling_marker} {body}"], after


def _splice(raw_lines: list[bytes], after: int, texts: list[str], encoding: str, bom: bytes) -> bytes:
    """Insert encoded ``texts`` after line ``after``, keeping line endings and final-newline state."""
    newline = _newline_style(raw_lines)
    try:
        encoded = [t.encode(encoding) for t in texts]
    except UnicodeEncodeError as error:
        raise BadEntry(f"the entry has characters the file's encoding ({encoding}) cannot store: "
                       f"{error.object[error.start:error.end]!r}") from None
    lines = list(raw_lines)
    had_final_newline = not lines or bool(_ending(lines[-1]))
    insert_at = after + 1
    if insert_at == len(lines) and lines and not _ending(lines[-1]):
        lines[-1] += newline
    new = [t + newline for t in encoded]
    if insert_at == len(lines) and not had_final_newline:
        new[-1] = encoded[-1]
    lines[insert_at:insert_at] = new
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
