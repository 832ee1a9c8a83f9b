"""Measure the per-page OCR detector and the OCR engine on the shared corpora (numbers for the README).

Usage::

    python bench/ocr_bench.py detector                     # flagged pages per file, detector cost
    python bench/ocr_bench.py accuracy [--pages 20] [--variants rapid:150,rapid:200,rapid:300,tesseract:300]
    python bench/ocr_bench.py flagged [--dpi 150,200,300] [--per-file N]
    python bench/ocr_bench.py chinese [--variants rapid:150,rapid:200,rapid:300]

``KB_SHARED`` names the shared folder when it is not ``../shared``.

* ``detector``: extracts every PDF of ``../shared/corpus`` (userlib, pwl-dev, odd), prints the pages
  ``Extraction.needs_ocr`` flags per file with the first reason, and the detector's cost per page next
  to the cost of reading the text layer (it must be negligible).
* ``accuracy``: OCRs a fixed sample of pages whose text layer is good (one page per file, seeded) and
  compares with that text layer: character error rate (Levenshtein distance / reference length over
  whitespace-normalised ``clean_text``), word recall and precision (bags of words of 3+ letters), and
  seconds per page. Variants run interleaved page by page, so machine load hits all of them alike.
  ``rapid:DPI`` is kb.ocr's engine, ``rapid-cls:DPI`` the same with rapidocr's orientation classifier,
  ``tesseract:DPI`` the ``tesseract`` command (Debian ``tesseract-ocr``) when it is installed.
* ``flagged``: OCRs every flagged page of the corpus (``--per-file N`` for a sample) and prints words per
  page, the share of those words that occur in the corpus's good text layers (a proxy for "real words"),
  the mean line confidence and seconds per page, next to the same numbers for the old text layer.
* ``chinese``: OCRs the pages of userlib's Chinese StyleGAN2 translation richest in Han characters and
  compares with the text layer (CER over text without whitespace, Han-character recall).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb import ocr  # noqa: E402
from kb.extract import (  # noqa: E402
    _nearly_empty,
    _pdfium_image_cover,
    _read_pdfium,
    clean_text,
    extract_pdf,
    pages_needing_ocr,
)

CORPUS = Path(os.environ.get("KB_SHARED", ROOT.parent / "shared")).resolve() / "corpus"
LIBRARIES = ("userlib", "pwl-dev")
CHINESE = CORPUS / "userlib" / "paper" / "stylegan2_chs.pdf"
_WORDS = re.compile(r"[^\W\d_]{3,}")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def corpus_pdfs(libraries: tuple[str, ...] = (*LIBRARIES, "odd")) -> list[Path]:
    return [p for lib in libraries for p in sorted((CORPUS / lib).rglob("*.pdf"))]


def rel(path: Path) -> str:
    return str(path.relative_to(CORPUS))


# ---------------------------------------------------------------------------------------------- engines


@dataclass
class Variant:
    """One OCR configuration: ``name`` is ``engine:dpi``; ``run(path, page) -> text``."""

    name: str
    dpi: int
    run: Callable[[Path, int], str]
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # CPU seconds (this process + children): robust to load


def _rapid(dpi: int, use_cls: bool) -> Callable[[Path, int], str]:
    from rapidocr import RapidOCR

    params = ocr.engine_params()
    params["Global.use_cls"] = use_cls
    engine = RapidOCR(params=params)

    def run(path: Path, page: int) -> str:
        img = ocr.render_page(path, page, dpi)
        return ocr.lines_to_text(ocr.recognise(img, engine), float(img.shape[1]))

    return run


def _tesseract(dpi: int, lang: str) -> Callable[[Path, int], str]:
    from PIL import Image

    def run(path: Path, page: int) -> str:
        buf = io.BytesIO()
        Image.fromarray(ocr.render_page(path, page, dpi)).save(buf, format="PNG")
        out = subprocess.run(
            ["tesseract", "stdin", "stdout", "-l", lang, "--psm", "3"],
            input=buf.getvalue(),
            capture_output=True,
            check=True,
        )
        return clean_text(out.stdout.decode("utf-8", "replace"))

    return run


def make_variants(spec: str, lang: str = "eng") -> list[Variant]:
    variants = []
    for item in spec.split(","):
        name, dpi_s = item.strip().split(":")
        dpi = int(dpi_s)
        if name == "tesseract":
            if not shutil.which("tesseract"):
                print(
                    f"skipping {item}: the tesseract command is not installed (apt-get install tesseract-ocr)"
                )
                continue
            run = _tesseract(dpi, lang)
        elif name in ("rapid", "rapid-cls"):
            run = _rapid(dpi, use_cls=name == "rapid-cls")
        else:
            raise SystemExit(f"unknown variant {item!r}: rapid:DPI, rapid-cls:DPI or tesseract:DPI")
        variants.append(Variant(item.strip(), dpi, run))
    return variants


def _cpu() -> float:
    import resource

    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + child.ru_utime + child.ru_stime


def timed(v: Variant, path: Path, page: int) -> str:
    t0, c0 = time.perf_counter(), _cpu()
    text = v.run(path, page)
    v.seconds.append(time.perf_counter() - t0)
    v.cpu.append(_cpu() - c0)
    return text


# ---------------------------------------------------------------------------------------------- metrics


def norm(s: str) -> str:
    return " ".join(clean_text(s).split())


def cer(hyp: str, ref: str) -> float:
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(hyp, ref) / max(1, len(ref))


def bag(s: str) -> Counter[str]:
    return Counter(w.lower() for w in _WORDS.findall(s))


def recall_precision(hyp: str, ref: str) -> tuple[float, float]:
    h, r = bag(hyp), bag(ref)
    matched = sum((h & r).values())
    return matched / max(1, sum(r.values())), matched / max(1, sum(h.values()))


# ---------------------------------------------------------------------------------------------- detector


def detector_cost(path: Path) -> tuple[float, float]:
    """Seconds to read a PDF's text layer, and seconds the detector adds (verdicts + image cover)."""
    import pypdfium2 as pdfium

    t0 = time.perf_counter()
    raw = _read_pdfium(path, None, time.monotonic() + 120)
    t1 = time.perf_counter()
    pages_needing_ocr(raw.pages, [raw.image_cover.get(i, 0.0) for i in range(len(raw.pages))])
    detect = time.perf_counter() - t1
    empty = [i for i, t in enumerate(raw.pages) if _nearly_empty(t)]
    if empty:  # the image cover was measured inside _read_pdfium: time it again on its own
        doc = pdfium.PdfDocument(str(path))
        t2 = time.perf_counter()
        for i in empty:
            page = doc[i]
            _pdfium_image_cover(page)
            page.close()
        detect += time.perf_counter() - t2
        doc.close()
    return t1 - t0, detect


