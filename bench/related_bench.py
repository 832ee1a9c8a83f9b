"""How good and how fast is `kb related`? Measured against the user's own filing.

Quality: the catalogs are ground truth. A paper's label is its catalog heading (userlib: the deepest
sub-topic of its first topic path, e.g. "StyleGAN and its derivative"; a PDF-only or pwl-dev paper:
the folder its PDF or reading list sits in). For every paper whose label has at least one other
paper, we take its top 5 and count the share with the same label, averaged over papers. Printed
next to random picks (the exact expectation) and a keyword-only "more like this" baseline (tantivy
``more_like_this`` over the passage and paper indexes).

Two honest variants of kb's own figure:
- ``kb`` (the shipped weights, which may include the shared-topic signal),
- ``kb content-only``: topic weight 0 *and* paper vectors re-embedded without the "Topics:" part of
  the descriptor, i.e. what kb would score on a library with no reading list at all.

Speed: the median wall time of whole `kb related` processes (fresh interpreter each time).

    .venv/bin/python bench/related_bench.py --index /tmp/kbshared/userlib-idx
    .venv/bin/python bench/related_bench.py --index /tmp/kbshared/both-idx --speed StyleGAN SyncNet
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kb.models import Paper  # noqa: E402
from kb.related import DEFAULT_WEIGHTS, Space, Weights, rank  # noqa: E402
from kb.storage import store  # noqa: E402

TOP = 5


def label_of(p: Paper) -> str | None:
    """The heading a paper is filed under (see the module docstring)."""
    where = p.files[0] if p.files else (p.catalog.file if p.catalog else None)
    if where and "/pwl-dev/" in where:
        return "pwl:" + Path(where).parent.name
    if p.topics:
        return "cat:" + p.topics[0][-1]
    if where and not p.catalog:
        return "dir:" + Path(where).parent.name
    return None


def evaluable(papers: list[Paper]) -> list[int]:
    labels = [label_of(p) for p in papers]
    sizes: dict[str, int] = {}
    for lb in labels:
        if lb:
            sizes[lb] = sizes.get(lb, 0) + 1
    return [i for i, lb in enumerate(labels) if lb and sizes[lb] > 1]


def share(papers: list[Paper], i: int, top: list[int]) -> float:
    lb = label_of(papers[i])
    return sum(label_of(papers[j]) == lb for j in top) / TOP


def random_share(papers: list[Paper], idx: list[int]) -> float:
    labels = [label_of(p) for p in papers]
    n = len(papers)
    return float(np.mean([(labels.count(labels[i]) - 1) / (n - 1) for i in idx]))


def kb_share(space: Space, idx: list[int], weights: Weights) -> float:
    vals = []
    for i in idx:
        scores, _ = space.scores_for_paper(i, weights)
        vals.append(share(space.papers, i, rank(scores, space.papers, TOP)))
    return float(np.mean(vals))


def keyword_share(gen: store.Generation, papers: list[Paper], idx: list[int]) -> float:
    """tantivy more-like-this: the paper's text (or descriptor) as the query, scored per paper."""
    import tantivy

    from kb.storage.index import open_index

    pidx = open_index(gen.tantivy_dir("papers"))
    sidx = open_index(gen.tantivy_dir("passages"))
    ps, ss = pidx.searcher(), sidx.searcher()
    index_of = {p.id: k for k, p in enumerate(papers)}
    vals = []
    for i in idx:
        p = papers[i]
        text = " ".join(x.text for x in gen.passages_of(p.id))[:20000]
        desc = " ".join(x for x in (p.title, p.alias or "", p.note or "", p.abstract or "") if x)
        score = np.zeros(len(papers))
        for searcher, schema, field, body in (
            (ss, sidx.schema, "text", text or desc),
            (ps, pidx.schema, "title", desc),
        ):
            fields = {field: [body]} if field == "text" else {"title": [p.title], "abstract": [desc]}
            q = tantivy.Query.more_like_this_document_fields_query(
                schema, fields, min_doc_frequency=1, min_term_frequency=1, max_query_terms=40
            )
            part = np.zeros(len(papers))
            for s, addr in searcher.search(q, limit=300).hits:
                k = index_of.get(searcher.doc(addr)["paper_id" if field == "text" else "id"][0])
                if k is not None:
                    part[k] += s
            if part.max() > 0:
                score += part / part.max()
        score[i] = -np.inf
        vals.append(share(papers, i, rank(score, papers, TOP)))
    return float(np.mean(vals))


