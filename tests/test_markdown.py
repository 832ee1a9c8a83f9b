"""The one Markdown model of a reading list, checked on the real lists in ../shared/corpus.

Reading (catalog) and writing (mdedit) both use it; the last tests check that they agree: an entry added
under any topic the reader reports is read back under exactly that topic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kb import markdown
from kb.catalog import parse_catalog
from kb.mdedit import add_entry
from tests.conftest import CORPUS, ODD, PWL, USERLIB

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")
LISTS = [USERLIB / "README.md", *sorted(PWL.glob("*/README.md")), ODD / "catalog-mojibake.md"]


def _doc(path: Path) -> markdown.Document:
    return markdown.parse_bytes(path.read_bytes(), path)


# ------------------------------------------------------------------------------------------------- lines


@needs_corpus
@pytest.mark.parametrize("variant", ["lf", "crlf", "cr", "bom", "no-final-newline", "latin-1"])
def test_every_line_span_holds_its_text(variant: str) -> None:
    data = (USERLIB / "README.md").read_bytes()
    if variant == "crlf":
        data = data.replace(b"\n", b"\r\n")
    if variant == "cr":
        data = data.replace(b"\n", b"\r")
    if variant == "bom":
        data = markdown.BOM + data
    if variant == "no-final-newline":
        data = data.rstrip(b"\n")
    if variant == "latin-1":
        data = "# Café\n".encode("latin-1") + data.decode().encode("latin-1", errors="replace")
    doc = markdown.parse_bytes(data)
    assert doc.encoding == ("cp1252" if variant == "latin-1" else "utf-8")  # not UTF-8: cp1252 first
    assert doc.bom == (variant == "bom")
    assert len(doc.lines) == len(markdown.split_lines(data))
    for line in doc.lines:
        assert data[line.start : line.end].decode(doc.encoding) == line.text
        assert data[line.end : line.stop] in (b"", b"\n", b"\r\n", b"\r")
    assert doc.lines[-1].stop == len(data)
    shift = 1 if variant == "latin-1" else 0  # one line put before the list
    assert [i.line - shift for i in doc.items] == [i.line for i in _doc(USERLIB / "README.md").items]


def test_empty_and_garbage() -> None:
    assert markdown.parse_text("").items == []
    doc = markdown.parse_bytes(bytes(range(256)) * 4)
    assert doc.encoding in ("cp1252", "latin-1") and doc.items == []


# ---------------------------------------------------------------------------------------------- headings


@needs_corpus
def test_setext_and_atx_headings_of_the_security_list() -> None:
    doc = _doc(PWL / "security" / "README.md")
    assert [(h.text, h.level, h.setext, h.line, h.last) for h in doc.headings] == [
        ("Security", 1, True, 1, 2),
        ("Hardware Security", 2, False, 15, 15),
    ]
    first = doc.headings[0]
    data = (PWL / "security" / "README.md").read_bytes()
    assert data[first.span[0] : first.span[1]] == b" Security \n==========="
    assert [(s.kind, s.topic, s.line, s.own_last, s.last) for s in doc.sections()] == [
        ("document", (), 0, 0, 24),
        ("heading", ("Security",), 1, 14, 24),
        ("heading", ("Security", "Hardware Security"), 15, 24, 24),
    ]


def test_setext_level_two_and_thematic_breaks() -> None:
    doc = markdown.parse_text("Intro\n\nVision\n------\n\n- [ ] a\n\n---\n\n- [ ] b\n")
    assert [(h.text, h.level, h.setext) for h in doc.headings] == [("Vision", 2, True)]
    assert [b.kind for b in doc.blocks] == ["paragraph", "heading", "hr"]
    assert [i.topic for i in doc.items] == [("Vision",), ("Vision",)]


@needs_corpus
def test_document_title_organisational_headings_and_folder_topic() -> None:
    userlib = _doc(USERLIB / "README.md")
    title = next(userlib.sections())  # the document, then "# PaperList" (a title: h1 then h4s)
    assert title.kind == "document"
    paper_list = next(s for s in userlib.sections() if s.name == "PaperList")
    assert paper_list.topic == () and paper_list.level == 1
    hosted = _doc(PWL / "data_structures" / "README.md")
    assert {s.name: s.topic for s in hosted.sections() if s.kind == "heading"} == {
        "Data Structures": ("Data Structures",),
        "Hosted Papers": ("Data Structures",),
    }
    sublinear = _doc(PWL / "sublinear_algorithms" / "README.md")
    assert [s.name for s in sublinear.sections()][1:] == ["Sublinear Algorithms", "Hosted Papers"]
    gc = _doc(PWL / "garbage_collection" / "README.md")
    assert gc.headings == [] and gc.root.topic == ("Garbage collection",)
    assert {i.topic for i in gc.papers()} == {("Garbage collection",)}


# ------------------------------------------------------------------------------------------------- items


@needs_corpus
def test_userlib_items_checkboxes_and_offsets() -> None:
    data = (USERLIB / "README.md").read_bytes()
    doc = markdown.parse_bytes(data)
    tasks = [i for i in doc.items if i.checkbox is not None]
    assert len(tasks) == 68 and doc.uses_checkboxes
    for item in tasks:
        assert data[item.checkbox_at : item.checkbox_at + 1] == item.checkbox.encode()  # type: ignore[operator]
        assert data[item.checkbox_at - 1 : item.checkbox_at + 2] in (b"[ ]", b"[x]")  # type: ignore[operator]
        assert item.role == "paper"
    stylegan = doc.item_at(102)
    assert stylegan is not None and stylegan.checkbox == "x"
    assert (stylegan.indent, stylegan.prefix, stylegan.bullet) == (2, "  ", "-")
    assert stylegan.content.startswith("[x] (StyleGAN) [A Style-Based")
    assert stylegan.topic == ("GAN", "StyleGAN and its derivative")
    assert stylegan.parent is not None and stylegan.parent.role == "subtopic"


@needs_corpus
def test_userlib_sub_topic_bullets() -> None:
    doc = _doc(USERLIB / "README.md")
    subtopics = [(s.name, s.topic, s.line, s.last) for s in doc.sections() if s.kind == "subtopic"]
    assert subtopics[:2] == [
        ("3D based approaches", ("Talking face generation", "3D based approaches"), 10, 15),
        ("2D landmark based approaches", ("Talking face generation", "2D landmark based approaches"), 17, 26),
    ]
    assert ("Visual emotion recognition", ("Emotion", "Emotion recognition", "Visual emotion recognition"),
            84, 86) in subtopics
    assert len(subtopics) == 12
    began = doc.item_at(106)
    assert began is not None and began.topic == ("GAN",)  # after the sub-topic, at the outer level


@needs_corpus
def test_remarks_code_and_quotes() -> None:
    security = _doc(PWL / "security" / "README.md")
    sok = security.item_at(22)
    assert sok is not None and [(c.role, c.line) for c in sok.children] == [("note", 23), ("note", 24)]
    gc = _doc(PWL / "garbage_collection" / "README.md")
    unified = gc.item_at(1)
    assert unified is not None and [(b.kind, b.quoted, b.line) for b in unified.blocks] == [
        ("paragraph", True, 2)
    ]
    wrapped = gc.papers()[-1]  # the title wraps onto the next line
    assert wrapped.content_at == [(11, 2), (12, 2)] and wrapped.content.endswith("parallel-gc.pdf)")
    assert wrapped.position(wrapped.content.index("Heap")) == (12, 2)
    pretraining = _doc(USERLIB / "README.md").item_at(122)
    assert pretraining is not None and [b.line for b in pretraining.blocks] == [124]
    doc = markdown.parse_text("- [ ] a\n> note right after\n\n```\n- [ ] in code\n```\n\n> far quote\n")
    assert [(i.line, i.checkbox) for i in doc.items] == [(1, " ")]
    assert [(b.text, b.line) for b in doc.items[0].blocks] == [("note right after", 2)]
    assert [(b.kind, b.line, b.last) for b in doc.blocks if not b.quoted] == [("code", 4, 6)]
    empty = markdown.parse_text("- [ ] a\n\n  -\n").item_at(3)  # right under "a", "-" would underline it
    assert empty is not None and empty.content == "" and empty.position(0) == (3, 3)


def test_roles() -> None:
    text = (
        "# L\n\n- Sub\n  - [X] Task\n    - remark\n    - [Nested](http://n) paper\n"
        "* [Nav](other.md)\n* [Paper](http://p) by A B\n- `[x]` code is no checkbox\n- [x](u) is a link\n"
    )
    doc = markdown.parse_text(text)
    assert [(i.line, i.role, i.checkbox) for i in doc.items] == [
        (3, "subtopic", None), (4, "paper", "X"), (5, "note", None), (6, "paper", None),
        (7, "nav", None), (8, "paper", None), (9, "subtopic", None), (10, "paper", None),
    ]
    assert doc.item_at(6).topic == ("L", "Sub")  # type: ignore[union-attr]


def test_plain_text() -> None:
    assert markdown.plain_text("**Bold** and *emph* and `code` title") == "Bold and emph and code title"
    assert markdown.plain_text("Mittal_Animating_Face_using_Audio") == "Mittal_Animating_Face_using_Audio"
    assert markdown.plain_text(r"What? A \[weird\] title &amp; more") == "What? A [weird] title & more"
    assert markdown.plain_text("**unclosed and a * b") == "**unclosed and a * b"
    assert markdown.clean_name("Hosted Papers :open_file_folder:") == "Hosted Papers"


# ------------------------------------------------------------------------------------- reader = writer


@needs_corpus
@pytest.mark.parametrize("catalog", LISTS, ids=lambda p: p.parent.name if p.name == "README.md" else p.stem)
def test_an_entry_added_under_a_topic_is_read_back_under_it(tmp_path: Path, catalog: Path) -> None:
    """For every topic the reader reports, the writer files a new entry exactly there."""
    topics = sorted({tuple(e.topic) for e in parse_catalog(catalog).entries})
    assert topics
    for n, topic in enumerate(topics):
        path = tmp_path / f"{n}" / catalog.parent.name / catalog.name  # a list without headings is
        path.parent.mkdir(parents=True)  # its folder's topic
        shutil.copyfile(catalog, path)
        old = parse_catalog(path).entries
        assert add_entry(path, list(topic), f"- [ ] Zzz new entry number {n}.").changed
        new = parse_catalog(path).entries
        added = [e for e in new if e.title == f"Zzz new entry number {n}"]
        assert len(added) == 1 and tuple(added[0].topic) == topic, (topic, added)
        assert len(new) == len(old) + 1
