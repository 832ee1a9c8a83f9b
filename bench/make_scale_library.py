"""Generate a realistic library of N distinct papers for `make bench-scale` (not committed).

    python bench/make_scale_library.py [--out build/scale] [--papers 10000] [--seed 0] [--jobs 2]

Writes ``OUT/paper/*.pdf`` and ``OUT/README.md``. Each PDF is a new paper recombined with pypdf from
the readable PDFs of ../shared/corpus (userlib + pwl-dev; scans, garbled and broken files skipped):
a generated title page (title in a large font, authors, an abstract of sentences from a source
paper) set in Helvetica, then 5-29 body pages taken as one to three runs of consecutive pages from
source papers, so lengths run from 6 to 30 pages (median ~12). The title page makes every file's
text and bytes distinct; most files also carry the title as document metadata, the others must be
recognised from their first page, as in real life. Images are dropped from the copied pages by
default (``--images`` keeps them): text extraction does not read them, and they would multiply
the size on disk.

The reading list is in the userlib style: ~100 ``#### Topic`` headings, ``- Sub-topic`` items, and
entries such as ``  - [x] (Alias) Title. [[PDF]](./paper/x.pdf) Venue, 2019.``, some with a title
link, a Github link or a note. It has N entries: 95% link a generated PDF, 5% are catalog-only (a
few of those link a PDF that does not exist); the remaining 5% of the PDFs are in no list.

Deterministic: the same seed (and corpus) gives byte-identical files. Runs on all cores by default.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = Path(os.environ.get("KB_SHARED", ROOT.parent / "shared")) / "corpus"

LISTED_SHARE = 0.95  # of the PDFs, the share an entry links to; the rest are in no list
MISSING_LINKS = 0.2  # of the catalog-only entries, the share whose [[PDF]] link points nowhere
METADATA_TITLE = 0.85  # of the PDFs, the share with a document-info Title

QUALIFIERS = [
    "Neural", "Probabilistic", "Distributed", "Efficient", "Robust", "Interactive", "Scalable",
    "Secure", "Approximate", "Self-supervised",
]
FIELDS = [
    "image synthesis", "program analysis", "garbage collection", "consensus protocols",
    "speech recognition", "graph algorithms", "query optimization", "face animation",
    "pattern matching", "quantum algorithms",
]
SUBTOPICS = [
    "Surveys", "Benchmarks and datasets", "3D based approaches", "Theory", "Systems",
    "Applications", "Early work", "Learning based approaches", "Analysis", "Hardware",
]
ADJECTIVES = [
    "Adaptive", "Hierarchical", "Sparse", "Contrastive", "Incremental", "Lock-free", "Differentiable",
    "Generative", "Concurrent", "Latent", "Multi-scale", "Real-time", "Few-shot", "Bayesian",
    "Compositional", "Streaming", "Verified", "Lightweight", "Cross-modal", "Unsupervised",
]
TECHNIQUES = [
    "attention", "diffusion", "message passing", "region inference", "transformers", "hashing",
    "reference counting", "graph neural networks", "sketching", "adversarial training",
    "dynamic programming", "type inference", "variational inference", "random projections",
    "optimistic replication", "program synthesis", "style modulation", "contrastive learning",
    "speculative execution", "lattice reduction",
]
OBJECTS = [
    "talking faces", "heap snapshots", "query plans", "lip movements", "decision trees",
    "replicated logs", "speech embeddings", "distributed ledgers", "latent codes", "memory layouts",
    "face meshes", "code embeddings", "quantum circuits", "cardinality estimates", "audio streams",
]
VERBS = ["Generate", "Compress", "Verify", "Align", "Schedule", "Reconstruct", "Rank", "Animate", "Index"]
TEMPLATES = [
    "{Adj} {Field} via {Tech}",
    "{Adj} {Tech} for {Field}",
    "On the Limits of {Tech} in {Field}",
    "Towards {Adj} {Field} with {Tech}",
    "Learning to {Verb} {Obj} with {Adj} {Tech}",
    "{Adj} {Obj}: {Tech} at Scale",
    "Revisiting {Tech} for {Adj} {Field}",
    "A Study of {Adj} {Tech} on {Obj}",
]
SYLLABLES = ["Sync", "Style", "Flow", "Lip", "Face", "Graph", "Heap", "Query", "Quant", "Pix", "Voice"]
SUFFIXES = ["Net", "GAN", "Former", "Diff", "Pipe", "GC", "Opt", "Match", "Sketch", "Talk"]
VENUES = [
    "CVPR", "ICCV", "ECCV", "NeurIPS", "ICML", "ICLR", "SIGGRAPH", "AAAI", "ACL", "EMNLP",
    "arXiv", "TPAMI", "PLDI", "POPL", "OSDI", "SOSP", "VLDB", "SIGMOD", "STOC", "ACM Multimedia",
]
FIRST = ["Wei", "Anna", "Jun", "Maria", "Ken", "Olga", "Ravi", "Lena", "Tom", "Yuki", "Omar", "Sara"]
LAST = ["Chen", "Novak", "Garcia", "Ito", "Smith", "Kumar", "Rossi", "Muller", "Kim", "Okafor", "Zhang"]
NOTES = ["(baseline for our project)", "(read with the supplementary)", "(code does not reproduce)"]


@dataclass
class Source:
    """A readable corpus PDF: its path, page count and sentences usable in a generated abstract."""

    path: str
    pages: int
    sentences: list[str]


@dataclass
class Plan:
    """Everything one generated PDF is made of, decided in the main process (deterministic)."""

    file: str
    title: str
    authors: str
    abstract: str
    runs: list[tuple[int, int, int]]  # (source index, first page, page count)
    metadata_title: bool


@dataclass
class Entry:
    title: str
    alias: str | None
    link: str | None  # ./paper/x.pdf, or None for a catalog-only entry
    venue: str
    year: int
    read: bool
    url: str | None = None
    github: str | None = None
    note: str | None = None
    subtopic: int = 0
    topic: int = 0
    extras: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- sources


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def load_sources() -> list[Source]:
    """The corpus PDFs that kb extracts as ok and pypdf reads, page counts agreeing."""
    from pypdf import PdfReader

    from kb.extract import extract_pdf

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)

    files = sorted((CORPUS / "userlib" / "paper").glob("*.pdf"))
    files += sorted((CORPUS / "pwl-dev").rglob("*.pdf"))
    sources = []
    for f in files:
        ex = extract_pdf(f)
        if ex.status != "ok":
            continue
        try:
            reader = PdfReader(f, strict=False)
            if reader.is_encrypted or len(reader.pages) != len(ex.pages):
                continue
        except Exception:  # a PDF pypdf cannot copy pages from is no source
            continue
        text = " ".join(ex.pages[:4])
        sentences = [
            s.strip()
            for s in _SENTENCE.split(text)
            if 60 <= len(s.strip()) <= 260 and s.isascii() and sum(c.isalpha() for c in s) > 0.7 * len(s)
        ]
        if sentences:
            sources.append(Source(str(f), len(ex.pages), sentences[:300]))
    if not sources:
        raise SystemExit(f"no readable source PDFs under {CORPUS} (set KB_SHARED to the shared folder)")
    return sources


# ----------------------------------------------------------------------------- plans


def _title(rng: random.Random) -> str:
    text = rng.choice(TEMPLATES).format(
        Adj=rng.choice(ADJECTIVES),
        Field=rng.choice(FIELDS),
        Tech=rng.choice(TECHNIQUES),
        Verb=rng.choice(VERBS),
        Obj=rng.choice(OBJECTS),
    )
    return text[0].upper() + text[1:]


def _alias(rng: random.Random) -> str:
    return rng.choice(SYLLABLES) + rng.choice(SUFFIXES) + rng.choice(["", "", "2", "++", "-X"])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:90]


def _pages(rng: random.Random) -> int:
    """6-30 pages, most papers 8-16, like a real library of conference and journal papers."""
    return max(6, min(30, round(rng.lognormvariate(2.5, 0.35))))


def make_plans(n: int, seed: int, sources: list[Source]) -> tuple[list[Plan], list[Entry]]:
    rng = random.Random(f"kb-scale-{seed}")
    titles: set[str] = set()
    files: set[str] = set()
    plans: list[Plan] = []
    entries: list[Entry] = []
    topics = len(QUALIFIERS) * len(FIELDS)
    for _ in range(n):
        title = _title(rng)
        while title in titles:  # distinct titles: a numbered part when the grammar repeats itself
            title = f"{_title(rng)}, Part {rng.randint(2, 9)}"
        titles.add(title)
        alias = _alias(rng) if rng.random() < 0.5 else None
        stem = alias if alias and rng.random() < 0.5 else _slug(title)
        name, k = f"{stem}.pdf", 2
        while name.lower() in files:
            name, k = f"{stem}_{k}.pdf", k + 1
        files.add(name.lower())
        src = rng.randrange(len(sources))
        body = _pages(rng) - 1
        runs: list[tuple[int, int, int]] = []
        s = src
        while body > 0:
            count = min(body, sources[s].pages, rng.randint(3, 14))
            first = rng.randrange(sources[s].pages - count + 1)
            runs.append((s, first, count))
            body -= count
            s = rng.randrange(len(sources))
        sentences = sources[src].sentences
        abstract = " ".join(rng.sample(sentences, min(len(sentences), rng.randint(4, 7))))
        authors = ", ".join(f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(rng.randint(1, 5)))
        plans.append(Plan(name, title, authors, abstract, runs, rng.random() < METADATA_TITLE))
        entries.append(
            Entry(
                title=title,
                alias=alias,
                link=f"./paper/{name}",
                venue=rng.choice(VENUES),
                year=rng.randint(2012, 2024) if rng.random() < 0.85 else rng.randint(1970, 2011),
                read=rng.random() < 0.4,
                url=f"https://arxiv.org/abs/{rng.randint(1501, 2412)}.{rng.randint(10000, 99999)}"
                if rng.random() < 0.3
                else None,
                github=f"https://github.com/{rng.choice(LAST).lower()}/{(alias or 'code').lower()}"
                if rng.random() < 0.15
                else None,
                note=rng.choice(NOTES) if rng.random() < 0.05 else None,
                topic=rng.randrange(topics),
            )
        )
    # 5% of the PDFs in no list; as many catalog-only entries (a few with a dead [[PDF]] link)
    unlisted = set(rng.sample(range(n), n - round(n * LISTED_SHARE)))
    for i in sorted(unlisted):
        e = entries[i]
        e.link = f"./paper/missing/{Path(e.link or '').name}" if rng.random() < MISSING_LINKS else None
        e.title = _title(rng) + ": " + e.title.split(" ")[-1].capitalize() + " Revisited"
        e.alias = None
    rng.shuffle(entries)
    return plans, entries


# ----------------------------------------------------------------------------- PDFs


def _pdf_text(s: str) -> str:
    s = s.encode("latin-1", "replace").decode("latin-1")
    return "(" + s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def _title_page_content(plan: Plan) -> bytes:
    """A page content stream: title (20 pt bold), authors, 'Abstract', the abstract (10 pt)."""
    ops = ["BT /F2 20 Tf 24 TL 72 700 Td"]
    ops += [f"{_pdf_text(line)} Tj T*" for line in _wrap(plan.title, 44)]
    ops += ["/F1 11 Tf 16 TL T*", f"{_pdf_text(plan.authors)} Tj T* T*", "/F2 11 Tf (Abstract) Tj T*"]
    ops += ["/F1 10 Tf 13 TL"] + [f"{_pdf_text(line)} Tj T*" for line in _wrap(plan.abstract, 92)]
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


_READERS: dict[str, object] = {}


def _reader(path: str):  # noqa: ANN202 - pypdf's PdfReader, one per source per worker
    from pypdf import PdfReader

    if path not in _READERS:
        _READERS[path] = PdfReader(path, strict=False)
    return _READERS[path]


def _drop_images(page) -> None:  # noqa: ANN001 - a pypdf PageObject
    from pypdf.generic import NameObject

    res = page.get("/Resources")
    xobjects = res.get_object().get("/XObject") if res is not None else None
    if xobjects is None:
        return
    xobjects = xobjects.get_object()
    for key in list(xobjects.keys()):
        if xobjects[key].get_object().get("/Subtype") == "/Image":
            del xobjects[NameObject(key)]


def write_pdf(job: tuple[Plan, list[str], str, bool]) -> int:
    """Write one planned PDF; return its size in bytes."""
    from pypdf import PageObject, PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    plan, source_paths, out_dir, images = job
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # damaged sources warn on every page
    writer = PdfWriter()
    page = PageObject.create_blank_page(width=612, height=792)

    def font(base: str) -> DictionaryObject:
        return DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject(base),
                NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
            }
        )

    fonts = DictionaryObject(
        {NameObject("/F1"): font("/Helvetica"), NameObject("/F2"): font("/Helvetica-Bold")}
    )
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
    content = DecodedStreamObject()
    content.set_data(_title_page_content(plan))
    page[NameObject("/Contents")] = writer._add_object(content)
    writer.add_page(page)
    for src, first, count in plan.runs:
        reader = _reader(source_paths[src])
        for k in range(first, first + count):
            src_page = reader.pages[k]
            if not images:
                _drop_images(src_page)
            writer.add_page(src_page)
    meta = {"/Producer": "kb make_scale_library", "/Author": plan.authors}
    if plan.metadata_title:
        meta["/Title"] = plan.title
    writer.add_metadata(meta)
    target = Path(out_dir) / "paper" / plan.file
    with open(target, "wb") as fh:
        writer.write(fh)
    return target.stat().st_size


# ----------------------------------------------------------------------------- reading list


def entry_line(e: Entry) -> str:
    box = "[x]" if e.read else "[ ]"
    alias = f"({e.alias}) " if e.alias else ""
    title = f"[{e.title}.]({e.url})" if e.url else f"{e.title}."
    parts = [f"  - {box} {alias}{title}"]
    if e.link:
        parts.append(f"[[PDF]]({e.link})")
    if e.github:
        parts.append(f"[[Github]]({e.github})")
    parts.append(f"{e.venue}, {e.year}.")
    if e.note:
        parts.append(e.note)
    return " ".join(parts)


def reading_list(entries: list[Entry], seed: int) -> str:
    rng = random.Random(f"kb-scale-list-{seed}")
    topics = [f"{q} {f}" for q in QUALIFIERS for f in FIELDS]
    by_topic: dict[int, list[Entry]] = {}
    for e in entries:
        by_topic.setdefault(e.topic, []).append(e)
    out = [f"#  Scale library\n Generated by bench/make_scale_library.py (seed {seed}).\n"]
    for t in sorted(by_topic):
        out.append(f"\n####  {topics[t][0].upper() + topics[t][1:]}\n")
        subs = rng.sample(SUBTOPICS, rng.randint(2, 5))
        groups: dict[str, list[Entry]] = {s: [] for s in subs}
        for e in by_topic[t]:
            groups[rng.choice(subs)].append(e)
        for sub, items in groups.items():
            if items:
                out.append(f"- {sub}")
                out.extend(entry_line(e) for e in items)
                out.append("")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "scale")
    ap.add_argument("--papers", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="writer processes")
    ap.add_argument("--images", action="store_true", help="keep the images of the copied pages")
    args = ap.parse_args(argv)
    if args.papers < 1:
        raise SystemExit("--papers must be at least 1")

    t0 = time.perf_counter()
    sources = load_sources()
    plans, entries = make_plans(args.papers, args.seed, sources)
    took = time.perf_counter() - t0
    print(f"{len(sources)} source PDFs, {sum(s.pages for s in sources)} pages; planned in {took:.0f} s")
    if args.out.exists():
        shutil.rmtree(args.out)
    (args.out / "paper").mkdir(parents=True)
    paths = [s.path for s in sources]
    jobs = [(p, paths, str(args.out), args.images) for p in plans]
    size = 0
    done = 0
    t1 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for got in pool.imap_unordered(write_pdf, jobs, chunksize=16):
            size += got
            done += 1
            if done % 1000 == 0 or done == len(jobs):
                rate = done / (time.perf_counter() - t1)
                print(f"  {done} PDFs, {size / 1e6:.0f} MB, {rate:.0f} PDFs/s", flush=True)
    (args.out / "README.md").write_text(reading_list(entries, args.seed), encoding="utf-8")
    pages = sum(1 + sum(c for _, _, c in p.runs) for p in plans)
    listed = sum(1 for e in entries if e.link and "/missing/" not in e.link)
    print(
        f"{args.out}: {len(plans)} PDFs ({pages} pages, {size / 1e6:.0f} MB), README.md with "
        f"{len(entries)} entries ({listed} linking a PDF) in {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
