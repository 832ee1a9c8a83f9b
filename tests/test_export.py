"""Exports parse back with real parsers, keep nasty titles intact and give stable, unique keys."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from pathlib import Path

import bibtexparser
import pytest

from kb.export import (
    CSV_HEADER,
    FORMATS,
    base_key,
    citation_keys,
    export_papers,
    latex_escape,
    latex_unescape,
    paper_arxiv,
    paper_doi,
)
from kb.models import Link, Paper
from tests.conftest import PWL, USERLIB

NASTY_TITLES = [
    "Analyzing and Improving the Image Quality of StyleGAN",
    "Analyzing and Improving the Image Quality of StyleGAN",  # exact duplicate -> a/b suffixes
    "Analyzing Things Differently",  # same key candidate as above
    "A {Braced} Title with {{double}} braces",
    "Unbalanced } closing brace",
    "Unbalanced { opening brace",
    "}{ inverted braces",
    "100% Accuracy & More: #1 in Class_A",
    "Costs $5 ~ ^ roughly",
    r"Back\slash and trailing backslash \\",
    r"\textbf{Not} really LaTeX \relax",
    'Quotes "double" and \'single\' and `back`',
    "中国计算机学会推荐国际学术会议和期刊目录",
    "编辑3DMM的expression base",
    "Émotions réelles: à la française",
    "Ünïcödé Ñame Ångström",
    "An @ sign and @inproceedings{fake, in the middle",
    "Comma, = equals, and # hash",
    "Title with\nnewline and\ttab",
    "Trailing percent 100%",
    "The Of And",  # only stop words
    "3D Morphable Face Models—Past, Present, and Future",
    "f-Similarity Preservation Loss for Soft Labels",
    "X2face: A network for controlling face generation",
    "Low Bandwidth video-chat compression using deep generative models.",
    "(Parenthesised) title [with brackets]",
    "Emoji 🎈 title",
    "Tab\tand  double  spaces",
    "Semicolon; pipe | slash / colon:",
    "Ends with a brace }",
    "{Starts with a brace",
    "Dollar math $x^2_i$ inline",
    "Ampersand && double",
    "Mixed 中文 and English & 100%",
    "Zero-width\u200bspace",
    "Right-to-left \u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "Very " + "long " * 40 + "title",
    "Tilde~nonbreaking",
    "Caret^up",
    "Under_score_title",
    "Hash#tag",
    "Percent%sign",
]

VENUES = [None, "CVPR", "ICCV", "ECCV", "NeurIPS", "ACM Multimedia", "AAAI", "WACV", "ACCV", "SIGGRAPH",
          "Transactions on Graphics", "IJCV", "Journal of Vision", "arXiv", "arxiv", "SIGRAPH Asia"]
AUTHORS = [None, "Tero Karras, Samuli Laine and Timo Aila", "Francois Rousseau & Michalis Vazirgiannis",
           "by Lawrence Page and Sergey Brin", "Karras, Tero and Laine, Samuli", "Müller", "张三 and 李四",
           "Ada Lovelace et al.", "Jean-Luc {Brace} Picard"]


def _synthetic_papers() -> list[Paper]:
    papers = []
    for i, title in enumerate(NASTY_TITLES):
        links = [Link("paper", f"https://example.org/p/{i}?a=1&b=%20{{x}}")] if i % 3 else []
        if i % 5 == 0:
            links.append(Link("PDF", f"./paper/file {i} (v2).pdf"))
        if i % 7 == 0:
            links.append(Link("paper", f"https://arxiv.org/abs/2012.{i:05d}v3"))
        papers.append(Paper(
            id=f"p{i:03d}",
            title=title,
            alias=["StyleGAN2", None, "Pix2Pix", "中文"][i % 4],
            topics=[["GAN", "StyleGAN and its derivative"]] if i % 2 else [["Survey"], ["Talking & face"]],
            read=[True, False, None][i % 3],
            venue=VENUES[i % len(VENUES)],
            year=None if i % 6 == 0 else 2000 + i % 23,
            authors=AUTHORS[i % len(AUTHORS)],
            note=["(emotion, 多模态合成) 50%", None, "note with {brace", "back\\slash & _"][i % 4],
            links=links,
            files=[f"/home/u/paper/{title[:10]}.pdf"] if i % 4 == 0 else [],
            doi="10.1145/3394171.3413844" if i % 8 == 0 else None,
        ))
    # identical key candidates beyond the titles above
    for j in range(5):
        papers.append(Paper(id=f"dup{j}", title="Analyzing and Improving the Image Quality of StyleGAN",
                            authors="Tero Karras", year=2020, venue="CVPR"))
    return papers


def _title_back(value: str) -> str:
    assert value.startswith("{") and value.endswith("}")
    return latex_unescape(value[1:-1])


def _parse(bib: str) -> bibtexparser.Library:
    library = bibtexparser.parse_string(bib)
    assert library.failed_blocks == []
    return library


# --------------------------------------------------------------------------------------------------- bibtex


def test_bibtex_round_trip_on_nasty_titles() -> None:
    papers = _synthetic_papers()
    assert len(papers) >= 40
    bib = export_papers(papers, "bibtex")
    library = _parse(bib)
    entries = library.entries
    assert len(entries) == len(papers)
    for paper, entry in zip(papers, entries, strict=True):
        assert _title_back(entry["title"]) == " ".join(paper.title.split())
        if paper.year:
            assert entry["year"] == str(paper.year)
        else:
            assert "year" not in entry.fields_dict
        if paper.note:
            assert latex_unescape(entry["note"]) == " ".join(paper.note.split())
    keys = [e.key for e in entries]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[a-z0-9]+", k) for k in keys)
    assert export_papers(papers, "bibtex") == bib  # deterministic


def test_bibtex_values_have_balanced_braces_and_no_bare_specials() -> None:
    """BibTeX itself counts every brace (escaped or not), and LaTeX chokes on bare % & # _ $."""
    library = _parse(export_papers(_synthetic_papers(), "bibtex"))
    for entry in library.entries:
        for field in entry.fields:
            depth = 0
            for char in field.value:
                depth += {"{": 1, "}": -1}.get(char, 0)
                assert depth >= 0, (entry.key, field.key, field.value)
            assert depth == 0, (entry.key, field.key, field.value)
            if field.key in ("title", "author", "note", "booktitle", "journal", "keywords"):
                assert not re.search(r"(?<!\\)[%&#_$]", field.value), (field.key, field.value)


