"""kb.organize on a real index of a copy of the user's library: show, mark, add, export.

Every test that writes gets its own world: the reading list copied into tmp_path, the PDFs symlinked
file by file (so nothing is ever written into ../shared), and a copy of the session index re-ingested
over that copy. The copied index carries its content-hash cache, so the re-ingest reuses every
extraction and embedding and takes about a second.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import bibtexparser
import pytest

from kb import UsageError, mdedit, organize
from kb.ingest import IngestOptions, ingest
from kb.listing import Filters
from kb.storage.store import open_generation
from tests.conftest import ODD, PWL, USERLIB

GAN_TOPIC = ["GAN", "StyleGAN and its derivative"]
PEERCOIN = PWL / "digital_currency" / "peercoin.pdf"  # 6 pages: quick to embed


def make_world(
    tmp: Path, src_index: Path, readme: bytes | None = None, pwl: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """A writable copy of userlib (and of some pwl-dev folders) with its own warm index: (lib, index)."""
    lib = tmp / "lib"
    (lib / "paper").mkdir(parents=True)
    (lib / "README.md").write_bytes(readme if readme is not None else (USERLIB / "README.md").read_bytes())
    for pdf in sorted((USERLIB / "paper").iterdir()):
        (lib / "paper" / pdf.name).symlink_to(pdf)
    folders = [lib]
    for name in pwl:
        folder = tmp / "pwl" / name
        folder.mkdir(parents=True)
        shutil.copyfile(PWL / name / "README.md", folder / "README.md")
        for pdf in sorted((PWL / name).glob("*.pdf")):
            (folder / pdf.name).symlink_to(pdf)
    if pwl:
        folders.append(tmp / "pwl")
    index = tmp / "index"
    shutil.copytree(src_index, index)
    report = ingest(IngestOptions(folders=folders, index_dir=index, cwd=lib))
    assert report.failed == []
    return lib, index


@pytest.fixture
def world(tmp_path: Path, userlib_index: Path) -> tuple[Path, Path]:
    return make_world(tmp_path, userlib_index)


def _paper(index: Path, paper_id: str):  # type: ignore[no-untyped-def]
    gen = open_generation(index)
    try:
        return gen.paper(paper_id)
    finally:
        gen.close()


def _diff_positions(a: bytes, b: bytes) -> list[int]:
    assert len(a) == len(b)
    return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


# ------------------------------------------------------------------------------------------------- show


def test_show_gathers_files_summary_and_related(userlib_index: Path) -> None:
    gen = open_generation(userlib_index)
    try:
        d = organize.show_paper(gen, "StyleGAN2")
    finally:
        gen.close()
    assert d.paper.id == "stylegan2" and d.method == "alias"
    assert d.paper.catalog is not None and d.paper.catalog.line > 0
    assert {Path(f.path).name for f in d.files} >= {"StyleGAN2.pdf"}
    assert all(f.pages > 0 for f in d.files)
    assert d.summary_kind == "abstract" and "StyleGAN" in (d.summary or "")
    assert len(d.related) == 3 and "stylegan2" not in {r.paper.id for r in d.related}
    assert "stylegan" in {r.paper.id for r in d.related}


def test_show_catalog_only_paper_has_no_files_but_still_related(userlib_index: Path) -> None:
    gen = open_generation(userlib_index)
    try:
        d = organize.show_paper(gen, "paGAN: real-time avatars using dynamic textures")
    finally:
        gen.close()
    assert d.files == [] and d.paper.status == "no-pdf"
    assert len(d.related) == 3


# ------------------------------------------------------------------------------------------------- mark


def test_mark_flips_only_the_checkboxes_and_the_index_follows(world: tuple[Path, Path]) -> None:
    lib, index = world
    before = (lib / "README.md").read_bytes()
    assert _paper(index, "stylegan2").read is True and _paper(index, "interfacegan").read is False
    report = organize.mark(index, ["StyleGAN2", "InterFaceGAN", "SyncNet"], read=False)
    assert report.failed == []
    assert [o.result.changed for o in report.outcomes] == [True, False, True]  # interfacegan: already unread
    after = (lib / "README.md").read_bytes()
    positions = _diff_positions(before, after)
    assert len(positions) == 2
    assert all(before[i : i + 1] == b"x" and after[i : i + 1] == b" " for i in positions)
    assert _paper(index, "stylegan2").read is False and _paper(index, "syncnet").read is False
    assert report.ingest is not None


def test_mark_reports_each_name_and_still_marks_the_others(world: tuple[Path, Path]) -> None:
    lib, index = world
    names = ["no such paper at all", "InterFaceGAN", "talking face", "interfacegan"]
    report = organize.mark(index, names, read=True)
    by_query = {o.query: o for o in report.outcomes}
    assert "closest titles" in (by_query["no such paper at all"].error or "")
    assert "several papers" in (by_query["talking face"].error or "")
    assert by_query["InterFaceGAN"].result is not None and by_query["InterFaceGAN"].result.changed
    assert by_query["interfacegan"].note and by_query["interfacegan"].error is None
    assert len(report.failed) == 2
    assert _paper(index, "interfacegan").read is True


def test_mark_after_a_hand_edit_uses_the_fresh_line(world: tuple[Path, Path]) -> None:
    lib, index = world
    readme = lib / "README.md"
    readme.write_bytes(b"<!-- my own note -->\n" + readme.read_bytes())  # every line moves down by one
    report = organize.mark(index, ["StyleGAN2"], read=False)
    assert report.refreshed and report.failed == []
    line = readme.read_text(encoding="utf-8").splitlines()[report.outcomes[0].paper.catalog.line - 1]
    assert line.lstrip().startswith("- [ ] (StyleGAN2)")


def test_mark_refuses_when_the_file_changes_between_read_and_write(
    world: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    lib, index = world
    readme = lib / "README.md"
    import kb.resolve

    real = kb.resolve.resolve_paper

    def resolve_then_user_saves(gen, query):  # type: ignore[no-untyped-def]
        res = real(gen, query)
        readme.write_bytes(readme.read_bytes() + b"\n- [ ] saved in the editor meanwhile\n")
        return res

    monkeypatch.setattr(kb.resolve, "resolve_paper", resolve_then_user_saves)
    report = organize.mark(index, ["StyleGAN2"], read=False)
    saved = readme.read_bytes()
    assert "changed on disk" in (report.outcomes[0].error or "") and "run again" in report.outcomes[0].error
    assert b"- [x] (StyleGAN2)" in saved and saved.endswith(b"saved in the editor meanwhile\n")


def test_mark_dry_run_writes_nothing(world: tuple[Path, Path]) -> None:
    lib, index = world
    before = (lib / "README.md").read_bytes()
    report = organize.mark(index, ["StyleGAN2"], read=False, dry_run=True)
    assert report.outcomes[0].result.diff.count("\n-  - [x] (StyleGAN2)") == 1
    assert (lib / "README.md").read_bytes() == before and report.ingest is None
    assert _paper(index, "stylegan2").read is True


# -------------------------------------------------------------------------------------------------- add


def test_add_copies_the_pdf_writes_the_entry_and_ingests(world: tuple[Path, Path], tmp_path: Path) -> None:
    lib, index = world
    src = tmp_path / "incoming" / "peercoin (final).pdf"
    src.parent.mkdir()
    shutil.copyfile(PEERCOIN, src)
    before = (lib / "README.md").read_text(encoding="utf-8").splitlines()
    report = organize.add_pdf(index, src, GAN_TOPIC)
    assert report.action == "copied" and src.exists()
    assert report.destination == lib / "paper" / "peercoin _final_.pdf"
    assert report.destination.read_bytes() == PEERCOIN.read_bytes()
    after = (lib / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(after) == len(before) + 1
    new = after[report.line - 1]
    assert new.startswith("  - [ ] PPCoin: Peer-to-Peer Crypto-Currency with Proof-of-Stake. ")
    assert new.endswith("[[PDF]](./paper/peercoin _final_.pdf) 2012.")
    # it went into the StyleGAN sub-list, right after InterFaceGAN
    assert "(InterFaceGAN)" in after[report.line - 2]
    paper = _paper(index, report.paper_id)
    assert paper.read is False and paper.topics == [GAN_TOPIC] and paper.status == "ok"
    assert [Path(f).name for f in paper.files] == ["peercoin _final_.pdf"]
    assert report.warnings == []


def test_add_refuses_duplicates_by_content_and_by_title(world: tuple[Path, Path], tmp_path: Path) -> None:
    lib, index = world
    before = (lib / "README.md").read_bytes()
    with pytest.raises(organize.DuplicatePaper, match="already in the library: stylegan2"):
        organize.add_pdf(index, USERLIB / "paper" / "StyleGAN2.pdf", GAN_TOPIC)
    other_bytes = tmp_path / "sg2-copy.pdf"  # same paper, different file (trailing bytes)
    other_bytes.write_bytes((USERLIB / "paper" / "StyleGAN2.pdf").read_bytes() + b"\n% saved again\n")
    with pytest.raises(organize.DuplicatePaper, match="title is already in the library: stylegan2"):
        organize.add_pdf(index, other_bytes, GAN_TOPIC)
    assert (lib / "README.md").read_bytes() == before
    assert not (lib / "paper" / "sg2-copy.pdf").exists()


def test_add_broken_pdf_writes_nothing(world: tuple[Path, Path]) -> None:
    lib, index = world
    before = (lib / "README.md").read_bytes()
    files = sorted(p.name for p in (lib / "paper").iterdir())
    with pytest.raises(organize.BadPdf, match="cannot read this PDF"):
        organize.add_pdf(index, ODD / "broken-truncated.pdf", GAN_TOPIC)
    with pytest.raises(organize.BadPdf, match="no such file"):
        organize.add_pdf(index, lib / "missing.pdf", GAN_TOPIC)
    assert (lib / "README.md").read_bytes() == before
    assert sorted(p.name for p in (lib / "paper").iterdir()) == files


def test_add_move_dry_run_and_new_heading(world: tuple[Path, Path], tmp_path: Path) -> None:
    lib, index = world
    src = tmp_path / "mac.pdf"
    shutil.copyfile(PEERCOIN, src)
    before = (lib / "README.md").read_bytes()
    plan = organize.add_pdf(index, src, ["Security", "Capabilities"], move=True, dry_run=True)
    assert src.exists() and not plan.destination.exists() and (lib / "README.md").read_bytes() == before
    assert "+#### Security" in plan.edit.diff and "+- Capabilities" in plan.edit.diff
    report = organize.add_pdf(
        index, src, ["Security", "Capabilities"], move=True, title="PPCoin", venue="Self-published", year=2012
    )
    assert not src.exists() and report.destination.exists() and report.action == "moved"
    assert report.entry == "- [ ] PPCoin. [[PDF]](./paper/mac.pdf) Self-published, 2012."
    paper = _paper(index, report.paper_id)
    assert paper.topics == [["Security", "Capabilities"]]
    assert paper.venue == "Self-published" and paper.year == 2012


def test_add_links_a_pdf_already_in_the_library_but_in_no_list(userlib_index: Path, tmp_path: Path) -> None:
    lib, index = make_world(tmp_path, userlib_index)
    loose = lib / "paper" / "peercoin.pdf"
    shutil.copyfile(PEERCOIN, loose)
    ingest(IngestOptions(folders=[lib], index_dir=index, cwd=lib))
    report = organize.add_pdf(index, loose, ["Security"])
    assert report.action == "kept" and report.destination == loose
    paper = _paper(index, report.paper_id)
    assert paper.catalog is not None and paper.topics == [["Security"]]
    # dropped into the folder but not ingested yet: linked where it is, not copied beside itself
    dropped = lib / "paper" / "primecoin.pdf"
    shutil.copyfile(PWL / "digital_currency" / "primecoin.pdf", dropped)
    report = organize.add_pdf(index, dropped, ["Security"], move=True)
    assert report.action == "kept" and dropped.exists()
    assert sorted(p.name for p in (lib / "paper").glob("primecoin*")) == ["primecoin.pdf"]
    assert _paper(index, report.paper_id).files == [str(dropped)]


def test_add_to_another_catalog_uses_its_folder_and_style(world: tuple[Path, Path], tmp_path: Path) -> None:
    lib, index = world
    other = tmp_path / "pwl-caching"  # a second list, pwl-dev style ("* [:scroll:](x.pdf) ..."), no PDFs
    other.mkdir()
    cat = other / "README.md"
    shutil.copyfile(PWL / "caching" / "README.md", cat)
    ingest(IngestOptions(folders=[lib, other], index_dir=index, cwd=lib))
    assert organize.add_pdf(index, PEERCOIN, ["GAN"], dry_run=True).catalog == lib / "README.md"  # default
    with pytest.raises(organize.OrganizeError, match="not a reading list of this index"):
        organize.add_pdf(index, PEERCOIN, ["Caching"], catalog=tmp_path / "elsewhere.md")
    report = organize.add_pdf(index, PEERCOIN, ["Caching"], catalog=cat)
    assert report.destination == other / "peercoin.pdf"
    assert report.entry.endswith("[[PDF]](./peercoin.pdf) 2012.")
    assert cat.read_text(encoding="utf-8").splitlines()[report.line - 1].startswith("* [ ] PPCoin")


# ----------------------------------------------------------------------------------------------- export


def test_export_filters_and_parses(userlib_index: Path) -> None:
    gen = open_generation(userlib_index)
    try:
        some = organize.export(gen, "bibtex", Filters(read=True))
        text, count = some.text, some.count
        everything = organize.export(gen, "bibtex")
        all_text, total = everything.text, everything.count
        with pytest.raises(UsageError, match="unknown format"):
            organize.export(gen, "docx")
        read = sum(1 for p in gen.papers() if p.read)
    finally:
        gen.close()
    assert count == read and 0 < count < total == len(bibtexparser.parse_string(all_text).entries)
    library = bibtexparser.parse_string(text)
    assert library.failed_blocks == [] and len(library.entries) == count


def test_split_topic() -> None:
    assert organize.split_topic(" GAN / StyleGAN  and its derivative/") == GAN_TOPIC
    assert organize.split_topic("") == []


def test_mdedit_digest_chains_edits(tmp_path: Path) -> None:
    path = tmp_path / "list.md"
    path.write_bytes(b"- [ ] a\n- [ ] b\n")
    first = mdedit.set_read(path, 1, True, expected_digest=mdedit.file_digest(path))
    assert first.digest == mdedit.file_digest(path)
    second = mdedit.set_read(path, 2, True, expected_digest=first.digest)
    assert path.read_bytes() == b"- [x] a\n- [x] b\n" and second.digest == mdedit.file_digest(path)


# ------------------------------------------------------------------------------------- review fixes


def test_mark_refuses_a_name_that_only_loosely_matches(world: tuple[Path, Path]) -> None:
    lib, index = world
    before = (lib / "README.md").read_bytes()
    for loose in ("loss function", "SyncNett", "emotion"):  # a mention, a typo, one title word
        report = organize.mark(index, [loose], read=True)
        assert report.failed and "loosely" in (report.outcomes[0].error or ""), loose
    assert (lib / "README.md").read_bytes() == before
    ok = organize.mark(index, ["Out of Time: Automated Lip Sync in the Wild"], read=False)
    assert not ok.failed and ok.outcomes[0].result is not None and ok.outcomes[0].result.changed


def test_a_paper_listed_twice_is_one_paper_and_mark_ticks_both(tmp_path: Path, userlib_index: Path) -> None:
    text = (USERLIB / "README.md").read_text()
    text += (
        "\n#### Again\n\n- [ ] (FAN) Frame Attention Networks for Facial Expression Recognition in Videos.\n"
    )
    lib, index = make_world(tmp_path, userlib_index, readme=text.encode())
    fans = [p for p in open_generation(index).papers() if p.title.startswith("Frame Attention")]
    assert len(fans) == 1 and len(fans[0].also_in) == 1 and fans[0].alias == "FAN"
    assert fans[0].topics == [["Emotion", "Emotion recognition", "Visual emotion recognition"], ["Again"]]
    report = organize.mark(index, ["FAN"], read=True)
    assert not report.failed
    lines = (lib / "README.md").read_text().splitlines()
    assert sum("[x] (FAN)" in line or "[x] Frame Attention" in line for line in lines) == 2
    assert _paper(index, fans[0].id).read is True


def test_a_copy_of_a_pdf_joins_its_paper_instead_of_becoming_a_twin(
    tmp_path: Path, userlib_index: Path
) -> None:
    lib, index = make_world(tmp_path, userlib_index)
    (lib / "paper" / "SyncNet-copy.pdf").symlink_to(USERLIB / "paper" / "SyncNet.pdf")
    report = ingest(IngestOptions(folders=[lib], index_dir=index, cwd=lib))
    assert report.failed == []
    gen = open_generation(index)
    twins = [p for p in gen.papers() if p.title.startswith("Out of Time")]
    assert len(twins) == 1 and len(twins[0].files) == 2
    texts = [x.text for x in gen.passages_of(twins[0].id)]
    assert len(texts) == len(set(texts))  # the copy adds no passage twice
    gen.close()