def cmd_detector(_: argparse.Namespace) -> None:
    cost = {"clean": [0.0, 0.0, 0], "flagged": [0.0, 0.0, 0]}  # files without / with flagged pages
    pages = flagged = 0
    for path in corpus_pdfs():
        ex = extract_pdf(path)
        pages += len(ex.pages)
        if ex.needs_ocr:
            flagged += len(ex.needs_ocr)
            kinds = Counter(f.kind for f in ex.needs_ocr)
            nums = ",".join(str(f.page) for f in ex.needs_ocr)
            print(
                f"{rel(path)} [{ex.status}] {len(ex.needs_ocr)}/{len(ex.pages)} pages {dict(kinds)}: {nums}"
            )
            print(f"    p{ex.needs_ocr[0].page}: {ex.needs_ocr[0].reason}")
        if ex.status == "failed":
            continue
        read, detect = detector_cost(path)
        row = cost["flagged" if ex.needs_ocr else "clean"]
        row[0] += read
        row[1] += detect
        row[2] += len(ex.pages)
    print(f"\n{flagged} of {pages} pages flagged")
    for name, (read, detect, n) in cost.items():
        print(
            f"files {'with' if name == 'flagged' else 'without'} flagged pages ({n} pages): text layer"
            f" {1000 * read / n:.2f} ms/page, detector {1000 * detect / n:.3f} ms/page"
            f" (+{100 * detect / read:.1f}%)"
        )


# ---------------------------------------------------------------------------------------------- accuracy


def good_pages(n: int, seed: int = 12) -> list[tuple[Path, int, str]]:
    """One random page per file with a good, substantial Latin text layer, from n random files."""
    rng = random.Random(seed)
    candidates = []
    for path in corpus_pdfs(LIBRARIES):
        ex = extract_pdf(path)
        if ex.status != "ok":
            continue
        flagged = {f.page for f in ex.needs_ocr}
        ok = [
            i + 1
            for i, t in enumerate(ex.pages)
            if i + 1 not in flagged and len(t) >= 1500 and not _HAN.search(t)
        ]
        if ok:
            page = rng.choice(ok)
            candidates.append((path, page, ex.pages[page - 1]))
    rng.shuffle(candidates)
    return sorted(candidates[:n], key=lambda c: rel(c[0]))


