"""Quality and speed of `kb search`, with pdfgrep and recoll as baselines on the same PDFs and queries.

    .venv/bin/python bench/search_bench.py --index IDX                   # quality: MRR@10, recall@10
    .venv/bin/python bench/search_bench.py --index IDX --speed           # + per-process timings
    .venv/bin/python bench/search_bench.py --index IDX --speed --tools   # + pdfgrep, recoll, ingest times

IDX must hold the corpora of the query sets (e.g. `kb ingest ../shared/corpus/userlib
../shared/corpus/pwl-dev --index /tmp/both-idx`). Expected papers are given by id or by a
case-insensitive title substring. MRR@10 uses the rank of the first expected paper found (0 when none
is in the top 10); recall@10 is the share of expected papers in the top 10. Timings are medians of
whole `kb search` processes (start to exit), as the user feels them; run on an idle machine and
compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("KB_SHARED", ROOT.parent / "shared")).resolve()
CORPORA = {"userlib": SHARED / "corpus" / "userlib", "pwl-dev": SHARED / "corpus" / "pwl-dev"}
MODES = ("keyword", "semantic", "hybrid")


def load_sets(paths: list[Path]) -> list[dict]:
    return [json.loads(p.read_text()) | {"path": p} for p in paths]


def resolve(expect: list[str], papers: list) -> set[str]:
    """Expected ids: exact ids, else papers whose title contains the text."""
    ids = {p.id for p in papers}
    out: set[str] = set()
    for e in expect:
        if e in ids:
            out.add(e)
        else:
            out |= {p.id for p in papers if e.lower() in p.title.lower()}
    return out


def evaluate(
    index: Path, qset: dict, modes: tuple[str, ...], verbose: bool, tuning: object = None
) -> dict[str, tuple[float, float]]:
    from kb import Library

    lib = Library(index, tuning=tuning)  # type: ignore[arg-type]
    papers = lib.papers()
    table: dict[str, tuple[float, float]] = {}
    for mode in modes:
        rr, rec = [], []
        for item in qset["queries"]:
            want = resolve(item["expect"], papers)
            if not want:
                raise SystemExit(f"{qset['path']}: no paper matches {item['expect']}")
            got = [r.paper.id for r in lib.search(item["q"], mode=mode, limit=10).results]
            ranks = [i for i, pid in enumerate(got, 1) if pid in want]
            rr.append(1.0 / ranks[0] if ranks else 0.0)
            rec.append(len(ranks) / len(want))
            if verbose and (not ranks or ranks[0] > 1):
                print(f"  [{mode}] {item['q']!r}: first hit at {ranks[0] if ranks else '-'}; top3 {got[:3]}")
        table[mode] = (statistics.mean(rr), statistics.mean(rec))
    lib.close()
    return table


def quality(index: Path, sets: list[dict], verbose: bool) -> None:
    print(f"\nquality on {index} (MRR@10 / recall@10)")
    print(f"{'set':<10} {'n':>3}  " + "  ".join(f"{m:>15}" for m in MODES))
    for qset in sets:
        t = evaluate(index, qset, MODES, verbose)
        cells = "  ".join(f"{t[m][0]:.3f} / {t[m][1]:.3f}".rjust(15) for m in MODES)
        print(f"{qset['corpus']:<10} {len(qset['queries']):>3}  {cells}")


def fusion_sweep(index: Path, sets: list[dict]) -> None:
    """The numbers behind ``kb.search.Tuning``: semantic paper scores, then fusion, on every set.

    Each variant is a ``kb.search.Tuning`` passed to ``kb.Library`` and the real ``search()`` runs (no
    copy of the ranking code here), so what is measured is what ships.
    """
    import dataclasses

    import kb.search as ks

    base = ks.DEFAULT_TUNING

    def row(label: str, tuning: object, modes: tuple[str, ...]) -> None:
        cells = []
        for s in sets:
            t = evaluate(index, s, modes, False, tuning)
            cells += [f"{s['corpus']} {m[:3]} {t[m][0]:.3f}/{t[m][1]:.3f}" for m in modes]
        print(f"  {label:<26} " + "  ".join(cells))

    print("\nsemantic paper score (MRR@10 / recall@10; hybrid with the default fusion)")
    for w in (None, 0.3, 0.5, 0.7):
        label = "max(descriptor, passage)" if w is None else f"{w} descr + {1 - w:.1f} passage"
        row(label, dataclasses.replace(base, paper_weight=w), ("semantic", "hybrid"))
    print("\nfusion (hybrid MRR@10 / recall@10)")
    for k in (10, 30, 60):
        row(f"rrf k={k}", dataclasses.replace(base, fusion="rrf", rrf_k=k), ("hybrid",))
    for a in (0.3, 0.4, 0.5, 0.6, 0.7):
        row(f"cc alpha={a}", dataclasses.replace(base, fusion="cc", alpha=a), ("hybrid",))


def _median_time(cmd: list[str], runs: int, env: dict | None = None) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def speed(
    index: Path, sets: list[dict], per_set: int, runs: int, tools: bool, corpus_dirs: list[Path]
) -> None:
    kb = str(ROOT / ".venv" / "bin" / "kb")
    queries = [item["q"] for s in sets for item in s["queries"][:per_set]]
    print(f"\nspeed: median seconds per whole process over {len(queries)} queries x {runs} runs")
    results: dict[str, list[float]] = {}
    for mode in ("keyword", "hybrid", "semantic"):
        results[f"kb {mode}"] = [
            _median_time([kb, "search", q, "--mode", mode, "--index", str(index)], runs) for q in queries
        ]
    if tools:
        if shutil.which("pdfgrep"):
            results["pdfgrep -r -i"] = [
                _median_time(["pdfgrep", "-r", "-i", "-c", q, *map(str, corpus_dirs)], 1) for q in queries
            ]
        else:
            print("  pdfgrep not installed: skipped (apt-get install -y pdfgrep)")
        recoll_results(queries, corpus_dirs, results)
    for name, ts in results.items():
        print(f"  {name:<16} median {statistics.median(ts):.3f} s   max {max(ts):.3f} s")
    if tools:
        ingest_times(corpus_dirs)


_RECOLL: dict[str, object] = {}


def _recoll_urls(conf: Path, env: dict, query: str) -> list[str]:
    res = subprocess.run(
        ["recollq", "-c", str(conf), "-b", "-n", "0-100000", query], capture_output=True, text=True, env=env
    )
    return [line for line in res.stdout.splitlines() if line.startswith("file://")]


def recoll_results(queries: list[str], corpus_dirs: list[Path], results: dict) -> None:
    """Index the same folders with recoll and time recollq; refuse numbers from an empty index.

    recoll reads PDFs through ``pdftotext`` (poppler-utils): without it recollindex "succeeds" in a
    second with no PDF text, and every query is a fast miss. So the index is checked first: how many
    PDFs it holds, and whether a known query ("lip sync") finds SyncNet.pdf.
    """
    if not (shutil.which("recollindex") and shutil.which("recollq")):
        print("  recoll not installed: skipped (apt-get install -y recoll poppler-utils)")
        return
    if not shutil.which("pdftotext"):
        print("  pdftotext missing: recoll would index no PDF text; skipped (apt-get install poppler-utils)")
        return
    conf = Path(tempfile.mkdtemp(prefix="kb-recoll-"))
    (conf / "recoll.conf").write_text(
        "topdirs = " + " ".join(f'"{d}"' for d in corpus_dirs) + "\nnoaspell = 1\n"
    )
    env = dict(os.environ, RECOLL_CONFDIR=str(conf))
    t0 = time.perf_counter()
    subprocess.run(
        ["recollindex", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    _RECOLL["index_s"] = time.perf_counter() - t0
    _RECOLL["conf"] = conf
    on_disk = sum(1 for d in corpus_dirs for _ in d.rglob("*.pdf"))
    pdfs = len(_recoll_urls(conf, env, "mime:application/pdf"))
    lip = _recoll_urls(conf, env, "lip sync")
    found = any(u.endswith("/SyncNet.pdf") for u in lip)
    print(
        f"  recoll indexed {pdfs} of {on_disk} PDFs; 'lip sync' -> {len(lip)} docs, "
        f"SyncNet.pdf {'found' if found else 'NOT found'}"
    )
    if not pdfs or not found:
        print("  recoll index has no PDF text: its timings would be meaningless; skipped")
        _RECOLL.pop("index_s")
        return
    results["recollq"] = [_median_time(["recollq", "-c", str(conf), q], 1, env) for q in queries]
    hits = [len(_recoll_urls(conf, env, q)) for q in queries]
    print(f"  recollq docs per timed query: median {statistics.median(hits)}, zero for {hits.count(0)}")


def ingest_times(corpus_dirs: list[Path]) -> None:
    kb = str(ROOT / ".venv" / "bin" / "kb")
    tmp = Path(tempfile.mkdtemp(prefix="kb-bench-idx-"))
    t0 = time.perf_counter()
    res = subprocess.run(
        [kb, "ingest", *map(str, corpus_dirs), "--no-embed", "--index", str(tmp / "idx")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    kb_s = time.perf_counter() - t0
    print("\nindexing the same PDFs from scratch (text only, empty cache)")
    failed = f"  (FAILED rc={res.returncode}: {res.stderr.strip()[-200:]})" if res.returncode else ""
    print(f"  kb ingest --no-embed   {kb_s:.1f} s{failed}")
    if "index_s" in _RECOLL:
        print(f"  recollindex            {_RECOLL['index_s']:.1f} s")
    if "conf" in _RECOLL:
        shutil.rmtree(_RECOLL["conf"], ignore_errors=True)  # type: ignore[arg-type]
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument(
        "--queries",
        type=Path,
        nargs="*",
        default=[ROOT / "bench/queries/userlib.json", ROOT / "bench/queries/pwl.json"],
    )
    ap.add_argument("--speed", action="store_true", help="time whole kb search processes")
    ap.add_argument("--tools", action="store_true", help="also time pdfgrep, recoll and text-only ingest")
    ap.add_argument("--sweep", action="store_true", help="hybrid and semantic MRR for the ranking variants")
    ap.add_argument("--per-set", type=int, default=8, help="queries per set for the timings")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-v", "--verbose", action="store_true", help="print the queries that miss rank 1")
    args = ap.parse_args()
    sets = load_sets(args.queries)
    quality(args.index, sets, args.verbose)
    if args.sweep:
        fusion_sweep(args.index, sets)
    if args.speed:
        dirs = [CORPORA[s["corpus"]] for s in sets if s["corpus"] in CORPORA]
        speed(args.index, sets, args.per_set, args.runs, args.tools, dirs)


if __name__ == "__main__":
    main()