def test_keys_are_stable_when_input_is_reordered_or_filtered() -> None:
    papers = _synthetic_papers()
    keys = dict(zip((p.id for p in papers), citation_keys(papers), strict=True))
    shuffled = papers[:]
    random.Random(7).shuffle(shuffled)
    assert dict(zip((p.id for p in shuffled), citation_keys(shuffled), strict=True)) == keys
    assert keys["p000"] == "stylegan2ndanalyzing"  # no authors, no year: alias + "nd" + title word
    assert [keys[f"dup{j}"] for j in range(5)] == ["karras2020analyzing"] + [
        f"karras2020analyzing{s}" for s in "abcd"
    ]


def test_key_shapes() -> None:
    stylegan2 = Paper(id="s2", title="Analyzing and Improving the Image Quality of StyleGAN",
                      authors="Tero Karras, Samuli Laine and Timo Aila", year=2020)
    assert base_key(stylegan2) == "karras2020analyzing"
    assert base_key(Paper(id="x", title="The Treadmill: Real-Time GC", authors="Henry G. Baker")) == \
        "baker" + "nd" + "treadmill"
    assert base_key(Paper(id="x", title="A Style-Based Generator", alias="StyleGAN", year=2019)) == \
        "stylegan2019style"
    assert base_key(Paper(id="x", title="Analyzing and Improving", year=2020)) == "analyzing2020improving"
    assert base_key(Paper(id="x", title="Über Ñame", authors="José Müller-Lüdenscheidt", year=1999)) == \
        "mullerludenscheidt1999uber"
    assert base_key(Paper(id="x", title="中文标题")) == "anonnd"
    same = [Paper(id=f"d{i}", title="Same Title", authors="Ann Lee", year=2020) for i in range(4)]
    keys = citation_keys(same)
    assert keys == ["lee2020same", "lee2020samea", "lee2020sameb", "lee2020samec"]