def report(variants: list[Variant], scores: dict[str, list[tuple[float, float, float]]], pages: int) -> None:
    print(
        f"\n{'variant':16} {'pages':>5} {'CER mean':>8} {'CER med':>8} {'recall':>7} {'precis.':>7}"
        f" {'s/page':>7} {'CPU s/p':>7}"
    )
    for v in variants:
        rows = scores[v.name]
        if not rows:
            continue
        c = [r[0] for r in rows]
        print(
            f"{v.name:16} {len(rows):5d} {statistics.mean(c):8.3f} {statistics.median(c):8.3f}"
            f" {statistics.mean(r[1] for r in rows):7.3f} {statistics.mean(r[2] for r in rows):7.3f}"
            f" {statistics.mean(v.seconds):7.2f} {statistics.mean(v.cpu):7.2f}"
        )
    base = next((v for v in variants if v.seconds), None)
    if base:
        ratios = ", ".join(
            f"{v.name} {statistics.mean(v.seconds) / statistics.mean(base.seconds):.2f}x" for v in variants
        )
        print(f"time relative to {base.name} (same run, interleaved): {ratios}")


def cmd_accuracy(args: argparse.Namespace) -> None:
    variants = make_variants(args.variants)
    sample = good_pages(args.pages)
    print(f"{len(sample)} pages with a good text layer; variants {', '.join(v.name for v in variants)}")
    for v in variants:  # load models before timing
        v.run(sample[0][0], sample[0][1])
    scores: dict[str, list[tuple[float, float, float]]] = {v.name: [] for v in variants}
    for k, (path, page, ref_raw) in enumerate(sample):
        ref = norm(ref_raw)
        cells = []
        for v in variants[k % len(variants) :] + variants[: k % len(variants)]:  # rotate the order
            hyp = norm(timed(v, path, page))
            rec, prec = recall_precision(hyp, ref)
            scores[v.name].append((cer(hyp, ref), rec, prec))
            cells.append(f"{v.name} cer={scores[v.name][-1][0]:.3f} recall={rec:.3f} {v.seconds[-1]:.1f}s")
        print(f"{rel(path)} p{page}: " + "; ".join(sorted(cells)), flush=True)
    report(variants, scores, len(sample))


# ---------------------------------------------------------------------------------------------- flagged


def vocabulary() -> set[str]:
    words: set[str] = set()
    for path in corpus_pdfs(LIBRARIES):
        ex = extract_pdf(path)
        flagged = {f.page for f in ex.needs_ocr}
        for i, t in enumerate(ex.pages):
            if i + 1 not in flagged:
                words.update(w.lower() for w in _WORDS.findall(t))
    return words


def spread(items: list, n: int) -> list:
    """``n`` items spread evenly over the list (all when n is 0 or the list is short)."""
    if not n or len(items) <= n:
        return items
    return [items[round(k * (len(items) - 1) / (n - 1))] for k in range(n)] if n > 1 else items[:1]


