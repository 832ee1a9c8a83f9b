"""Speed and quality of the embedding variants on the real passages of userlib + pwl-dev.

    python bench/embed_bench.py                        # speed: passages/s, ratio, cosine on a sample
    python bench/embed_bench.py --quality              # + cosine on all passages, MRR@10 per variant
    python bench/embed_bench.py --variants prev-fp32,fp32,bf16-autocast --sample 384 --rounds 3

The passages are those kb ingest makes (kb.extract + kb.chunk on every PDF of the corpora). Speed:
the same sample of whole files is encoded by every variant, the variants interleaved round by
round (the machine is shared: read ratios, not absolutes); the ratio is to ``prev-fp32``, the
path of the previous release (fp32, one encode call per file, batches of 32). Cosine is to the
fp32 vectors of the same passages.

``--quality`` also ingests the corpora once in fp32 (recording every text and vector), encodes all
texts with each quality variant, and scores a copy of that index with the variant's vectors
substituted on the query sets of bench/search_bench.py (queries are always encoded by the fp32
ONNX model, as in `kb search`). On a CPU without native bf16, bf16 runs 6-8x slower than fp32, so
its full-corpus vectors come from ``bf16-sim``: fp32 arithmetic with the weights, inputs and
outputs of every Linear rounded to bf16, as autocast does; its agreement with real autocast is
printed on a slice. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
CORPUS = Path(os.environ.get("KB_SHARED", ROOT.parent / "shared")) / "corpus"
CORPORA = ("userlib", "pwl-dev")

Files = list[list[str]]  # passages, grouped by the file they come from

SPEED_VARIANTS = (
    "prev-fp32",
    "fp32",
    "fp32-b16",
    "fp32-b64",
    "fp32-b128",
    "fp32-1thread",
    "fp32+extract",
    "fp32-1thread+extract",
    "bf16-autocast",
    "bf16-weights",
)
QUALITY_VARIANTS = ("bf16", "skip-debris")


# ----------------------------------------------------------------------------- passages


def corpus_files(corpora: list[str]) -> list[Path]:
    return [f for c in corpora for f in sorted((CORPUS / c).rglob("*.pdf"))]


def corpus_passages(corpora: list[str]) -> list[tuple[str, list[str]]]:
    """(file, passages) for every PDF that extracts ok, chunked as kb ingest chunks it."""
    from kb.chunk import chunk_pages
    from kb.extract import extract_pdf

    out = []
    for f in corpus_files(corpora):
        ex = extract_pdf(f)
        if ex.status == "ok":
            out.append((str(f.relative_to(CORPUS)), [c.text for c in chunk_pages(ex.pages)]))
    return out


def sample_files(files: list[tuple[str, list[str]]], target: int, seed: int) -> Files:
    """Whole papers (not books: at most 80 passages), drawn at random until they hold ``target``
    passages, so the per-file path of the previous release sees realistic call sizes."""
    rng = np.random.default_rng(seed)
    picked: Files = []
    for i in rng.permutation(len(files)):
        if sum(map(len, picked)) >= target:
            break
        if 0 < len(files[i][1]) <= 80:
            picked.append(files[i][1])
    return picked


_WORDISH = re.compile(r"[^\W\d_]{3,}")


def content_free(text: str, min_share: float = 0.3) -> bool:
    """A passage of numbers, formulas or table debris: under 30% of its tokens are words of 3+ letters."""
    tokens = text.split()
    words = sum(1 for t in tokens if _WORDISH.fullmatch(t.strip(".,;:()[]\"'")))
    return words < min_share * max(1, len(tokens))


# ----------------------------------------------------------------------------- variants


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def extracting(files: list[Path]) -> Iterator[None]:
    """A second process extracting PDFs in a loop, as ingest's extractor worker does."""
    code = (
        "import sys\nfrom kb.extract import extract_pdf\n"
        "while True:\n    for f in sys.argv[1:]: extract_pdf(f)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, files)], cwd=ROOT)
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait()


@dataclass
class Models:
    """The models the variants share, loaded once."""

    fp32: object
    bf16: object
    bf16_weights: object | None = None

    @classmethod
    def load(cls) -> Models:
        from kb.embed import SentenceTransformerEncoder

        return cls(SentenceTransformerEncoder(precision="fp32"), SentenceTransformerEncoder(precision="bf16"))

    def weights_bf16(self) -> object:
        if self.bf16_weights is None:
            import copy

            import torch

            self.bf16_weights = copy.deepcopy(self.fp32.model).to(torch.bfloat16)  # type: ignore[attr-defined]
        return self.bf16_weights


def _flat(files: Files) -> list[str]:
    return [t for f in files for t in f]


def make_variant(name: str, models: Models, pdfs: list[Path]) -> Callable[[Files], np.ndarray]:
    """The function that encodes grouped passages as variant ``name`` (rows in flattened order)."""
    fp32, bf16 = models.fp32, models.bf16

    def one_call(encoder: object, batch: int = 32, threads: int | None = None, load: bool = False):
        def run(files: Files) -> np.ndarray:
            with torch_threads(threads), extracting(pdfs) if load else contextlib.nullcontext():
                encoder.batch_size = batch  # type: ignore[attr-defined]
                try:
                    return encoder.encode(_flat(files))  # type: ignore[attr-defined]
                finally:
                    encoder.batch_size = 32  # type: ignore[attr-defined]

        return run

    def prev(files: Files) -> np.ndarray:  # the previous release: model.encode per file, fp32
        return np.concatenate(
            [
                fp32.model.encode(  # type: ignore[attr-defined]
                    f, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                    show_progress_bar=False,
                )
                for f in files
            ]
        ).astype(np.float32)

    def weights(files: Files) -> np.ndarray:
        vecs = models.weights_bf16().encode(  # type: ignore[attr-defined]
            _flat(files), batch_size=32, convert_to_tensor=True, show_progress_bar=False
        )
        vecs = vecs.float().numpy()
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)

    table: dict[str, Callable[[Files], np.ndarray]] = {
        "prev-fp32": prev,
        "fp32": one_call(fp32),
        "fp32-b16": one_call(fp32, batch=16),
        "fp32-b64": one_call(fp32, batch=64),
        "fp32-b128": one_call(fp32, batch=128),
        "fp32-1thread": one_call(fp32, threads=1),
        "fp32+extract": one_call(fp32, load=True),
        "fp32-1thread+extract": one_call(fp32, threads=1, load=True),
        "bf16-autocast": one_call(bf16),
        "bf16-weights": weights,
    }
    if name not in table:
        raise SystemExit(f"unknown variant {name!r}: choose from {', '.join(table)}")
    return table[name]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


