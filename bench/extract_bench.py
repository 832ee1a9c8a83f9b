"""Measure the PDF extractors on the shared corpora, to choose ``kb.extract.DEFAULT_EXTRACTOR`` by numbers.

Usage::

    python bench/extract_bench.py [--limit N] [--meta] [--extractors pdfium,pypdf]

Runs every extractor over all PDFs of ``../shared/corpus/userlib`` and ``pwl-dev`` in this one process
(same machine, same run, so the numbers compare) and prints per extractor: files, pages, seconds,
pages/s and how many came out ok / no-text / garbled / failed, then the files that were not ok.
``--meta`` also prints file -> document-info title / first-page title guess, for eyeballing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb.extract import EXTRACTORS, extract_pdf  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"


def corpus_pdfs(limit: int | None) -> list[Path]:
    """userlib then pwl-dev PDFs in a stable order (the odd/ files are for tests, not speed)."""
    files = sorted((CORPUS / "userlib").rglob("*.pdf")) + sorted((CORPUS / "pwl-dev").rglob("*.pdf"))
    return files[:limit] if limit else files


def bench(extractor: str, files: list[Path]) -> tuple[dict[str, float], list[tuple[Path, object]]]:
    """Extract every file once; return the summary row and the per-file results."""
    counts: Counter[str] = Counter()
    pages = 0
    results = []
    t0 = time.perf_counter()
    for f in files:
        ex = extract_pdf(f, extractor)
        counts[ex.status] += 1
        pages += len(ex.pages)
        results.append((f, ex))
    secs = time.perf_counter() - t0
    row = {"files": len(files), "pages": pages, "seconds": secs, "pages_per_s": pages / secs if secs else 0.0}
    row.update({k: counts.get(k, 0) for k in ("ok", "no-text", "garbled", "failed")})
    return row, results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N PDFs")
    ap.add_argument("--meta", action="store_true", help="print title guesses per file")
    ap.add_argument("--extractors", default=",".join(EXTRACTORS))
    args = ap.parse_args(argv)

    files = corpus_pdfs(args.limit)
    if not files:
        sys.exit(f"no PDFs under {CORPUS}")
    rows, all_results = {}, {}
    for name in args.extractors.split(","):
        rows[name], all_results[name] = bench(name, files)

    head = f"{'extractor':10} {'files':>5} {'pages':>6} {'seconds':>8} {'pages/s':>8} "
    print(head + f"{'ok':>4} {'no-text':>7} {'garbled':>7} {'failed':>6}")
    for name, r in rows.items():
        print(
            f"{name:10} {r['files']:5d} {r['pages']:6d} {r['seconds']:8.2f} {r['pages_per_s']:8.1f} "
            f"{r['ok']:4d} {r['no-text']:7d} {r['garbled']:7d} {r['failed']:6d}"
        )
    if len(rows) > 1:
        names = list(rows)
        fast = max(names, key=lambda n: rows[n]["pages_per_s"])
        for n in names:
            if n != fast and rows[n]["pages_per_s"]:
                print(f"{fast} is {rows[fast]['pages_per_s'] / rows[n]['pages_per_s']:.1f}x faster than {n}")

    for name, results in all_results.items():
        bad = [(f, ex) for f, ex in results if ex.status != "ok"]
        if bad:
            print(f"\n{name}: not ok")
            for f, ex in bad:
                print(f"  {ex.status:8} {f.relative_to(CORPUS)}: {ex.reason}")

    if args.meta:
        name = next(iter(all_results))
        print(f"\nmetadata ({name}): file | info title | first-page title | year | doi | arxiv")
        for f, ex in all_results[name]:
            m = ex.meta
            print(f"  {f.name[:45]:45} | {m.title} | {m.first_page_title} | {m.year} | {m.doi} | {m.arxiv}")


if __name__ == "__main__":
    main()
