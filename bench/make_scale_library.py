"""Generate a realistic library of N distinct papers for `make bench-scale` (not committed).

    python bench/make_scale_library.py [--out build/scale] [--papers 10000] [--seed 0] [--jobs 2]

Writes ``OUT/paper/*.pdf`` and ``OUT/README.md``. Each PDF is a new paper recombined from the
readable PDFs of ../shared/corpus (userlib + pwl-dev; scans, garbled and broken files skipped) with
pdfium's page import (20x faster than pypdf's page copy here): a generated title page (title in a
large font, authors, an abstract of sentences from a source paper) set in Helvetica, then 5-29
body pages taken as one to three runs of consecutive pages from source papers, so lengths run from
6 to 30 pages (median ~12). The title page makes every file's text and bytes distinct; most files
also carry the title as document metadata, the others must be recognised from their first page,
as in real life. Images are dropped from the copied pages by default (image-free copies of the
sources are made once with pypdf; ``--images`` keeps them): text extraction does not read them,
and they would multiply the size on disk.

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


def _arxiv_url(rng: random.Random) -> str:
    return f"https://arxiv.org/abs/{rng.randint(15, 24)}{rng.randint(1, 12):02d}.{rng.randint(1, 29999):05d}"


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
                url=_arxiv_url(rng) if rng.random() < 0.3 else None,
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


def lean_copy(job: tuple[str, str]) -> str:
    """A copy of a source PDF without its images (pypdf, once per source and run)."""
    from pypdf import PdfReader, PdfWriter

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # damaged sources warn on every page
    source, target = job
    writer = PdfWriter()
    for page in PdfReader(source, strict=False).pages:
        _drop_images(page)
        writer.add_page(page)
    with open(target, "wb") as fh:
        writer.write(fh)
    return target


_DOCS: dict[str, object] = {}


def _source_doc(path: str):  # noqa: ANN202 - a pypdfium2 PdfDocument, opened once per worker
    import pypdfium2 as pdfium

    if path not in _DOCS:
        _DOCS[path] = pdfium.PdfDocument(path)
    return _DOCS[path]


def _title_page(doc, plan: Plan) -> None:  # noqa: ANN001 - a pypdfium2 PdfDocument
    """Title (20 pt bold), authors, 'Abstract' and the abstract (10 pt), one text object per line."""
    import ctypes

    import pypdfium2.raw as c

    page = doc.new_page(612, 792)
    regular = c.FPDFText_LoadStandardFont(doc, b"Helvetica")
    bold = c.FPDFText_LoadStandardFont(doc, b"Helvetica-Bold")
    lines = [(line, bold, 20.0, 24) for line in _wrap(plan.title, 44)]
    lines += [(plan.authors, regular, 11.0, 30), ("Abstract", bold, 11.0, 24)]
    lines += [(line, regular, 10.0, 13) for line in _wrap(plan.abstract, 92)]
    y = 700.0
    for text, font, size, lead in lines:
        obj = c.FPDFPageObj_CreateTextObj(doc, font, size)
        buf = ctypes.create_string_buffer((text + "\0").encode("utf-16-le"))
        c.FPDFText_SetText(obj, ctypes.cast(buf, ctypes.POINTER(c.FPDF_WCHAR)))
        c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 72, y)
        c.FPDFPage_InsertObject(page, obj)
        y -= lead
    c.FPDFPage_GenerateContent(page)
    page.close()


_CREATED = re.compile(rb"(<</CreationDate\(D:)([0-9+\-Z']+)(\)/Creator\(PDFium\))")
_DATE = b"20240101000000+00'00'"


def _fixed_date(m: re.Match[bytes]) -> bytes:
    """pdfium's creation time, replaced by a fixed one of the same length (no offset moves)."""
    n = len(m.group(2))
    return m.group(1) + _DATE[:n].ljust(n, b"0") + m.group(3)


_TRAILER = re.compile(rb"trailer\s*<<(.*?)>>\s*startxref\s+(\d+)\s*%%EOF\s*$", re.S)