# ----------------------------------------------------------------------------- speed


def padded_tokens(files: Files, batch: int = 32) -> tuple[float, float, float]:
    """Tokens the model computes per passage (batches padded to their longest, lengths sorted inside
    one call, as sentence-transformers does): one call per file, one call for all, and no padding."""
    from tokenizers import Tokenizer

    from kb.embed import MAX_TOKENS, model_path

    tok = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
    tok.enable_truncation(MAX_TOKENS)
    tok.no_padding()
    lengths = [[len(e.ids) for e in tok.encode_batch(f)] for f in files if f]

    def cost(groups: list[list[int]]) -> int:
        total = 0
        for g in groups:
            g = sorted(g, reverse=True)
            total += sum(g[i] * len(g[i : i + batch]) for i in range(0, len(g), batch))
        return total

    n = sum(map(len, lengths))
    return cost(lengths) / n, cost([[x for g in lengths for x in g]]) / n, sum(map(sum, lengths)) / n



def speed(files: Files, names: list[str], rounds: int, models: Models, pdfs: list[Path]) -> None:
    from kb.embed import native_bf16

    n = sum(map(len, files))
    slow_bf16 = not native_bf16()
    print(
        f"\nspeed: {n} passages from {len(files)} files, {rounds} interleaved rounds "
        f"(native bf16: {'yes' if not slow_bf16 else 'no: bf16 variants run one round'})"
    )
    runs = {name: make_variant(name, models, pdfs) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    vecs: dict[str, np.ndarray] = {}
    for r in range(rounds):
        for name, run in runs.items():
            if r and slow_bf16 and name.startswith("bf16"):
                continue
            t = time.perf_counter()
            v = run(files)
            times[name].append(time.perf_counter() - t)
            vecs.setdefault(name, v)
        print(f"\nafter round {r + 1} of {rounds}:")
        speed_table(n, names, times, vecs)


def speed_table(n: int, names: list[str], times: dict[str, list[float]], vecs: dict[str, np.ndarray]) -> None:
    ref = vecs.get("fp32", vecs.get("prev-fp32"))
    base = n / statistics.median(times["prev-fp32"]) if "prev-fp32" in times else None
    head = f"{'variant':<22} {'passages/s':>10} {'ratio':>6} {'cos min':>9} {'cos mean':>9}"
    print(head + "   runs (passages/s)")
    for name in names:
        rate = n / statistics.median(times[name])
        cos = cosines(vecs[name], ref) if ref is not None else np.ones(1)
        ratio = f"{rate / base:6.2f}" if base else "     -"
        each = " ".join(f"{n / t:.1f}" for t in times[name])
        print(f"{name:<22} {rate:10.1f} {ratio} {cos.min():9.6f} {cos.mean():9.6f}   {each}", flush=True)


# ----------------------------------------------------------------------------- quality


def bf16_sim(models: Models):  # noqa: ANN201 - returns an encoder-like object
    """fp32 arithmetic with bf16 rounding where autocast rounds: Linear weights, inputs, outputs."""
    import copy

    import torch

    from kb.embed import SentenceTransformerEncoder

    sim = copy.copy(models.fp32)
    sim.model = copy.deepcopy(models.fp32.model)  # type: ignore[attr-defined]

    def rnd(t: torch.Tensor) -> torch.Tensor:
        return t.to(torch.bfloat16).to(torch.float32)

    for mod in sim.model.modules():
        if isinstance(mod, torch.nn.Linear):
            mod.weight.data = rnd(mod.weight.data)
            if mod.bias is not None:
                mod.bias.data = rnd(mod.bias.data)
            mod.register_forward_pre_hook(lambda _m, args: (rnd(args[0]), *args[1:]))
            mod.register_forward_hook(lambda _m, _a, out: rnd(out))
    assert isinstance(sim, SentenceTransformerEncoder)
    return sim


def record_fp32_ingest(work: Path, corpora: list[str]) -> tuple[Path, dict[str, np.ndarray]]:
    """Ingest the corpora with the fp32 model, recording every text it encodes and its vector."""
    import kb.ingest as ingest_mod
    from kb.embed import SentenceTransformerEncoder

    if not hasattr(ingest_mod, "SentenceTransformerEncoder"):
        raise SystemExit("kb.ingest no longer creates SentenceTransformerEncoder: adapt record_fp32_ingest")
    seen: dict[str, np.ndarray] = {}

    class Recording(SentenceTransformerEncoder):
        def __init__(self) -> None:
            super().__init__(precision="fp32")

        def encode(self, texts: list[str]) -> np.ndarray:
            vecs = super().encode(texts)
            seen.update(zip(texts, vecs, strict=True))
            return vecs

    index = work / "index-fp32"
    saved_texts, saved_vecs = work / "fp32-texts.json", work / "fp32-vectors.npy"
    if saved_texts.exists() and saved_vecs.exists() and (index / "CURRENT").exists():  # --keep from before
        texts = json.loads(saved_texts.read_text())
        return index, dict(zip(texts, np.load(saved_vecs), strict=True))
    original = ingest_mod.SentenceTransformerEncoder
    ingest_mod.SentenceTransformerEncoder = Recording  # type: ignore[misc]
    try:
        folders = [CORPUS / c for c in corpora]
        ingest_mod.ingest(ingest_mod.IngestOptions(folders=folders, index_dir=index, cwd=work, rebuild=True))
    finally:
        ingest_mod.SentenceTransformerEncoder = original  # type: ignore[misc]
    saved_texts.write_text(json.dumps(list(seen)))
    np.save(saved_vecs, np.stack(list(seen.values())))
    return index, seen


def substituted_index(
    index: Path, target: Path, fp32: dict[str, np.ndarray], variant: dict[str, np.ndarray]
) -> Path:
    """A copy of ``index`` whose passage and paper vectors are the variant's vectors of the same texts."""
    from kb import store

    shutil.copytree(index, target, symlinks=True)
    gen = store.Generation(target)
    texts = [r[0] for r in gen.db.execute("SELECT text FROM passages ORDER BY row")]
    gen_dir = gen.path
    gen.close()
    old = np.load(gen_dir / store.VECTORS)
    np.save(gen_dir / store.VECTORS, np.stack([variant[t] for t in texts]).astype(old.dtype))
    # paper vectors: find the text each fp32 paper vector was made from (the recording has them all)
    by_bytes = {v.astype(np.float32).tobytes(): t for t, v in fp32.items()}
    papers = np.load(gen_dir / store.PAPER_VECTORS)
    rows = [variant[by_bytes[p.astype(np.float32).tobytes()]] for p in papers]
    np.save(gen_dir / store.PAPER_VECTORS, np.stack(rows).astype(papers.dtype))
    return target


def quality(corpora: list[str], names: list[str], models: Models, keep: Path | None) -> None:
    from search_bench import MODES, evaluate, load_sets

    from kb.embed import DIM, native_bf16

    work = keep or Path(tempfile.mkdtemp(prefix="kb-embed-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("index-*"):
        if old.name != "index-fp32":
            shutil.rmtree(old)
    t = time.perf_counter()
    index, fp32 = record_fp32_ingest(work, corpora)
    texts = list(fp32)
    took = time.perf_counter() - t
    print(f"\nquality: fp32 ingest of {', '.join(corpora)}: {len(texts)} texts in {took:.0f} s")
    sets = load_sets([ROOT / "bench/queries/userlib.json", ROOT / "bench/queries/pwl.json"])
    ref = np.stack([fp32[t] for t in texts])
    results = {"fp32": {s["corpus"]: evaluate(index, s, MODES, False) for s in sets}}
    for name in names:
        t = time.perf_counter()
        if name == "bf16":
            if native_bf16():
                enc, label = models.bf16, "bf16-autocast"
            else:
                enc, label = bf16_sim(models), "bf16-sim"
                part = texts[:64]
                agree = cosines(enc.encode(part), models.bf16.encode(part))  # type: ignore[attr-defined]
                print(f"  bf16-sim vs real bf16 autocast on {len(part)} texts: cosine min {agree.min():.6f}")
            vecs = enc.encode(texts)  # type: ignore[attr-defined]
        elif name == "skip-debris":
            label = "skip-debris"
            drop = np.array([content_free(t) for t in texts])
            vecs = ref.copy()
            vecs[drop] = np.zeros(DIM, dtype=np.float32)
            print(f"  content-free passages (zero vectors): {int(drop.sum())} of {len(texts)}")
        else:
            raise SystemExit(f"unknown quality variant {name!r}: choose from {', '.join(QUALITY_VARIANTS)}")
        cos = cosines(vecs, ref)
        print(
            f"  {label}: {len(texts)} texts in {time.perf_counter() - t:.0f} s; cosine to fp32 "
            f"min {cos.min():.6f}, 1st percentile {np.percentile(cos, 1):.6f}, mean {cos.mean():.6f}"
        )
        variant = dict(zip(texts, vecs, strict=True))
        copy = substituted_index(index, work / f"index-{label}", fp32, variant)
        results[label] = {s["corpus"]: evaluate(copy, s, MODES, False) for s in sets}
    print(f"\nMRR@10 (delta to fp32) on {len(sets)} query sets; queries encoded by the fp32 ONNX model")
    print(f"{'variant':<14} {'set':<9} " + " ".join(f"{m:>18}" for m in MODES))
    for label, per_set in results.items():
        for s in sets:
            cells = []
            for m in MODES:
                mrr = per_set[s["corpus"]][m][0]
                delta = mrr - results["fp32"][s["corpus"]][m][0]
                cells.append(f"{mrr:.3f} ({delta:+.3f})".rjust(18))
            print(f"{label:<14} {s['corpus']:<9} " + " ".join(cells))
    if keep is None:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", action="append", help="corpus folder(s) under shared/corpus")
    ap.add_argument("--variants", default=",".join(SPEED_VARIANTS), help="speed variants, comma-separated")
    ap.add_argument("--sample", type=int, default=384, help="passages (whole files) in the speed sample")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quality", action="store_true", help="also cosine on all passages and MRR@10")
    ap.add_argument("--quality-variants", default=",".join(QUALITY_VARIANTS))
    ap.add_argument("--keep", type=Path, help="quality work folder, kept: a rerun reuses its fp32 ingest")
    args = ap.parse_args()
    corpora = args.corpus or list(CORPORA)

    t = time.perf_counter()
    files = corpus_passages(corpora)
    texts = [p for _, ps in files for p in ps]
    if not texts:
        raise SystemExit(f"no passages: no readable PDFs under {CORPUS} (set KB_SHARED to the shared folder)")
    debris = sum(map(content_free, texts))
    print(
        f"{len(files)} PDFs of {', '.join(corpora)} -> {len(texts)} passages "
        f"in {time.perf_counter() - t:.0f} s; "
        f"content-free (under 30% words): {debris} ({100 * debris / len(texts):.1f}%)"
    )
    per_file, pooled, bare = padded_tokens([ps for _, ps in files])
    print(
        f"tokens computed per passage, batches of 32: {per_file:.1f} with one encode call per file, "
        f"{pooled:.1f} with one call for all ({bare:.1f} without padding)"
    )
    models = Models.load()
    names = [v for v in args.variants.split(",") if v]
    if names:
        speed(sample_files(files, args.sample, args.seed), names, args.rounds, models, corpus_files(corpora))
    if args.quality:
        quality(corpora, [v for v in args.quality_variants.split(",") if v], models, args.keep)


if __name__ == "__main__":
    main()