def test_entry_types_and_identifier_fields() -> None:
    papers = [
        Paper(id="a", title="Real-time facial animation with image-based dynamic avatars.",
              venue="Transactions on Graphics", year=2016,
              links=[Link("paper", "https://dl.acm.org/doi/10.1145/2897824.2925873")]),
        Paper(id="b", title="Low Bandwidth video-chat compression using deep generative models.",
              venue="arxiv", year=2020, links=[Link("paper", "https://arxiv.org/abs/2012.00328"),
                                               Link("PDF", "./paper/Low.pdf")],
              files=["/lib/paper/Low.pdf"]),
        Paper(id="c", title="Hierarchical Cross-Modal Talking Face Generation", venue="CVPR", year=2019,
              topics=[["Talking face generation", "2D landmark based approaches"]], note="多模态合成"),
        Paper(id="d", title="Emotional expressions reconsidered", links=[
            Link("paper", "https://eprints.gla.ac.uk/178385/7/178385.pdf"),
            Link("Corrigendum", "https://journals.sagepub.com/doi/pdf/10.1177/1529100619832930")]),
        Paper(id="e", title="Realistic speech-driven facial animation with gans.", venue="IJCV", year=2019,
              links=[Link("paper", "https://link.springer.com/content/pdf/10.1007/s11263-019-01251-8.pdf")]),
        Paper(id="f", title="Only an arXiv id", arxiv="arXiv:1812.04948v3"),
    ]
    entries = _parse(export_papers(papers, "bibtex")).entries
    a, b, c, d, e, f = entries
    assert (a.entry_type, a["journal"]) == ("article", "Transactions on Graphics")
    assert a["doi"] == "10.1145/2897824.2925873"
    assert (b.entry_type, b["journal"], b["eprint"], b["archiveprefix"]) == \
        ("article", "arXiv preprint arXiv:2012.00328", "2012.00328", "arXiv")
    assert b["url"] == "https://arxiv.org/abs/2012.00328" and b["file"] == "/lib/paper/Low.pdf"
    assert (c.entry_type, c["booktitle"], c["note"]) == ("inproceedings", "CVPR", "多模态合成")
    assert c["keywords"] == "Talking face generation / 2D landmark based approaches"
    assert d.entry_type == "misc" and "doi" not in d.fields_dict  # a corrigendum's DOI is not the paper's
    assert e["doi"] == "10.1007/s11263-019-01251-8" and e["journal"] == "IJCV"
    assert f.entry_type == "article" and f["eprint"] == "1812.04948"
    assert paper_doi(Paper(id="g", title="t", doi="https://doi.org/10.1000/xyz.")) == "10.1000/xyz"
    pdf_link = Link("PDF", "https://arxiv.org/pdf/1907.10786.pdf")
    assert paper_arxiv(Paper(id="h", title="t", links=[pdf_link])) == "1907.10786"


def test_latex_escape_is_invertible() -> None:
    for title in NASTY_TITLES:
        normalized = " ".join(title.split())
        assert latex_unescape(latex_escape(title)) == normalized


# ------------------------------------------------------------------------------------- csl-json, csv, md


def test_csl_json() -> None:
    papers = _synthetic_papers()
    items = json.loads(export_papers(papers, "csl-json"))
    assert [i["id"] for i in items] == citation_keys(papers)
    assert [i["title"] for i in items] == [p.title for p in papers]
    assert {i["type"] for i in items} <= {"paper-conference", "article-journal", "article"}
    first = next(i for i in items if i["title"].startswith("Analyzing") and "author" in i)
    assert first["author"][0] == {"family": "Karras", "given": "Tero"}
    assert "中国计算机学会" in export_papers(papers, "csl-json")  # ensure_ascii=False
    for item, paper in zip(items, papers, strict=True):
        if paper.year:
            assert item["issued"] == {"date-parts": [[paper.year]]}


def test_csv() -> None:
    papers = _synthetic_papers()
    rows = list(csv.reader(io.StringIO(export_papers(papers, "csv"))))
    assert rows[0] == CSV_HEADER
    assert len(rows) == len(papers) + 1
    title = CSV_HEADER.index("title")
    assert [r[title] for r in rows[1:]] == [p.title for p in papers]
    assert {r[CSV_HEADER.index("read")] for r in rows[1:]} == {"true", "false", ""}


