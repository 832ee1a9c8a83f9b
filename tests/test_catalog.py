"""Catalog parsing, checked against the real reading lists in ../shared/corpus.

The expectations below were verified by reading the Markdown files by hand; the userlib snapshot in
tests/data/userlib_catalog.json pins every field of every entry so that any change shows up as a diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path

import pytest
from conftest import CORPUS, ODD, PWL, USERLIB, run_kb

from kb.catalog import CatalogParse, discover_catalogs, parse_catalog, parse_text, read_catalog_text
from kb.models import Entry, Link

SNAPSHOT = Path(__file__).parent / "data" / "userlib_catalog.json"

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not available")


def _by_title(entries: list[Entry], prefix: str) -> Entry:
    found = [e for e in entries if e.title.startswith(prefix)]
    assert len(found) == 1, f"{prefix!r}: {[e.title for e in found]}"
    return found[0]


@pytest.fixture(scope="module")
def userlib() -> CatalogParse:
    return parse_catalog(USERLIB / "README.md")


@pytest.fixture(scope="module")
def pwl() -> dict[str, list[Entry]]:
    return {p.parent.name: parse_catalog(p).entries for p in sorted(PWL.glob("*/README.md"))}


# ---------------------------------------------------------------------------------------------------
# userlib: real entries, field by field


@needs_corpus
def test_userlib_counts_and_no_repair(userlib: CatalogParse) -> None:
    # 68 checkbox items in the file (grep -c '^\s*- \[[ x]\]'); the CCF paragraph link is not an entry.
    assert len(userlib.entries) == 68
    assert not userlib.repaired and userlib.warnings == []
    assert all(e.read is not None for e in userlib.entries)
    assert not any("中国计算机学会" in e.title for e in userlib.entries)
    assert all(e.catalog == str((USERLIB / "README.md").resolve()) for e in userlib.entries)


@needs_corpus
def test_userlib_stylegan(userlib: CatalogParse) -> None:
    e = _by_title(userlib.entries, "A Style-Based Generator")
    assert e.title == "A Style-Based Generator Architecture for Generative Adversarial Networks"
    assert e.alias == "StyleGAN"
    assert e.topic == ["GAN", "StyleGAN and its derivative"]
    assert e.read is True
    assert (e.venue, e.year, e.org) == ("CVPR", 2019, "Nvidia")
    assert [link.label for link in e.links] == [
        "paper",
        "Which face is real?",
        "PDF",
        "GitHub",
        "中文Blog",
        "YouTube",
        "Bilibili",
        "PyTorch",
    ]
    assert e.links[0] == Link("paper", "https://arxiv.org/pdf/1812.04948.pdf")
    assert e.links[2] == Link("PDF", "./paper/StyleGAN.pdf")
    assert e.links[4] == Link("中文Blog", "https://zhuanlan.zhihu.com/p/63230738")
    assert e.notes == []
    assert e.line == 102


@needs_corpus
def test_userlib_stylegan2_translation_link(userlib: CatalogParse) -> None:
    e = _by_title(userlib.entries, "Analyzing and Improving the Image Quality")
    assert e.alias == "StyleGAN2"
    assert Link("翻译", "http://www.gwylab.com/pdf/stylegan2_chs.pdf") in e.links
    assert (e.venue, e.year, e.org) == ("CVPR", 2020, "Nvidia")


@needs_corpus
def test_userlib_gan_control_org(userlib: CatalogParse) -> None:
    e = _by_title(userlib.entries, "GAN-Control")
    assert (e.venue, e.year, e.org) == ("arXiv", 2021, "Amazon")


@needs_corpus
def test_userlib_m3er_broken_pdf_link_kept_raw(userlib: CatalogParse) -> None:
    e = _by_title(userlib.entries, "M3ER")
    assert (
        e.title
        == "M3ER: Multiplicative Multimodal Emotion Recognition using Facial, Textual, and Speech Cues"
    )
    assert Link("PDF", "./paper/https://ojs.aaai.org//index.php/AAAI/article/view/5492.pdf") in e.links
    assert e.topic == ["Emotion", "Emotion recognition", "Cross-modality emotion recognition"]
    assert (e.venue, e.year) == ("AAAI", 2020)
    assert e.notes == ["从三个模态提取信息识别一个视频的emotion"]


@needs_corpus
def test_userlib_pdf_link_with_space_in_label(userlib: CatalogParse) -> None:
    e = _by_title(userlib.entries, "Talking Face Generation by Adversarially Disentangled")
    # [Title]() keeps the title without a link; [[PDF] ](...) is a PDF link despite the space.
    assert e.links == [
        Link(
            "PDF",
            "./paper/Talking Face Generation by Adversarially Disentangled Audio-Visual Representation.pdf",
        )
    ]
    assert (e.venue, e.year, e.read) == ("CVPR", 2019, True)
    assert e.topic == ["Talking face generation", "Disentanglement based approaches"]


@needs_corpus
def test_userlib_note_on_its_own_line(userlib: CatalogParse) -> None:
    e = _by_title(userlib.entries, "Towards Real-World Blind Face Restoration")
    assert e.notes == ["Blind face restoration, 用到pretrained GAN as prior"]
    assert e.topic == ["Pretraining"]


@needs_corpus
def test_userlib_low_bandwidth(userlib: CatalogParse) -> None:
    e = _by_title(userlib.entries, "Low Bandwidth")
    assert (e.venue, e.year, e.read) == ("arxiv", 2020, False)
    assert e.links == [
        Link("paper", "https://arxiv.org/abs/2012.00328"),
        Link("PDF", "./paper/Low_Bandwidth_Video_Chat_Compression_using_Deep_Generative_Models.pdf"),
    ]


@needs_corpus
def test_userlib_nested_sub_topics(userlib: CatalogParse) -> None:
    e = _by_title(userlib.entries, "Towards Discriminative Representation Learning")
    assert e.topic == ["Emotion", "Emotion recognition", "Audio emotion recognition"]
    assert e.links == [
        Link(
            "PDF", "./paper/Towards_Discriminative_Representation_Learning_for_Speech_Emotion_Recognition.pdf"
        )
    ]
    # BEGAN comes after the StyleGAN sub-topic at the outer level: the sub-topic no longer applies.
    assert _by_title(userlib.entries, "BEGAN").topic == ["GAN"]
    assert _by_title(userlib.entries, "BEGAN").alias == "BEGAN"


@needs_corpus
def test_userlib_plain_titles_and_notes(userlib: CatalogParse) -> None:
    nvp = _by_title(userlib.entries, "Neural Voice Puppetry")
    assert nvp.title == "Neural Voice Puppetry: Audio-driven Facial Reenactment"
    assert nvp.links == [Link("PDF", "Neural Voice Puppetry Audio-driven Facial Reenactment.pdf")]
    assert nvp.notes == ["编辑3DMM的expression base"]
    assert nvp.topic == ["Talking face generation", "3D based approaches"]
    fast = _by_title(userlib.entries, "Fast bi-layer")
    assert (fast.title, fast.venue, fast.year) == (
        "Fast bi-layer neural synthesis of oneshot realistic head avatars",
        "ECCV",
        2020,
    )
    etgan = _by_title(userlib.entries, "Talking Face Generation with Expression-Tailored")
    assert etgan.notes == ["emotion, identity, speech, 多模态合成"]
    assert (etgan.venue, etgan.year) == ("ACM Multimedia", 2020)
    config = _by_title(userlib.entries, "CONFIG")
    assert config.notes == ["AdaIN"] and config.venue is None
    pagan = _by_title(userlib.entries, "paGAN")
    assert (pagan.venue, pagan.year) == ("SIGRAPH Asia", 2018)
    assert _by_title(userlib.entries, "Real-time facial animation").venue == "Transactions on Graphics"
    assert _by_title(userlib.entries, "Realistic speech-driven").venue == "IJCV"


@needs_corpus
def test_userlib_alias_only_entry_and_pdf_label_case(userlib: CatalogParse) -> None:
    mm = [e for e in userlib.entries if e.alias == "3DMM"]
    assert len(mm) == 1 and mm[0].title == "3DMM" and mm[0].links == []
    anomaly = _by_title(userlib.entries, "Anomaly Detection in Video Sequence")
    assert [link.label for link in anomaly.links] == ["paper", "PDF", "Github"]  # [[PDf]] -> PDF
    survey = _by_title(userlib.entries, "The Creation and Detection of Deepfakes")
    assert survey.links == [Link("paper", "https://arxiv.org/abs/2004.11138")]  # [[PDF]]() skipped
    few = _by_title(userlib.entries, "Few-shot video-to-video")
    assert few.links == [] and (few.venue, few.year) == ("NeurIPS", 2019)


@needs_corpus
def test_userlib_snapshot(userlib: CatalogParse) -> None:
    """Every field of every entry against the reviewed snapshot (KB_UPDATE_SNAPSHOTS=1 rewrites it)."""
    actual = []
    for e in userlib.entries:
        d = dataclasses.asdict(e)
        d["catalog"] = Path(e.catalog).relative_to(CORPUS.resolve()).as_posix()
        actual.append(d)
    if os.environ.get("KB_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(actual, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert SNAPSHOT.is_file(), f"{SNAPSHOT} missing: run with KB_UPDATE_SNAPSHOTS=1 and review it"
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert actual == expected


# ---------------------------------------------------------------------------------------------------
# pwl-dev: other styles


@needs_corpus
def test_pwl_counts(pwl: dict[str, list[Entry]]) -> None:
    counts = {name: len(entries) for name, entries in pwl.items()}
    assert counts == {
        "caching": 3,
        "data_structures": 11,
        "datastores": 37,
        "digital_currency": 4,
        "garbage_collection": 9,
        "information_retrieval": 4,
        "operating_systems": 5,
        "pattern_matching": 5,  # the two navigation items are not papers
        "quantum_computing": 3,
        "security": 14,
        "sublinear_algorithms": 2,
    }
    assert all(e.read is None for entries in pwl.values() for e in entries)


@needs_corpus
def test_pwl_caching_scroll_link_and_authors(pwl: dict[str, list[Entry]]) -> None:
    e = _by_title(pwl["caching"], "An O(1) algorithm")
    assert e.title == "An O(1) algorithm for implementing the LFU cache eviction scheme"
    assert e.links[0] == Link(
        "PDF", "a-constant-algorithm-for-implementing-the-lfu-cache-eviction-scheme.pdf"
    )
    assert e.links[1].label == "paper" and e.links[1].url.startswith("https://github.com/")
    assert e.authors == "Prof. Ketan Shah, Anirban Mitra, Dhruv Matani"
    assert e.topic == ["Caching"] and e.line == 3
    # [:scroll:](x.pdf)[Title](url) with no space between the links
    e = _by_title(pwl["caching"], "A Program Optimization")
    assert e.links[0] == Link("PDF", "a-program-optimization-for-automatic-database-result-caching.pdf")


@needs_corpus
def test_pwl_hosted_local_pdf_title(pwl: dict[str, list[Entry]]) -> None:
    e = _by_title(pwl["data_structures"], "Epidemic Broadcast Trees")
    assert e.links == [Link("PDF", "epidemic-broadcast-trees.pdf")]
    assert e.topic == ["Data Structures"]  # "Hosted Papers" is organisational
    assert _by_title(pwl["digital_currency"], "Ethereum").topic == ["Digital Currency"]
    assert _by_title(pwl["quantum_computing"], "Advances").topic == ["Quantum computing"]


@needs_corpus
def test_pwl_garbage_collection_no_heading_and_wrapped_title(pwl: dict[str, list[Entry]]) -> None:
    e = _by_title(pwl["garbage_collection"], "Parallel Generational-Copying")
    assert e.title == "Parallel Generational-Copying Garbage Collection with a Block-Structured Heap"
    assert e.links == [
        Link("PDF", "parallel_generational_copying_garbage_collection_with_a_block_structured_heap.pdf"),
        Link("paper", "http://simonmar.github.io/bib/papers/parallel-gc.pdf"),
    ]
    assert e.topic == ["Garbage collection"]
    unified = _by_title(pwl["garbage_collection"], "A Unified Theory")
    assert unified.notes == [
        "An overview for programmers and language implementors for understanding different garbage "
        "collection algorithms."
    ]


@needs_corpus
def test_pwl_information_retrieval_paragraph_notes(pwl: dict[str, list[Entry]]) -> None:
    e = _by_title(pwl["information_retrieval"], "Graph of Word")
    assert e.title == "Graph of Word and TW-IDF"
    assert e.authors == "Francois Rousseau & Michalis Vazirgiannis"
    assert e.topic == ["Information Retrieval"]
    assert len(e.notes) == 1 and e.notes[0].startswith("The traditional IR system stores")
    assert e.notes[0].endswith("This paper won a honorable mention at CIKM 2013.")
    okapi = _by_title(pwl["information_retrieval"], "Okapi")
    assert okapi.links[0] == Link("PDF", "okapi-at-trec3.pdf")


@needs_corpus
def test_pwl_pattern_matching_by_authors_and_nav(pwl: dict[str, list[Entry]]) -> None:
    e = _by_title(pwl["pattern_matching"], "Compiling Pattern Matching")
    assert e.authors == "Luc Maranget"
    assert e.notes == [
        "Paper address the issue of compiling ML pattern matching to efficient decisions trees."
    ]
    aho = _by_title(pwl["pattern_matching"], "Efficient String Matching")
    assert aho.authors == "Alfred V. Aho and Margaret J. Corasick"
    assert aho.notes[0].startswith("A single-pass pattern matching algorithm")
    broder = _by_title(pwl["pattern_matching"], "On the resemblance")
    assert broder.authors == "Andrei Z. Broder"
    assert broder.topic == ["Pattern Matching", "Clustering Algorithms"]
    assert not any(e.title in ("Pattern Matching", "Stringology") for e in pwl["pattern_matching"])


@needs_corpus
def test_pwl_security_setext_years_and_bullet_notes(pwl: dict[str, list[Entry]]) -> None:
    e = _by_title(pwl["security"], "Reflections on Trusting Trust")
    assert (e.title, e.year, e.topic) == ("Reflections on Trusting Trust", 1984, ["Security"])
    box = _by_title(pwl["security"], "Looking inside")
    assert (box.title, box.year) == ("Looking inside the (Drop) Box", 2013)
    sok = _by_title(pwl["security"], "SoK")
    assert sok.links == [Link("PDF", "sok-eternal-war-in-memory.pdf")]
    assert sok.topic == ["Security", "Hardware Security"]
    assert len(sok.notes) == 2 and sok.notes[0].startswith("Classifies memory attacks")
    dram = _by_title(pwl["security"], "DRAM Row Hammer")
    assert dram.notes == [
        "Flipping Bits in Memory Without Accessing Them: An Experimental Study of DRAM Disturbance Errors"
    ]


@needs_corpus
def test_pwl_operating_systems_and_sublinear(pwl: dict[str, list[Entry]]) -> None:
    jails = _by_title(pwl["operating_systems"], "Jails")
    assert jails.title == "Jails: Confining the omnipotent root"
    # "## Operating Systems" and "## Jails and containers" are sibling headings in the file
    assert jails.topic == ["Jails and containers"]
    assert jails.links == [Link("paper", "http://phk.freebsd.dk/pubs/sane2000-jail.pdf")]
    prob = _by_title(pwl["sublinear_algorithms"], "Probablistic Counting")
    assert prob.links[0].url.endswith("1985-Flajolet-Probabilistic-counting.pdf")
    assert len(prob.notes) == 2 and prob.notes[1].startswith("Flajolet, Philippe")
    shor = _by_title(pwl["quantum_computing"], "Polynomial-Time")
    assert shor.authors == "Peter W Shor"


# ---------------------------------------------------------------------------------------------------
# Encodings and odd input


@needs_corpus
def test_mojibake_is_repaired() -> None:
    text, repaired = read_catalog_text(ODD / "catalog-mojibake.md")
    assert repaired and "多模态合成" in text
    result = parse_catalog(ODD / "catalog-mojibake.md")
    assert result.repaired
    assert result.warnings == ["repaired mojibake (UTF-8 read as Mac Roman)"]
    assert any("多模态合成" in note for e in result.entries for note in e.notes)
    clean = parse_catalog(USERLIB / "README.md").entries
    strip = [dataclasses.replace(e, catalog="") for e in result.entries]
    assert strip == [dataclasses.replace(e, catalog="") for e in clean]


def test_clean_text_is_not_repaired(tmp_path: Path) -> None:
    path = tmp_path / "list.md"
    path.write_text("# Café\n\n- [x] [Über Straße](https://x.org) CVPR, 2019.\n", encoding="utf-8")
    text, repaired = read_catalog_text(path)
    assert not repaired and "Über Straße" in text


def test_bom_and_cp1252(tmp_path: Path) -> None:
    bom = tmp_path / "bom.md"
    bom.write_bytes("\ufeff# T\n\n- [ ] [Paper](u)\n".encode())
    assert parse_catalog(bom).entries[0].topic == ["T"]
    legacy = tmp_path / "legacy.md"
    legacy.write_bytes("# Caf\xe9\n\n- [ ] [Na\xefve Paper](u)\n".encode("latin-1"))
    result = parse_catalog(legacy)
    assert (result.entries[0].topic, result.entries[0].title) == (["Café"], "Naïve Paper")
    assert result.warnings == ["not UTF-8: decoded as cp1252"] and not result.repaired


def test_crlf_and_no_final_newline() -> None:
    lf = "# Topic\n\n- [x] (Al) [A Title.](https://a.org) [[PDF]](./p/a.pdf) CVPR, 2019. (note)\n- [ ] B"
    a = parse_text(lf, "/c/README.md")
    b = parse_text(lf.replace("\n", "\r\n"), "/c/README.md")
    assert a == b and len(a) == 2
    assert (a[0].title, a[0].alias, a[0].venue, a[0].year, a[0].notes) == (
        "A Title",
        "Al",
        "CVPR",
        2019,
        ["note"],
    )
    assert a[0].links == [Link("paper", "https://a.org"), Link("PDF", "./p/a.pdf")]
    assert (a[1].title, a[1].read, a[1].line) == ("B", False, 4)


def test_garbage_and_empty_input(tmp_path: Path) -> None:
    assert parse_text("", "/x.md") == []
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    assert parse_catalog(empty).entries == []
    rng = random.Random(1234)
    for n in range(20):
        junk = tmp_path / f"junk{n}.md"
        junk.write_bytes(rng.randbytes(4096))
        assert parse_catalog(junk).entries == []
    assert parse_text("```\n- [x] [In code](u)\n```\n----\nhttps://bare.example\n", "/x.md") == []


def test_document_title_and_organisational_headings() -> None:
    text = "# My List\n\n#### Vision\n\n- [ ] [P](u)\n"
    assert parse_text(text, "/x/README.md")[0].topic == ["Vision"]
    text = "# Storage\n\n## Hosted Papers :open_file_folder:\n\n* [Q](q.pdf)\n"
    e = parse_text(text, "/x/README.md")[0]
    assert e.topic == ["Storage"] and e.links == [Link("PDF", "q.pdf")]


def test_plain_bullets_are_not_papers_without_checkboxes() -> None:
    text = "# Project\n\n- Install with pip\n- Run the tests\n\n* [Paper](https://p.org) by A B\n"
    entries = parse_text(text, "/x/README.md")
    assert [(e.title, e.authors) for e in entries] == [("Paper", "A B")]


def test_discover_catalogs(tmp_path: Path) -> None:
    (tmp_path / "lib" / "sub").mkdir(parents=True)
    (tmp_path / "lib" / ".hidden").mkdir()
    (tmp_path / "lib" / "b.md").write_text("x")
    (tmp_path / "lib" / "sub" / "a.md").write_text("x")
    (tmp_path / "lib" / ".hidden" / "c.md").write_text("x")
    (tmp_path / "lib" / "notes.txt").write_text("x")
    (tmp_path / "README.md").write_text("x")
    found = discover_catalogs([tmp_path / "lib", tmp_path / "lib"], tmp_path)
    assert found == sorted(
        [
            (tmp_path / "lib" / "b.md").resolve(),
            (tmp_path / "lib" / "sub" / "a.md").resolve(),
            (tmp_path / "README.md").resolve(),
        ]
    )
    assert discover_catalogs([tmp_path], tmp_path).count((tmp_path / "README.md").resolve()) == 1


def test_inline_code_in_a_project_readme_is_not_a_paper() -> None:
    text = "- Checkbox items are papers: `[x]` read, e.g. `- [x] [Title](paper.pdf)`\n"
    text += "- [ ] Real paper `with code` [[PDF]](x.pdf)\n"
    entries = parse_text(text, "README.md")
    assert [e.title for e in entries] == ["Real paper with code"]  # the code's words are the title's
    assert entries[0].links == [Link("PDF", "x.pdf")]


# ---------------------------------------------------------------------------------------------------
# Issue 8: what a new user writes in their own list


@needs_corpus
def test_capital_x_is_read(tmp_path: Path) -> None:
    data = (USERLIB / "README.md").read_text(encoding="utf-8")
    assert data.count("- [x] (StyleGAN2)") == 1
    path = tmp_path / "README.md"
    path.write_text(data.replace("- [x] (StyleGAN2)", "- [X] (StyleGAN2)"), encoding="utf-8")
    entries = parse_catalog(path).entries
    assert _by_title(entries, "Analyzing and Improving").read is True
    assert [e.read for e in entries] == [e.read for e in parse_catalog(USERLIB / "README.md").entries]
    text = "* [X] upper star\n1. [X] ordered\n- [X]no space\n- [ ] unread\n"
    assert [(e.title, e.read) for e in parse_text(text, "README.md")] == [
        ("upper star", True), ("ordered", True), ("no space", True), ("unread", False)]


def test_a_trailing_year_is_the_year_not_the_title() -> None:
    text = (
        "- [ ] Attention Is All You Need. 2017.\n"
        "- [ ] Plain title. 2019. Google.\n"
        "- [ ] [Linked Title. 2016.](https://arxiv.org/abs/1512.03385) [[PDF]](./paper/resnet.pdf)\n"
        "- [ ] Kept. [[PDF]](./paper/kept.pdf) 2020.\n"
        "- [ ] Windows 2000 Internals. Microsoft Press, 2000.\n"
        "- [ ] Papers. 2020 and beyond\n"
    )
    got = [(e.title, e.year, e.venue, e.org) for e in parse_text(text, "README.md")]
    assert got == [
        ("Attention Is All You Need", 2017, None, None),
        ("Plain title", 2019, None, "Google"),
        ("Linked Title", 2016, None, None),
        ("Kept", 2020, None, None),
        ("Windows 2000 Internals", 2000, "Microsoft Press", None),
        ("Papers. 2020 and beyond", None, None, None),  # a year inside the words stays in the title
    ]
    from kb.mdedit import format_entry  # what `kb add` writes for a paper with a year and no venue

    added = parse_text(format_entry("A Paper Title", None, year=2019), "README.md")[0]
    assert (added.title, added.year) == ("A Paper Title", 2019)


def test_a_trailing_year_is_not_part_of_the_paper_id(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "README.md").write_text(
        "# Reading\n\n- [ ] Attention Is All You Need. 2017.\n"
        "- [x] [Deep Residual Learning for Image Recognition. 2016.](https://arxiv.org/abs/1512.03385)\n",
        encoding="utf-8",
    )
    index = tmp_path / "index"
    assert run_kb("ingest", str(lib), "--index", str(index), "--no-embed", cwd=lib).returncode == 0
    listed = run_kb("list", "--json", "--index", str(index), cwd=lib)
    assert listed.returncode == 0, listed.stderr
    got = {(p["id"], p["title"], p["year"]) for p in json.loads(listed.stdout)}
    assert got == {
        ("attention-is-all-you-need", "Attention Is All You Need", 2017),
        ("deep-residual-learning-for-image-recognition",
         "Deep Residual Learning for Image Recognition", 2016),
    }


def test_emphasis_and_code_in_a_title_keep_their_words() -> None:
    text = (
        "- [ ] **Bold** words, *emphasis* and `code` in a title. [[PDF]](./paper/a.pdf) CVPR, 2019.\n"
        "- [x] [A __strong__ _linked_ `title`](https://x.org) (with *a* note)\n"
        "* :scroll: **[Wrapped in Bold](local.pdf)**\n"
        "- [ ] Mittal_Animating_Face_using_Disentangled_Audio_Representations. WACV, 2020.\n"
        "- [ ] What? A \\[weird\\] title &amp; more.\n"
    )
    got = [(e.title, e.notes, e.venue) for e in parse_text(text, "README.md")]
    assert got == [
        ("Bold words, emphasis and code in a title", [], "CVPR"),
        ("A strong linked title", ["with a note"], None),
        ("Wrapped in Bold", [], None),
        ("Mittal_Animating_Face_using_Disentangled_Audio_Representations", [], "WACV"),  # no emphasis in
        ("What? A [weird] title & more", [], None),  # a snake_case name; escapes are resolved
    ]
    from kb.mdedit import format_entry  # a title with brackets, as `kb add` writes it, reads back the same

    assert parse_text(format_entry("What?  A [weird] title", None), "README.md")[0].title == (
        "What? A [weird] title"
    )


def test_setext_headings_are_topics() -> None:
    text = "Reading\n=======\n\nVision\n------\n\n- [ ] [P](u)\n\n## Audio\n\n- [ ] [Q](u)\n"
    topics = [e.topic for e in parse_text(text, "/x/README.md")]
    assert topics == [["Reading", "Vision"], ["Reading", "Audio"]]
    # "Title\n---" under a paragraph is a heading, a "---" after a blank line a rule: no heading here,
    # so the list is its folder's topic
    text = "Intro text.\n\n---\n\n- [ ] [P](u)\n"
    assert [e.topic for e in parse_text(text, "/my_lists/README.md")] == [["My lists"]]