def _finish(data: bytes, plan: Plan) -> bytes:
    """Make pdfium's output deterministic and add the metadata Title.

    pdfium stamps a random /ID and the current time: they are replaced by an ID derived from the
    plan and a fixed date (same lengths, so no offset moves). pdfium cannot set metadata, so the
    Title goes into an appended incremental update (a new Info object, an xref section and a
    trailer pointing back to the previous one).
    """
    import hashlib

    m = _TRAILER.search(data, len(data) - 4096)
    if m is None:
        raise RuntimeError(f"{plan.file}: unexpected PDF trailer from pdfium")
    digest = hashlib.md5(f"{plan.file}\n{plan.title}".encode()).hexdigest().upper().encode()

    def fixed_id(id_match: re.Match[bytes]) -> bytes:
        return b"<" + (digest * 4)[: len(id_match.group(1))] + b">"

    head, trailer = data[: m.start(1)], re.sub(rb"<([0-9A-Fa-f]+)>", fixed_id, m.group(1))
    data = _CREATED.sub(_fixed_date, head) + trailer + data[m.end(1) :]
    if not plan.metadata_title:
        return data
    size = int(re.search(rb"/Size\s+(\d+)", trailer).group(1))  # type: ignore[union-attr]
    root = re.search(rb"/Root\s+(\d+\s+\d+\s+R)", trailer).group(1).decode()  # type: ignore[union-attr]
    ids = re.search(rb"/ID\s*\[[^\]]*\]", trailer)
    fields = f"/Title {_pdf_text(plan.title)} /Author {_pdf_text(plan.authors)}"
    info = f"{size} 0 obj\r\n<< {fields} >>\r\nendobj\r\n"
    xref_at = len(data) + len(info)
    update = (
        f"{info}xref\r\n0 1\r\n0000000000 65535 f\r\n{size} 1\r\n{len(data):010d} 00000 n\r\n"
        f"trailer\r\n<< /Size {size + 1} /Root {root} /Info {size} 0 R /Prev {int(m.group(2))} "
        f"{ids.group(0).decode() if ids else ''} >>\r\nstartxref\r\n{xref_at}\r\n%%EOF\r\n"
    )
    return data + update.encode("latin-1")


def write_pdf(job: tuple[Plan, list[str], str]) -> int:
    """Write one planned PDF with pdfium (title page + imported page runs); return its size."""
    import io

    import pypdfium2 as pdfium

    plan, source_paths, out_dir = job
    doc = pdfium.PdfDocument.new()
    _title_page(doc, plan)
    for src, first, count in plan.runs:
        doc.import_pages(_source_doc(source_paths[src]), pages=list(range(first, first + count)))
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    data = _finish(buf.getvalue(), plan)
    (Path(out_dir) / "paper" / plan.file).write_bytes(data)
    return len(data)


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
    lean = args.out / ".sources"  # image-free copies of the sources, removed at the end
    lean.mkdir()
    size = 0
    done = 0
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        if args.images:
            paths = [s.path for s in sources]
        else:
            copies = [(s.path, str(lean / f"{k:03d}.pdf")) for k, s in enumerate(sources)]
            paths = pool.map(lean_copy, copies, chunksize=1)
            print(f"image-free copies of the sources in {time.perf_counter() - t0:.0f} s", flush=True)
        jobs = [(p, paths, str(args.out)) for p in plans]
        t1 = time.perf_counter()
        for got in pool.imap_unordered(write_pdf, jobs, chunksize=16):
            size += got
            done += 1
            if done % 1000 == 0 or done == len(jobs):
                rate = done / (time.perf_counter() - t1)
                print(f"  {done} PDFs, {size / 1e6:.0f} MB, {rate:.0f} PDFs/s", flush=True)
    shutil.rmtree(lean)
    (args.out / "README.md").write_text(reading_list(entries, args.seed), encoding="utf-8")
    pages = sum(1 + sum(c for _, _, c in p.runs) for p in plans)
    listed = sum(1 for e in entries if e.link and "/missing/" not in e.link)
    print(
        f"{args.out}: {len(plans)} PDFs ({pages} pages, {size / 1e6:.0f} MB), README.md with "
        f"{len(entries)} entries ({listed} linking a PDF) in {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
