"""Ingest throughput on the real corpora: from scratch, then again unchanged.

    python bench/ingest_bench.py [--corpus userlib --corpus pwl-dev] [--keep DIR]

Prints pages/s for each stage (extract, chunk, embed, index) and in total, the time of an
unchanged re-ingest as a whole `kb ingest` process, and the embedding stage alone (the same
passages encoded in one call) so the full ingest can be compared with it: the target is a full
ingest no slower than 1.25x the embedding stage alone, and an unchanged re-ingest under 1 s.
This is a measurement, not a test: run it on a quiet machine, read ratios rather than absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", action="append", help="corpus folder name(s) under shared/corpus")
    parser.add_argument("--keep", type=Path, help="build the index here (kept) instead of a temp dir")
    parser.add_argument("--repeat", type=int, default=5, help="unchanged re-ingest repetitions")
    args = parser.parse_args()
    corpora = [CORPUS / c for c in (args.corpus or ["userlib", "pwl-dev"])]

    from kb.ingest import IngestOptions, ingest
    from kb.storage.store import Generation

    work = args.keep or Path(tempfile.mkdtemp(prefix="kb-bench-"))
    index = work / "index"
    print(f"corpora: {', '.join(c.name for c in corpora)}; index: {index}")

    t0 = time.perf_counter()
    report = ingest(IngestOptions(folders=corpora, index_dir=index, cwd=work, rebuild=True))
    full = time.perf_counter() - t0
    pages = report.pages
    print(
        f"\nfull ingest: {report.added + report.updated + report.unchanged} files, {pages} pages, "
        f"{report.passages} passages, {report.papers} papers, {full:.1f} s, {pages / full:.1f} pages/s"
    )
    print(f"{'stage':10} {'seconds':>8} {'pages/s':>9}")
    for stage, secs in report.timings.items():
        rate = pages / secs if secs > 0 else float("inf")
        print(f"{stage:10} {secs:8.2f} {rate:9.1f}")

    runs = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "kb", "ingest", *map(str, corpora), "--index", str(index)],
            cwd=work,
            capture_output=True,
            text=True,
        )
        runs.append(time.perf_counter() - t)
        assert "up to date" in proc.stdout, proc.stdout + proc.stderr
    print(
        f"\nunchanged re-ingest (whole process): median {statistics.median(runs):.2f} s "
        f"(min {min(runs):.2f}, max {max(runs):.2f}; target < 1 s)"
    )

    gen = Generation(index)
    texts = list(gen.all_passage_texts())
    gen.close()
    from kb.embed import SentenceTransformerEncoder

    t = time.perf_counter()
    encoder = SentenceTransformerEncoder()
    load = time.perf_counter() - t
    t = time.perf_counter()
    encoder.encode(texts)
    embed_only = time.perf_counter() - t
    print(
        f"\nembedding stage alone: {len(texts)} passages in {embed_only:.1f} s "
        f"({len(texts) / embed_only:.1f} passages/s, {pages / embed_only:.1f} pages/s) "
        f"+ model load {load:.1f} s"
    )
    print(
        f"full ingest / embedding alone: {full / embed_only:.2f} "
        f"(with model load: {full / (embed_only + load):.2f}; target <= 1.25)"
    )


if __name__ == "__main__":
    main()
