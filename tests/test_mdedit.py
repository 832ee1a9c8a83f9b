"""Edits of the user's reading list change only what they must, byte for byte, on the real catalogs."""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from kb.catalog import parse_catalog
from kb.mdedit import (
    BadEntry,
    EditError,
    FileChanged,
    LineMismatch,
    NoCheckbox,
    PdfAlreadyLinked,
    add_entry,
    add_pdf_link,
    file_digest,
    format_entry,
    set_read,
)
from kb.models import Link
from tests.conftest import ODD, PWL, USERLIB

CHECKBOX = re.compile(rb"^[ \t]*[-*+][ \t]+\[([ xX])\]")
PWL_READMES = sorted(PWL.glob("*/README.md"))


def _copy(src: Path, tmp_path: Path, name: str = "README.md") -> Path:
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def _task_lines(data: bytes) -> list[tuple[int, bytes]]:
    """(1-based line, mark) of every checkbox item, line breaks counted as kb counts them."""
    lines = re.findall(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", data)
    out = []
    for i, line in enumerate(lines, 1):
        body = line[3:] if i == 1 and line.startswith(b"\xef\xbb\xbf") else line
        match = CHECKBOX.match(body)
        if match:
            out.append((i, match.group(1)))
    return out


def _userlib_variant(variant: str, head: str = "", tail: bytes = b"") -> tuple[bytes, str]:
    """userlib's list with CRLF, no final newline (``tail`` after it), a BOM or in latin-1 (``head`` before
    it): (bytes, encoding)."""
    data, encoding = (USERLIB / "README.md").read_bytes(), "utf-8"
    if variant == "crlf":
        data = data.replace(b"\n", b"\r\n")
    if variant == "no-final-newline":
        data = data.rstrip(b"\n") + tail
    if variant == "bom":
        data = b"\xef\xbb\xbf" + head.encode() + data
    if variant == "latin-1":
        encoding = "latin-1"
        data = head.encode(encoding) + data.decode("utf-8").encode(encoding, errors="replace")
    return data, encoding


def _only_one_byte_differs(old: bytes, new: bytes, expected_new: bytes) -> None:
    assert len(old) == len(new)
    diffs = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert len(diffs) == 1
    assert new[diffs[0] : diffs[0] + 1] == expected_new


# ------------------------------------------------------------------------------------------------ set_read


def test_flip_every_item_of_userlib_changes_one_byte(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    original = path.read_bytes()
    items = _task_lines(original)
    assert len(items) > 50
    for line, mark in items:
        before = path.read_bytes()
        want_read = mark == b" "
        result = set_read(path, line, want_read, expected_digest=file_digest(path))
        assert result.changed, result.message
        _only_one_byte_differs(before, path.read_bytes(), b"x" if want_read else b" ")
        set_read(path, line, not want_read)
    # [X] items come back as [x] only if they were [x]; userlib has none, so everything is identical
    assert path.read_bytes() == original


def test_idempotent_marking_says_so(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    line, mark = next((n, m) for n, m in _task_lines(path.read_bytes()) if m == b"x")
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    result = set_read(path, line, True)
    assert not result.changed
    assert "already marked read" in result.message
    assert result.diff == ""
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime


def test_uppercase_x_star_plus_bullets_and_indentation(tmp_path: Path) -> None:
    text = b"# T\n\n* [X] upper\n+ [ ] plus\n\t- [ ] tab indented\n      1. [ ] ordered\n- [x] done\n"
    path = tmp_path / "list.md"
    path.write_bytes(text)
    assert not set_read(path, 3, True).changed  # [X] already read
    set_read(path, 3, False)
    assert path.read_bytes() == text.replace(b"[X] upper", b"[ ] upper")
    for line in (4, 5, 6):
        set_read(path, line, True)
    assert path.read_bytes() == (
        b"# T\n\n* [ ] upper\n+ [x] plus\n\t- [x] tab indented\n      1. [x] ordered\n- [x] done\n"
    )


@pytest.mark.parametrize("variant", ["crlf", "no-final-newline", "bom", "latin-1", "cr", "bom-crlf"])
def test_byte_exact_on_encodings_and_line_endings(tmp_path: Path, variant: str) -> None:
    data = (USERLIB / "README.md").read_bytes()
    if variant in ("crlf", "bom-crlf"):
        data = data.replace(b"\n", b"\r\n")
    if variant == "cr":
        data = data.replace(b"\n", b"\r")
    if variant == "no-final-newline":
        data = data.rstrip(b"\n") + b"\n- [ ] last item without newline"
    if variant.startswith("bom"):
        data = b"\xef\xbb\xbf- [ ] first line item\n" + data
    if variant == "latin-1":
        # A latin-1 list: the accented bytes are not valid UTF-8 and must survive untouched.
        data = "# Lectures\n\n- [ ] Café Société: réseaux à grande échelle.\n".encode("latin-1") + \
            data.decode("utf-8").encode("latin-1", errors="replace")
    path = tmp_path / "README.md"
    path.write_bytes(data)
    items = _task_lines(data)
    targets = [items[0], items[len(items) // 2], items[-1]]
    for line, mark in targets:
        before = path.read_bytes()
        result = set_read(path, line, mark == b" ")
        assert result.changed
        _only_one_byte_differs(before, path.read_bytes(), b"x" if mark == b" " else b" ")
    for line, mark in targets:
        set_read(path, line, mark != b" ")
    assert path.read_bytes() == data


@pytest.mark.parametrize("readme", PWL_READMES, ids=lambda p: p.parent.name)
def test_pwl_lists_have_no_checkbox_and_stay_untouched(tmp_path: Path, readme: Path) -> None:
    path = _copy(readme, tmp_path)
    original = path.read_bytes()
    lines = original.decode("utf-8").split("\n")
    item = next(i for i, line in enumerate(lines, 1) if re.match(r"^\s*[*-] \S", line))
    with pytest.raises(NoCheckbox, match="no checkbox.*does not track read state"):
        set_read(path, item, True)
    assert path.read_bytes() == original


def test_line_errors_are_one_line(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    for bad in (0, 10_000):
        with pytest.raises(LineMismatch) as info:
            set_read(path, bad, True)
        assert "\n" not in str(info.value)
    with pytest.raises(LineMismatch, match="not a list item"):
        set_read(path, 1, True)  # the "# PaperList" heading
    line = next(n for n, _ in _task_lines(path.read_bytes()))
    with pytest.raises(LineMismatch, match="does not hold"):
        set_read(path, line, True, expect_text="A title that is elsewhere")
    text = path.read_bytes().decode().split("\n")[line - 1]
    title = re.search(r"\[([^\]]+)\]\(", text).group(1)  # type: ignore[union-attr]
    assert set_read(path, line, True, expect_text=title.upper(), dry_run=True).changed


def test_file_changed_refusal(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    digest = file_digest(path)
    with path.open("ab") as handle:
        handle.write(b"- [ ] added by the user in their editor\n")
    edited = path.read_bytes()
    line = _task_lines(edited)[0][0]
    with pytest.raises(FileChanged, match="changed on disk since kb read it; run again"):
        set_read(path, line, True, expected_digest=digest)
    with pytest.raises(FileChanged):
        add_entry(path, ["GAN"], format_entry("X", "./paper/x.pdf"), expected_digest=digest)
    assert path.read_bytes() == edited
    assert isinstance(FileChanged("x"), EditError)


def test_dry_run_writes_nothing_and_gives_a_diff(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    before = path.read_bytes()
    line = next(n for n, m in _task_lines(before) if m == b" ")
    result = set_read(path, line, True, dry_run=True)
    assert result.changed and "would mark" in result.message
    assert result.diff.startswith("--- a/README.md\n+++ b/README.md\n")
    minus = [d for d in result.diff.splitlines() if d.startswith("-") and not d.startswith("---")]
    plus = [d for d in result.diff.splitlines() if d.startswith("+") and not d.startswith("+++")]
    assert len(minus) == len(plus) == 1 and "[ ]" in minus[0] and "[x]" in plus[0]
    added = add_entry(path, ["Survey"], format_entry("A New Survey", "./paper/s.pdf"), dry_run=True)
    assert added.changed and "+- [ ] A New Survey. [[PDF]](./paper/s.pdf)" in added.diff
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_write_keeps_mode_and_symlink(tmp_path: Path) -> None:
    real = _copy(USERLIB / "README.md", tmp_path, "real.md")
    os.chmod(real, 0o640)
    link = tmp_path / "README.md"
    link.symlink_to(real)
    line = next(n for n, m in _task_lines(real.read_bytes()) if m == b" ")
    set_read(link, line, True)
    assert link.is_symlink()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert dict(_task_lines(real.read_bytes()))[line] == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "real.md"]


# ----------------------------------------------------------------------------------------------- add_entry


def _inserted(old: bytes, new: bytes) -> tuple[int, list[bytes]]:
    """Where lines were inserted into ``old`` to give ``new`` (and check nothing else moved)."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    start = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
    count = len(b) - len(a)
    assert b[:start] + b[start + count :] == a
    return start, b[start : start + count]


def test_add_under_existing_subtopic_of_userlib(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    old = path.read_bytes()
    entry = format_entry("Alias-Free Generative Adversarial Networks", "./paper/StyleGAN3.pdf",
                         "NeurIPS", 2021, alias="StyleGAN3")
    result = add_entry(path, ["gan", "StyleGAN AND its derivative"], entry, expected_digest=file_digest(path))
    assert result.changed
    start, lines = _inserted(old, path.read_bytes())
    assert lines == [b"  - [ ] (StyleGAN3) Alias-Free Generative Adversarial Networks. "
                     b"[[PDF]](./paper/StyleGAN3.pdf) NeurIPS, 2021.\n"]
    text = old.decode().splitlines()
    assert "(InterFaceGAN)" in text[start - 1]  # after the last item of the sub-topic
    assert text[start].startswith("- [ ] (BEGAN)")  # before the next top-level GAN item
    again = add_entry(path, ["GAN", "StyleGAN and its derivative"], entry)
    assert not again.changed and "already" in again.message


def test_add_under_existing_heading_and_nested_bullet(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    old = path.read_bytes()
    add_entry(path, ["Emotion", "Emotion recognition", "Visual emotion recognition"], "- [ ] Deep FER.")
    start, lines = _inserted(old, path.read_bytes())
    assert lines == [b"    - [ ] Deep FER.\n"]
    assert "Facial Emotion Recognition Using Computer Vision" in old.decode().splitlines()[start - 1]

    old = path.read_bytes()
    add_entry(path, ["Lip reading"], "[x] LipNet.")
    start, lines = _inserted(old, path.read_bytes())
    assert lines == [b"- [x] LipNet.\n"]
    assert "(SyncNet)" in old.decode().splitlines()[start - 1]


def test_add_under_empty_heading_and_new_subtopic(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    old = path.read_bytes()
    add_entry(path, ["Video prediction / generation"], format_entry("MoCoGAN", None, "CVPR", 2018))
    heading = b"#### Video prediction / generation\n"
    assert path.read_bytes() == old.replace(heading, heading + b"\n- [ ] MoCoGAN. CVPR, 2018.\n")

    old = path.read_bytes()
    add_entry(path, ["GAN", "Diffusion"], format_entry("DDPM", "./paper/ddpm.pdf"))
    start, lines = _inserted(old, path.read_bytes())
    assert lines == [b"- Diffusion\n", b"  - [ ] DDPM. [[PDF]](./paper/ddpm.pdf)\n"]
    assert old.decode().splitlines()[start - 1].startswith("- [ ] (BEGAN)")


def test_add_under_new_heading_at_end(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    old = path.read_bytes()
    entry = format_entry("NeRF", "./paper/nerf.pdf", "ECCV", 2020)
    assert add_entry(path, ["Neural Rendering", "NeRF"], entry).changed
    expected = b"\n#### Neural Rendering\n\n- NeRF\n  - [ ] NeRF. [[PDF]](./paper/nerf.pdf) ECCV, 2020.\n"
    assert path.read_bytes() == old + expected


def test_add_to_pwl_uses_star_bullets_and_next_heading_level(tmp_path: Path) -> None:
    path = _copy(PWL / "datastores" / "README.md", tmp_path)
    old = path.read_bytes()
    add_entry(path, ["Datastores"], "- [ ] Spanner.")
    start, lines = _inserted(old, path.read_bytes())
    assert lines == [b"* [ ] Spanner.\n"]
    old = path.read_bytes()
    add_entry(path, ["Stream processing"], "- [ ] MillWheel.")
    # The file ends with a blank line: the new section goes after the last text, the blank line stays last.
    assert old.endswith(b".pdf)\n\n")
    assert path.read_bytes() == old[:-1] + b"\n## Stream processing\n\n* [ ] MillWheel.\n\n"


@pytest.mark.parametrize("variant", ["crlf", "no-final-newline", "bom", "latin-1"])
def test_add_keeps_line_endings_encoding_and_final_newline(tmp_path: Path, variant: str) -> None:
    data, encoding = _userlib_variant(variant, head="- [ ] Café.\n" if variant == "latin-1" else "")
    path = tmp_path / "README.md"
    path.write_bytes(data)
    nl = b"\r\n" if variant == "crlf" else b"\n"
    add_entry(path, ["GAN", "StyleGAN and its derivative"], "- [ ] Déjà vu GAN.")
    new = path.read_bytes()
    assert "  - [ ] Déjà vu GAN.".encode(encoding) + nl in new
    add_entry(path, ["Brand new"], "- [ ] Ünïcode entry.")
    new = path.read_bytes()
    tail = nl + b"#### Brand new" + nl + nl + "- [ ] Ünïcode entry.".encode(encoding)
    if variant == "no-final-newline":
        assert new.endswith(tail) and not new.endswith(b"\n")
    else:
        assert new.endswith(tail + nl)
    if variant == "crlf":
        assert new.count(b"\n") == new.count(b"\r\n")
    if variant == "bom":
        assert new.startswith(b"\xef\xbb\xbf") and new.count(b"\xef\xbb\xbf") == 1


def test_add_refuses_what_the_file_cannot_hold(tmp_path: Path) -> None:
    path = tmp_path / "l.md"
    path.write_bytes("#### A\n\n- [ ] caf\xe9\n".encode("latin-1"))
    with pytest.raises(BadEntry, match="encoding"):
        add_entry(path, ["A"], "- [ ] 中文标题")
    with pytest.raises(BadEntry):
        add_entry(path, ["A"], "- [ ] two\n- [ ] lines")
    assert path.read_bytes() == "#### A\n\n- [ ] caf\xe9\n".encode("latin-1")


def test_add_under_setext_headings_of_the_security_list(tmp_path: Path) -> None:
    """``Security\\n===`` is the topic "Security" for the writer as for the reader: no second heading."""
    path = _copy(PWL / "security" / "README.md", tmp_path)
    old = path.read_bytes()
    assert add_entry(path, ["Security"], "- [ ] Spectre Returns.").changed
    start, lines = _inserted(old, path.read_bytes())
    assert (start, lines) == (13, [b"* [ ] Spectre Returns.\n"])  # after the last item before "## Hardware"
    assert old.decode().splitlines()[start - 1].startswith("* :scroll: [Insertion, Evasion")

    old = path.read_bytes()
    assert add_entry(path, ["Security", "Hardware Security"], "- [ ] Rowhammer.js.").changed
    assert path.read_bytes() == old + b"* [ ] Rowhammer.js.\n"  # after the SoK remarks, at the top level
    topics = {e.title: e.topic for e in parse_catalog(path).entries}
    assert topics["Spectre Returns"] == ["Security"]
    assert topics["Rowhammer.js"] == ["Security", "Hardware Security"]


def test_add_under_a_setext_level_two_heading(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_bytes(b"Papers\r\n======\r\n\r\nVision\r\n------\r\n\r\n+ [ ] ViT\r\n\r\nAudio\r\n-----\r\n")
    add_entry(path, ["Papers", "Vision"], "- [ ] Swin")
    add_entry(path, ["Audio"], "- [ ] Wav2Vec")
    assert path.read_bytes() == (
        b"Papers\r\n======\r\n\r\nVision\r\n------\r\n\r\n+ [ ] ViT\r\n+ [ ] Swin\r\n\r\n"
        b"Audio\r\n-----\r\n\r\n+ [ ] Wav2Vec\r\n"
    )


def test_add_under_a_heading_with_emoji_shortcode(tmp_path: Path) -> None:
    path = _copy(PWL / "sublinear_algorithms" / "README.md", tmp_path)
    old = path.read_bytes()
    assert old.endswith(b"60-65.*\n\n")
    add_entry(path, ["Sublinear Algorithms", "Hosted Papers"], "- [ ] HyperLogLog.")
    # after the last remark paragraph of the last item: a blank line, then the item
    assert path.read_bytes() == old[:-1] + b"\n* [ ] HyperLogLog.\n\n"


def test_headings_in_code_fences_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "l.md"
    path.write_text("## Notes\n\n```\n## GAN\n```\n\n## Other\n\n- [ ] x\n")
    add_entry(path, ["GAN"], "- [ ] y")
    assert path.read_text().endswith("- [ ] x\n\n## GAN\n\n- [ ] y\n")


# -------------------------------------------------------------------------------------------- format_entry


def test_format_entry() -> None:
    assert format_entry("Analyzing and Improving the Image Quality of StyleGAN", "./paper/StyleGAN2.pdf",
                        "CVPR", 2020, alias="StyleGAN2") == (
        "- [ ] (StyleGAN2) Analyzing and Improving the Image Quality of StyleGAN. "
        "[[PDF]](./paper/StyleGAN2.pdf) CVPR, 2020."
    )
    assert format_entry("What?  A [weird]\ntitle", "./paper/a b (v2).pdf") == (
        r"- [ ] What? A \[weird\] title. [[PDF]](./paper/a b %28v2%29.pdf)"
    )
    assert format_entry("T.", None, year=2019) == "- [ ] T. 2019."


# -------------------------------------------------------------------------------------------- add_pdf_link


def _inserted_at(old: bytes, new: bytes, *pieces: bytes) -> int:
    """Where one of ``pieces`` was inserted into ``old`` to give ``new`` (nothing else may differ); the
    rightmost place when several give the same bytes ("avatars. ECCV" + " [[PDF]](x)" after "avatars.")."""
    first = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), len(old))
    for piece in pieces:
        for at in range(first, max(-1, first - len(piece) - 1), -1):
            if new[at : at + len(piece)] == piece and new[:at] + new[at + len(piece) :] == old:
                return at
    raise AssertionError(f"not one insertion of {pieces}: {new[first - 20 : first + 60]!r}")


@pytest.mark.parametrize("catalog", [USERLIB / "README.md", *PWL_READMES], ids=lambda p: p.parent.name)
def test_add_pdf_link_to_every_entry_without_one(tmp_path: Path, catalog: Path) -> None:
    """Each entry of a real list that has no PDF gets exactly `` [[PDF]](...)`` (or its empty one filled),
    reads back with that PDF, and every other field of every entry stays as it was."""
    path = _copy(catalog, tmp_path)
    original = path.read_bytes()
    before = parse_catalog(path).entries
    todo = [e for e in before if not any(link.label == "PDF" for link in e.links)]
    assert todo or catalog.parent.name in ("caching", "digital_currency", "information_retrieval",
                                           "quantum_computing", "sublinear_algorithms")
    for entry in todo:
        path.write_bytes(original)
        result = add_pdf_link(path, entry.line, "./paper/new file.pdf", expected_digest=file_digest(path))
        assert result.changed and result.digest == file_digest(path)
        # " [[PDF]](x)" after the title, or the target of an empty "[[PDF]]()"
        _inserted_at(original, path.read_bytes(), b" [[PDF]](./paper/new file.pdf)", b"./paper/new file.pdf")
        after = parse_catalog(path).entries
        changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert len(changed) == 1 and changed[0][0].line == entry.line
        old, new = changed[0]
        assert Link("PDF", "./paper/new file.pdf") in new.links
        assert [link for link in new.links if link.label != "PDF"] == \
            [link for link in old.links if link.label != "PDF"]
        assert (new.title, new.alias, new.venue, new.year, new.org, new.authors, new.notes, new.topic) == \
            (old.title, old.alias, old.venue, old.year, old.org, old.authors, old.notes, old.topic)


def test_add_pdf_link_places_it_in_the_list_style(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    text = path.read_bytes().decode().splitlines()

    def line_of(prefix: str) -> int:
        return next(n for n, line in enumerate(text, 1) if line.lstrip().startswith(prefix))

    cases = {
        # a plain title: after its words and period, before the venue
        "- [ ] Fast bi-layer": b"- [ ] Fast bi-layer neural synthesis of oneshot realistic head avatars. "
                               b"[[PDF]](./paper/x.pdf) ECCV, 2020.",
        # a title link, even an empty one: right after it
        "- [ ] [Few-shot video-to-video": b"  - [ ] [Few-shot video-to-video synthesis.]() "
                                         b"[[PDF]](./paper/x.pdf) NeurIPS, 2019.",
        "- [ ] [Robust One Shot": b"- [ ] [Robust One Shot Audio to Video Generation]"
                                  b"(https://ieeexplore.ieee.org/document/9150729) [[PDF]](./paper/x.pdf)",
        # only an alias
        "- [ ] (3DMM)": b"- [ ] (3DMM) [[PDF]](./paper/x.pdf)",
        # an empty [[PDF]]() is filled
        "- [ ] [Arbitrary style": b"- [ ] [Arbitrary style transfer in real-time with adaptive instance "
                                  b"normalization.](https://arxiv.org/abs/1703.06868) [[PDF]](./paper/x.pdf) "
                                  b"ICCV, 2017. (AdaIN)",
    }
    original = path.read_bytes()
    for prefix, expected in cases.items():
        path.write_bytes(original)
        line = line_of(prefix)
        add_pdf_link(path, line, "./paper/x.pdf")
        assert path.read_bytes().split(b"\n")[line - 1] == expected


def test_add_pdf_link_after_a_wrapped_title_and_before_labelled_links(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_bytes(b"# T\r\n\r\n* [A title that\r\n  wraps](http://x.org) by A B\r\n"
                     b"* Plain title. [[Code]](http://c.org) ICML, 2021.\r\n")
    add_pdf_link(path, 3, "wraps.pdf")
    add_pdf_link(path, 5, "plain.pdf")
    assert path.read_bytes() == (
        b"# T\r\n\r\n* [A title that\r\n  wraps](http://x.org) [[PDF]](wraps.pdf) by A B\r\n"
        b"* Plain title. [[PDF]](plain.pdf) [[Code]](http://c.org) ICML, 2021.\r\n"
    )


@pytest.mark.parametrize("variant", ["crlf", "no-final-newline", "bom", "latin-1"])
def test_add_pdf_link_is_byte_exact(tmp_path: Path, variant: str) -> None:
    head = {"bom": "- [ ] First One.\n", "latin-1": "- [ ] Café One.\n"}.get(variant, "")
    data, encoding = _userlib_variant(variant, head, tail=b"\n- [ ] Last one. ICCV, 2019.")
    path = tmp_path / "README.md"
    path.write_bytes(data)
    nl = b"\r\n" if variant == "crlf" else b"\n"
    lines = data.split(nl)
    fast = next(n for n, line in enumerate(lines, 1) if line.startswith(b"- [ ] Fast bi-layer"))
    targets = [fast] + ([1] if variant in ("bom", "latin-1") else []) + \
        ([len(lines)] if variant == "no-final-newline" else [])
    for line in targets:
        before = path.read_bytes()
        add_pdf_link(path, line, "./paper/é.pdf")
        at = _inserted_at(before, path.read_bytes(), " [[PDF]](./paper/é.pdf)".encode(encoding))
        assert before[:at].endswith({fast: b"avatars.", 1: "One.".encode(encoding)}.get(line, b"Last one."))
    new = path.read_bytes()
    assert new.count(nl) == data.count(nl) and new.endswith(b"ICCV, 2019." if variant == "no-final-newline"
                                                            else nl)
    assert new.startswith(b"\xef\xbb\xbf- [ ] First One. [[PDF]]") == (variant == "bom")


def test_add_pdf_link_refuses(tmp_path: Path) -> None:
    path = _copy(USERLIB / "README.md", tmp_path)
    original = path.read_bytes()
    stylegan = next(e for e in parse_catalog(path).entries if e.alias == "StyleGAN")
    with pytest.raises(PdfAlreadyLinked, match=r"README.md:102 already links a PDF \(./paper/StyleGAN.pdf\)"):
        add_pdf_link(path, stylegan.line, "./paper/other.pdf")
    with pytest.raises(LineMismatch, match="not a list item"):
        add_pdf_link(path, 1, "./paper/other.pdf")
    with pytest.raises(LineMismatch, match="not a paper entry"):
        add_pdf_link(path, 10, "./paper/other.pdf")  # "- 3D based approaches", a sub-topic
    with pytest.raises(BadEntry):
        add_pdf_link(path, 61, "two\nlines.pdf")
    digest = file_digest(path)
    with path.open("ab") as handle:
        handle.write(b"- [ ] added by the user\n")
    with pytest.raises(FileChanged):
        add_pdf_link(path, 61, "./paper/x.pdf", expected_digest=digest)
    assert path.read_bytes() == original + b"- [ ] added by the user\n"
    for name, line in (("caching", 3), ("security", 12), ("operating_systems", 3)):
        pwl = _copy(PWL / name / "README.md", tmp_path, f"{name}.md")  # [:scroll:](x.pdf), [Title](x.pdf)
        with pytest.raises(PdfAlreadyLinked):
            add_pdf_link(pwl, line, "x.pdf")
        assert pwl.read_bytes() == (PWL / name / "README.md").read_bytes()


def test_add_pdf_link_dry_run(tmp_path: Path) -> None:
    path = _copy(ODD / "catalog-mojibake.md", tmp_path)
    before = path.read_bytes()
    result = add_pdf_link(path, 61, "./paper/fast.pdf", dry_run=True)
    assert result.changed and "would link the PDF of README.md:61" in result.message
    assert "+- [ ] Fast bi-layer neural synthesis of oneshot realistic head avatars. " \
        "[[PDF]](./paper/fast.pdf) ECCV, 2020.\n" in result.diff
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