def test_markdown() -> None:
    paper = Paper(id="s", title="A Style-Based Generator [v2]", alias="StyleGAN", read=True, venue="CVPR",
                  year=2019, note="Nvidia (style mixing)", topics=[["GAN", "StyleGAN"]],
                  links=[Link("paper", "https://arxiv.org/pdf/1812.04948.pdf")])
    out = export_papers([paper, Paper(id="t", title="Untracked", read=None)], "markdown")
    assert out == (
        "## GAN / StyleGAN\n\n"
        r"- [x] (StyleGAN) [A Style-Based Generator \[v2\]](https://arxiv.org/pdf/1812.04948.pdf) CVPR, 2019."
        " (Nvidia (style mixing))\n\n## Uncategorized\n\n- Untracked\n"
    )


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="bibtex"):
        export_papers([], "ris")


# ------------------------------------------------------------------------------------------ real catalogs

_ITEM = re.compile(r"^\s*[-*+]\s+(?:\[(?P<box>[ xX])\]\s+)?(?:\((?P<alias>[^)]*)\)\s+)?(?P<body>.*)$")
_LINK = re.compile(r"\[(?P<title>[^\]]+)\]\((?P<url>[^)\s]*)\)")
_VENUE_YEAR = re.compile(r"([A-Za-z][A-Za-z .]*?),?\s+((?:19|20)\d\d)\b")


def _papers_from_catalog(path: Path) -> list[Paper]:
    """Test-only stand-in for the catalog parser: ``[Title](url)`` items under their headings."""
    papers: list[Paper] = []
    headings: list[tuple[int, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        heading = re.match(r"^(#+)\s+(.*)", line)
        if heading:
            level = len(heading.group(1))
            headings = [h for h in headings if h[0] < level] + [(level, heading.group(2).strip())]
            continue
        item = _ITEM.match(line)
        links = _LINK.finditer(item.group("body")) if item else iter(())
        link = next((m for m in links if not m.group("title").startswith(("[", ":"))), None)
        if not item or not link:
            continue
        rest = item.group("body")[link.end():]
        where = _VENUE_YEAR.search(re.sub(r"\[\[[^\]]*\]\]\([^)]*\)", "", rest))
        authors = re.search(r"\s-\s(.+)$", rest)
        box = item.group("box")
        papers.append(Paper(
            id=f"{path.parent.name}-{n}", title=link.group("title").strip().rstrip("."),
            alias=item.group("alias"), topics=[[h for _, h in headings]],
            read=None if box is None else box != " ",
            venue=where.group(1).strip() if where else None, year=int(where.group(2)) if where else None,
            authors=authors.group(1) if authors else None,
            links=[Link("paper", link.group("url"))] if link.group("url") else [],
            note=(re.findall(r"\(([^()]*)\)\s*$", rest) or [None])[0],
        ))
    return papers


@pytest.mark.parametrize("readme", [USERLIB / "README.md", *sorted(PWL.glob("*/README.md"))],
                         ids=lambda p: p.parent.name)
def test_export_real_catalogs(readme: Path) -> None:
    papers = _papers_from_catalog(readme)
    assert papers
    outputs = {fmt: export_papers(papers, fmt) for fmt in FORMATS}
    entries = _parse(outputs["bibtex"]).entries
    assert len(entries) == len(papers)
    assert [_title_back(e["title"]) for e in entries] == [" ".join(p.title.split()) for p in papers]
    assert len({e.key for e in entries}) == len(papers)
    assert len(json.loads(outputs["csl-json"])) == len(papers)
    assert len(list(csv.reader(io.StringIO(outputs["csv"])))) == len(papers) + 1
    assert sum(line.startswith("- ") for line in outputs["markdown"].splitlines()) == len(papers)
    assert {fmt: export_papers(papers, fmt) for fmt in FORMATS} == outputs


def test_all_real_catalogs_together_have_unique_keys() -> None:
    papers = [p for readme in [USERLIB / "README.md", *sorted(PWL.glob("*/README.md"))]
              for p in _papers_from_catalog(readme)]
    assert len(papers) > 100
    entries = _parse(export_papers(papers, "bibtex")).entries
    assert len({e.key for e in entries}) == len(papers)
