"""`kb show`, `kb mark`, `kb add`, `kb export` end to end: the real CLI in a subprocess, on copies of the
user's library and of pwl-dev folders, read back with `kb list --json` like a user would check.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import bibtexparser
import pytest

from tests.conftest import ODD, PWL, USERLIB, run_kb
from tests.test_organize import make_world

PWL_FOLDERS = ("caching", "digital_currency", "garbage_collection")  # small; one is a scan without text
JL = PWL / "sublinear_algorithms" / "An-Elementary-Proof-of-a-Theorem-of-Johnson-and-Lindenstrauss.pdf"
GAN_TOPIC = "GAN/StyleGAN and its derivative"


@pytest.fixture(scope="session")
def mixed_index(tmp_path_factory: pytest.TempPathFactory, userlib_index: Path) -> Path:
    """A warm index of userlib + three pwl-dev folders; tests copy it (its cache makes copies fast)."""
    _lib, index = make_world(tmp_path_factory.mktemp("mixed"), userlib_index, pwl=PWL_FOLDERS)
    return index


@pytest.fixture
def mixed(tmp_path: Path, mixed_index: Path) -> tuple[Path, Path]:
    return make_world(tmp_path, mixed_index, pwl=PWL_FOLDERS)


def kb(lib: Path, index: Path, *args: str):  # type: ignore[no-untyped-def]
    return run_kb(*args, "--index", str(index), cwd=lib)


def listed(lib: Path, index: Path) -> dict[str, dict]:
    result = kb(lib, index, "list", "--json")
    assert result.returncode == 0, result.stderr
    return {p["id"]: p for p in json.loads(result.stdout)}


def flipped(before: bytes, after: bytes) -> list[tuple[bytes, bytes]]:
    assert len(before) == len(after)
    return [(before[i : i + 1], after[i : i + 1]) for i in range(len(before)) if before[i] != after[i]]


# ------------------------------------------------------------------------------------------------- mark

LAST_ENTRY = b"- [ ] (LastOne) The very last entry of the list."


def _variant(name: str) -> bytes:
    data = (USERLIB / "README.md").read_bytes()
    if name == "crlf":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if name == "no-final-newline":
        return data.rstrip(b"\r\n") + b"\n\n" + LAST_ENTRY
    return data


@pytest.mark.parametrize("variant", ["lf", "crlf", "no-final-newline"])
def test_mark_changes_only_the_checkbox_bytes(tmp_path: Path, userlib_index: Path, variant: str) -> None:
    lib, index = make_world(tmp_path, userlib_index, readme=_variant(variant))
    readme = lib / "README.md"
    before = readme.read_bytes()
    names = ["InterFaceGAN", "LastOne"] if variant == "no-final-newline" else ["InterFaceGAN"]
    assert kb(lib, index, "mark", "read", *names).returncode == 0
    r = kb(lib, index, "mark", "unread", "SyncNet")
    assert r.returncode == 0 and "marked unread: syncnet" in r.stdout
    after = readme.read_bytes()
    assert sorted(flipped(before, after)) == sorted([(b" ", b"x")] * len(names) + [(b"x", b" ")])
    assert after.count(b"\r\n") == before.count(b"\r\n")
    if variant == "no-final-newline":
        assert after.endswith(LAST_ENTRY.replace(b"[ ]", b"[x]"))
    papers = listed(lib, index)  # the index reflects it at once
    assert papers["interfacegan"]["read"] is True and papers["syncnet"]["read"] is False
    if variant == "no-final-newline":
        assert papers["lastone"]["read"] is True


def test_mark_several_papers_with_an_unknown_one(mixed: tuple[Path, Path]) -> None:
    lib, index = mixed
    r = kb(lib, index, "mark", "read", "InterFaceGAN", "no such paper zzz", "BEGAN")
    assert r.returncode == 1
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 1 and "no paper matches 'no such paper zzz'; closest titles:" in errors[0]
    papers = listed(lib, index)
    assert papers["interfacegan"]["read"] is True and papers["began"]["read"] is True


def test_mark_a_list_without_checkboxes_says_so(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    lib, index = mixed
    pwl_readme = tmp_path / "pwl" / "digital_currency" / "README.md"
    before = pwl_readme.read_bytes()
    r = kb(lib, index, "mark", "read", "Bitcoin")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "bitcoin" in r.stderr and "has no checkbox" in r.stderr
    assert pwl_readme.read_bytes() == before
    assert listed(lib, index)["bitcoin"]["read"] is None


def test_mark_dry_run_prints_the_diff(mixed: tuple[Path, Path]) -> None:
    lib, index = mixed
    before = (lib / "README.md").read_bytes()
    r = kb(lib, index, "mark", "unread", "StyleGAN2", "--dry-run")
    assert r.returncode == 0
    assert "would mark unread: stylegan2" in r.stdout
    assert "\n-  - [x] (StyleGAN2)" in r.stdout and "\n+  - [ ] (StyleGAN2)" in r.stdout
    assert (lib / "README.md").read_bytes() == before and listed(lib, index)["stylegan2"]["read"] is True


def test_mark_usage_error(mixed: tuple[Path, Path]) -> None:
    lib, index = mixed
    r = kb(lib, index, "mark", "done", "StyleGAN2")
    assert r.returncode == 2 and "kb mark read PAPER" in r.stderr


# ------------------------------------------------------------------------------------------------- show


def test_show_text_and_json(mixed: tuple[Path, Path]) -> None:
    lib, index = mixed
    r = kb(lib, index, "show", "StyleGAN2")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert text.startswith("Analyzing and Improving the Image Quality of StyleGAN\n")
    for expected in ("alias:    StyleGAN2", "topics:   GAN / StyleGAN and its derivative",
                     "venue:    CVPR, Nvidia", "year:     2020", "read:     yes", "[GitHub] https://github.com/NVlabs/stylegan2",
                     "paper/StyleGAN2.pdf (", "catalog:  README.md:103", "abstract:", "related:"):
        assert expected in text, expected
    data = json.loads(kb(lib, index, "show", "StyleGAN2", "--json").stdout)
    assert data["id"] == "stylegan2" and data["read"] is True and data["resolved_by"] == "alias"
    assert data["catalog"] == {"file": "README.md", "line": 103}  # relative to the current directory
    assert any(f["path"].endswith("StyleGAN2.pdf") and f["pages"] > 0 for f in data["files"])
    assert data["summary"]["kind"] == "abstract" and len(data["related"]) == 3
    pwl = json.loads(kb(lib, index, "show", "bitcoin", "--json").stdout)
    assert pwl["read"] is None and pwl["catalog"]["file"].endswith("digital_currency/README.md")
    scan = kb(lib, index, "show", "The Lisp II Garbage Collector")
    assert scan.returncode == 0 and "no-text" in scan.stdout
    missing = kb(lib, index, "show", "zzz qqq nothing like it")
    assert missing.returncode == 1 and missing.stderr.startswith("kb: no paper matches")


# -------------------------------------------------------------------------------------------------- add


def test_add_copy_then_refuse_duplicate_and_broken(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    lib, index = mixed
    readme = lib / "README.md"
    src = tmp_path / "jl.pdf"
    shutil.copyfile(JL, src)
    before = readme.read_bytes()

    plan = kb(lib, index, "add", str(src), "--topic", GAN_TOPIC, "--dry-run")
    assert plan.returncode == 0 and "would copy" in plan.stdout
    assert "\n+  - [ ] An elementary proof" in plan.stdout
    assert readme.read_bytes() == before and not (lib / "paper" / "jl.pdf").exists()

    r = kb(lib, index, "add", str(src), "--topic", GAN_TOPIC)
    assert r.returncode == 0, r.stderr
    assert "entry under GAN / StyleGAN and its derivative at README.md:" in r.stdout
    assert (lib / "paper" / "jl.pdf").read_bytes() == JL.read_bytes() and src.exists()
    new_lines = [ln for ln in readme.read_text(encoding="utf-8").splitlines()
                 if ln not in before.decode("utf-8").splitlines()]
    assert new_lines == ["  - [ ] An elementary proof of a theorem of Johnson and Lindenstrauss. "
                         "[[PDF]](./paper/jl.pdf) 2001."]
    papers = listed(lib, index)
    new = next(p for p in papers.values() if p["files"] == ["paper/jl.pdf"])
    assert new["read"] is False and new["topics"] == [["GAN", "StyleGAN and its derivative"]]

    after_add = readme.read_bytes()
    again = kb(lib, index, "add", str(src), "--topic", "Anything")
    assert again.returncode == 1 and "is already in the library" in again.stderr
    broken = kb(lib, index, "add", str(ODD / "broken-html-saved-as.pdf"), "--topic", "Anything")
    assert broken.returncode == 1 and broken.stderr.count("\n") == 1
    assert "cannot read this PDF" in broken.stderr
    assert readme.read_bytes() == after_add
    assert not (lib / "paper" / "broken-html-saved-as.pdf").exists()


def test_add_move_into_a_pwl_list(mixed: tuple[Path, Path], tmp_path: Path) -> None:
    lib, index = mixed
    cat = tmp_path / "pwl" / "caching" / "README.md"
    src = tmp_path / "incoming.pdf"
    shutil.copyfile(JL, src)
    r = kb(lib, index, "add", str(src), "--topic", "Caching/Sketches", "--catalog", str(cat), "--move",
           "--title", "Johnson-Lindenstrauss, elementary", "--venue", "Random Structures & Algorithms")
    assert r.returncode == 0, r.stderr
    assert not src.exists() and (cat.parent / "incoming.pdf").exists()
    text = cat.read_text(encoding="utf-8")
    assert "* Sketches\n  * [ ] Johnson-Lindenstrauss, elementary. [[PDF]](./incoming.pdf) " \
           "Random Structures & Algorithms, 2001." in text


# ----------------------------------------------------------------------------------------------- export


@pytest.fixture(scope="session")
def all_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """userlib and ALL of pwl-dev, keyword-only (export needs no vectors; this takes seconds)."""
    index = tmp_path_factory.mktemp("all") / "index"
    r = run_kb("ingest", str(USERLIB), str(PWL), "--index", str(index), "--no-embed", cwd=USERLIB)
    assert r.returncode == 0, r.stderr
    return index


def test_export_round_trips_for_all_of_userlib_and_pwl(all_index: Path, tmp_path: Path) -> None:
    papers = json.loads(run_kb("list", "--json", "--index", str(all_index), cwd=tmp_path).stdout)
    assert len(papers) > 150

    bib = run_kb("export", "--format", "bibtex", "--index", str(all_index), cwd=tmp_path)
    assert bib.returncode == 0, bib.stderr
    library = bibtexparser.parse_string(bib.stdout)
    assert library.failed_blocks == [] and len(library.entries) == len(papers)
    assert len({e.key for e in library.entries}) == len(papers)
    assert {e.fields_dict["title"].value.strip("{}") for e in library.entries} >= {"Bitcoin"}

    csl = json.loads(run_kb("export", "-f", "csl-json", "--index", str(all_index), cwd=tmp_path).stdout)
    assert [item["id"] for item in csl] == [e.key for e in library.entries]
    rows = list(csv.DictReader(io.StringIO(run_kb("export", "-f", "csv", "--index", str(all_index),
                                                  cwd=tmp_path).stdout)))
    assert len(rows) == len(papers)
    md = run_kb("export", "-f", "markdown", "--index", str(all_index), cwd=tmp_path).stdout
    assert sum(1 for line in md.splitlines() if line.startswith("- ")) == len(papers)

    out = tmp_path / "read.bib"
    r = run_kb("export", "--read", "--topic", "GAN", "-o", str(out), "--index", str(all_index), cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "" and "wrote" in r.stderr
    want = [p for p in papers if p["read"] and any(t[0] == "GAN" for t in p["topics"])]
    assert len(bibtexparser.parse_file(str(out)).entries) == len(want) > 0

    assert run_kb("export", "-f", "docx", "--index", str(all_index), cwd=tmp_path).returncode == 2
    none = run_kb("export", "--year", "1900", "--index", str(all_index), cwd=tmp_path)
    assert none.returncode == 1 and none.stdout == ""


# ----------------------------------------------------------------------------- issue 8: the user's own list


def test_add_files_under_an_existing_setext_heading(tmp_path: Path) -> None:
    """`Security\\n===` is a topic for writing as for reading: the entry goes under it, no second heading."""
    folder = tmp_path / "security"
    folder.mkdir()
    shutil.copyfile(PWL / "security" / "README.md", folder / "README.md")
    for pdf in sorted((PWL / "security").glob("*.pdf")):
        (folder / pdf.name).symlink_to(pdf)
    index = tmp_path / "index"
    r = run_kb("ingest", str(folder), "--index", str(index), "--no-embed", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    readme = folder / "README.md"
    before = readme.read_bytes()
    src = tmp_path / "jl.pdf"
    shutil.copyfile(JL, src)
    r = run_kb("add", str(src), "--topic", "Security", "--catalog", str(readme), "--index", str(index),
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    old, new = before.splitlines(keepends=True), readme.read_bytes().splitlines(keepends=True)
    # only one line differs: the entry, after the last item of the "Security" part (line 13)
    assert new[:13] == old[:13] and new[14:] == old[13:]
    assert new[13] == (b"* [ ] An elementary proof of a theorem of Johnson and Lindenstrauss. "
                       b"[[PDF]](./jl.pdf) 2001.\n")
    papers = json.loads(run_kb("list", "--json", "--index", str(index), cwd=tmp_path).stdout)
    added = [p for p in papers if p["title"].startswith("An elementary proof")]
    assert len(added) == 1 and added[0]["topics"] == [["Security"]] and added[0]["year"] == 2001
    topics = sorted({tuple(t) for p in papers for t in p["topics"]})
    assert topics == [("Security",), ("Security", "Hardware Security")]


def test_a_title_written_with_underscores_is_matched_by_its_words(tmp_path: Path,
                                                                  userlib_index: Path) -> None:
    lib, index = make_world(tmp_path, userlib_index)
    title = "Mittal_Animating_Face_using_Disentangled_Audio_Representations"
    for words in ("Mittal Animating Face using Disentangled Audio Representations",
                  "animating face using disentangled audio"):
        shown = kb(lib, index, "show", words, "--json")
        assert shown.returncode == 0, shown.stderr
        data = json.loads(shown.stdout)
        assert data["title"] == title and data["resolved_by"] == "title"
    readme = lib / "README.md"
    before = readme.read_bytes()
    r = kb(lib, index, "mark", "unread", "animating face using disentangled audio representations")
    assert r.returncode == 0, r.stderr
    assert flipped(before, readme.read_bytes()) == [(b"x", b" ")]
    assert before.split(b"\n")[46].startswith(b"  - [x] [Mittal_Animating_Face")


def test_mark_reads_and_writes_a_capital_x(tmp_path: Path, userlib_index: Path) -> None:
    data = (USERLIB / "README.md").read_bytes()
    assert data.count(b"- [x] (StyleGAN2)") == 1
    capital = data.replace(b"- [x] (StyleGAN2)", b"- [X] (StyleGAN2)")
    lib, index = make_world(tmp_path, userlib_index, readme=capital)
    readme = lib / "README.md"
    assert listed(lib, index)["stylegan2"]["read"] is True
    r = kb(lib, index, "mark", "read", "StyleGAN2")
    assert r.returncode == 0 and "already" in r.stdout + r.stderr
    before = readme.read_bytes()
    assert kb(lib, index, "mark", "unread", "StyleGAN2").returncode == 0
    assert flipped(before, readme.read_bytes()) == [(b"X", b" ")]
    assert listed(lib, index)["stylegan2"]["read"] is False