def content_only_space(gen: store.Generation) -> Space:
    """A Space whose paper vectors are re-embedded without the user's topics (no reading-list signal)."""
    from kb.embed import OnnxEncoder
    from kb.papers import paper_descriptor

    space = Space(gen)
    enc = OnnxEncoder(gen.model_dir(), gen.settings.get("model_version", ""))
    first = {}
    for p in space.papers:
        rows = gen.passages_of(p.id)
        if rows:
            first[p.id] = rows[0].text
    texts = []
    for p in space.papers:
        bare = Paper(**{**p.__dict__, "topics": []})
        texts.append(paper_descriptor(bare, first.get(p.id)))
    vecs = np.concatenate([enc.encode(texts[k : k + 16]) for k in range(0, len(texts), 16)])
    space.desc = vecs.astype(np.float32)
    empty = ~space.has_text
    space.means[empty] = space.desc[empty]
    return space


def speed(index: str, queries: list[str], runs: int) -> list[tuple[str, float]]:
    out = []
    for q in queries:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-m", "kb", "related", q, "--index", index],
                capture_output=True,
                text=True,
                env=dict(os.environ, COLUMNS="200"),
            )
            times.append(time.perf_counter() - t)
            if r.returncode:
                print(r.stderr, file=sys.stderr)
        out.append((q, statistics.median(times)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", required=True)
    ap.add_argument("--speed", nargs="*", default=None, help="queries to time as whole processes")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--grid", action="store_true", help="also print a small weight grid")
    args = ap.parse_args()

    gen = store.Generation(Path(args.index))
    space = Space(gen)
    papers = space.papers
    idx = evaluable(papers)
    groups: dict[str, list[int]] = {}
    for i in idx:
        groups.setdefault(label_of(papers[i]).split(":")[0], []).append(i)  # type: ignore[union-attr]
    bare = content_only_space(gen)
    no_topic = Weights(**{**DEFAULT_WEIGHTS.__dict__, "topic": 0.0})
    print(f"index {args.index}: {len(papers)} papers; shipped weights {DEFAULT_WEIGHTS}")
    print("columns: random (expected), keyword (tantivy more-like-this), kb (shipped weights, with topic),")
    print("         kb no-topic (topic weight 0), content-only (topic weight 0, descriptors w/o topics)")
    print(
        f"{'papers':>16} {'n':>4} {'random':>7} {'keyword':>8} {'kb':>6} {'no-topic':>9} {'content-only':>13}"
    )

    def row(name: str, ids: list[int]) -> None:
        cells = [
            random_share(papers, ids),
            keyword_share(gen, papers, ids),
            kb_share(space, ids, DEFAULT_WEIGHTS),
            kb_share(space, ids, no_topic),
            kb_share(bare, ids, no_topic),
        ]
        print(
            f"{name:>16} {len(ids):>4} {cells[0]:7.3f} {cells[1]:8.3f} {cells[2]:6.3f} "
            f"{cells[3]:9.3f} {cells[4]:13.3f}"
        )

    for name, ids in [("all", idx), *sorted(groups.items())]:
        row(name, ids)
        with_pdf = [i for i in ids if papers[i].files]
        if with_pdf and len(with_pdf) != len(ids):
            row(name + " (pdf)", with_pdf)
    if args.grid:
        t = DEFAULT_WEIGHTS.topic
        print(f"\nweight grid (desc, mean, pairs; topic 0 / topic {t}): all, stored vectors / content-only")
        for d in (0.0, 0.5, 1.0):
            for m in (0.0, 0.5, 1.0):
                for pr in (0.0, 0.5, 1.0, 2.0):
                    if d == m == pr == 0:
                        continue
                    w0, w1 = Weights(d, m, pr, 0.0), Weights(d, m, pr, t)
                    a, b, c = kb_share(space, idx, w0), kb_share(space, idx, w1), kb_share(bare, idx, w0)
                    print(f"  {d:.1f} {m:.1f} {pr:.1f}: {a:.3f} / {b:.3f}  content-only {c:.3f}")
    if args.speed is not None:
        for q, med in speed(args.index, args.speed or ["StyleGAN"], args.runs):
            print(f"speed: kb related {q!r}: median {med:.3f} s over {args.runs} runs")


if __name__ == "__main__":
    main()