def _worker_cpu(worker: ocr.OcrWorker) -> float:
    """CPU seconds used so far by the worker's child process (0.0 before it starts)."""
    pool = worker._pool
    total = 0.0
    for pid in getattr(pool, "_processes", {}) or {}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def cmd_flagged(args: argparse.Namespace) -> None:
    vocab = vocabulary()
    print(f"vocabulary: {len(vocab)} words of 3+ letters from the good text layers")
    dpis = [int(d) for d in str(args.dpi).split(",")]
    workers = {d: ocr.OcrWorker(dpi=d, timeout_s=args.timeout) for d in dpis}
    print(
        f"\n{'file':52} {'dpi':>4} {'pages':>5} {'layer w/p':>9} {'known':>6} {'OCR w/p':>8} {'known':>6}"
        f" {'conf':>5} {'s/page':>6} {'CPU s/p':>7}"
    )
    totals = {d: [0, 0, 0.0, 0.0] for d in dpis}  # pages, words, seconds, CPU seconds
    try:
        for path in corpus_pdfs():
            ex = extract_pdf(path)
            if not ex.needs_ocr:
                continue
            flags = spread(ex.needs_ocr, args.per_file)
            layer_words = [w.lower() for f in flags for w in _WORDS.findall(ex.pages[f.page - 1])]
            known_layer = sum(w in vocab for w in layer_words) / max(1, len(layer_words))
            rows: dict[int, list] = {d: [[], [], [], [], []] for d in dpis}  # words, conf, s, cpu, errors
            for k, f in enumerate(flags):
                for d in dpis[k % len(dpis) :] + dpis[: k % len(dpis)]:  # rotate the order
                    c0 = _worker_cpu(workers[d])
                    res = workers[d].ocr(path, f.page)
                    row = rows[d]
                    row[0] += [w.lower() for w in _WORDS.findall(res.text)]
                    row[1].append(res.confidence)
                    row[2].append(res.seconds)
                    row[3].append(max(0.0, _worker_cpu(workers[d]) - c0))
                    if res.error:
                        row[4].append(f"p{f.page}: {res.error}")
            n = len(flags)
            for d in dpis:
                words, confs, secs, cpus, errors = rows[d]
                known = sum(w in vocab for w in words) / max(1, len(words))
                print(
                    f"{rel(path)[:52]:52} {d:4d} {n:5d} {len(layer_words) / n:9.0f} {known_layer:6.0%}"
                    f" {len(words) / n:8.0f} {known:6.0%} {statistics.mean(confs):5.2f}"
                    f" {statistics.mean(secs):6.1f} {statistics.mean(cpus):7.1f}",
                    flush=True,
                )
                for e in errors:
                    print(f"    {e}")
                t = totals[d]
                t[0] += n
                t[1] += len(words)
                t[2] += sum(secs)
                t[3] += sum(cpus)
    finally:
        for w in workers.values():
            w.close()
    for d, (pages, words, secs, cpus) in totals.items():
        print(
            f"{pages} flagged pages at {d} dpi: {words / max(1, pages):.0f} words/page,"
            f" {secs / max(1, pages):.1f} s/page ({pages / max(1e-9, secs):.3f} pages/s),"
            f" {cpus / max(1, pages):.1f} CPU s/page"
        )


# ---------------------------------------------------------------------------------------------- chinese


def cmd_chinese(args: argparse.Namespace) -> None:
    ex = extract_pdf(CHINESE)
    ranked = sorted(range(len(ex.pages)), key=lambda i: -len(_HAN.findall(ex.pages[i])))[: args.pages]
    variants = make_variants(args.variants, lang="chi_sim+eng")
    for v in variants:
        v.run(CHINESE, ranked[0] + 1)
    print(f"{rel(CHINESE)}: pages {', '.join(str(i + 1) for i in ranked)} (most Han characters)")
    for i in ranked:
        ref = "".join(ex.pages[i].split())
        ref_han = Counter(_HAN.findall(ref))
        for v in variants:
            hyp = "".join(timed(v, CHINESE, i + 1).split())
            han_recall = sum((Counter(_HAN.findall(hyp)) & ref_han).values()) / max(1, sum(ref_han.values()))
            print(
                f"  p{i + 1} {v.name:14} CER {cer(hyp, ref):.3f}  Han recall {han_recall:.3f}"
                f"  ({sum(ref_han.values())} Han chars)  {v.seconds[-1]:.1f} s"
            )
            if args.show:
                print("    OCR :", hyp[:200])
                print("    text:", ref[:200])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("detector", help="flagged pages per file and detector cost")
    a = sub.add_parser("accuracy", help="CER on good pages, per variant")
    a.add_argument("--pages", type=int, default=20)
    a.add_argument("--variants", default="rapid:150,rapid:200,rapid:300,tesseract:300")
    f = sub.add_parser("flagged", help="words per page on every flagged page")
    f.add_argument("--dpi", default=str(ocr.DEFAULT_DPI), help="one dpi or several: 150,200,300")
    f.add_argument("--per-file", type=int, default=0, help="only N flagged pages of each file, spread evenly")
    f.add_argument("--timeout", type=float, default=ocr.DEFAULT_PAGE_TIMEOUT_S)
    c = sub.add_parser("chinese", help="OCR of the Chinese StyleGAN2 translation vs its text layer")
    c.add_argument("--pages", type=int, default=2)
    c.add_argument("--variants", default="rapid:150,rapid:200,rapid:300")
    c.add_argument("--show", action="store_true")
    args = ap.parse_args(argv)
    {"detector": cmd_detector, "accuracy": cmd_accuracy, "flagged": cmd_flagged, "chinese": cmd_chinese}[
        args.cmd
    ](args)


if __name__ == "__main__":
    main()
