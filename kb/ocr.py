"""Read PDF pages whose text layer is empty or garbage with OCR, offline, one page at a time.

Design notes (the WHY behind the code):

* Which pages: ``kb.extract.pages_needing_ocr`` decides while the text layer is read (it needs the raw
  text before cleaning and the open pdfium page, and must cost nothing on good papers); the verdicts
  arrive in ``Extraction.needs_ocr``. This module only reads the pages it is given.
* Engine: ``rapidocr`` (PP-OCRv6 small detection + recognition, English and Chinese in one model) on
  onnxruntime, with the ONNX files bundled in its wheel. The model paths are given explicitly, so the
  library never reaches its download code; a missing file is an error, never a download. The
  orientation classifier stays off: issue 12 reports garbled lines with it on and a clean page read
  correctly without it; pdfium renders pages upright anyway, and tall boxes are still turned.
* Resolution: ``DEFAULT_DPI`` (150) is what ``bench/ocr_bench.py`` measured as the best accuracy per
  second (see the README). rapidocr's own ``max_side_len`` would silently shrink a 300-dpi page to 2000 px,
  so it is lifted: the dpi we render at is the resolution the detector sees. ``MAX_PIXELS`` caps
  posters and oversized pages.
* Reading order: the detector returns lines top to bottom across the whole page, which interleaves
  the two columns of a paper. ``reading_order`` finds a column gutter and reads each column down,
  keeping full-width lines (titles, abstracts, wide figures) where they are. The detector sometimes
  joins two column lines at the same height into one box; a blank band at the gutter inside the box
  (wider than the line is high) tells, and the line is split there.
* Time: one page takes seconds (ten or more on two cores at 300 dpi), and a native library can hang.
  ``OcrWorker`` runs the engine in a child process with a per-page limit and kills it when the limit
  passes: one bad page costs its limit, never the ingest.
* Heavy imports (numpy, cv2, onnxruntime, rapidocr, pypdfium2) happen inside functions, so importing
  ``kb.ocr`` is free.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import re
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from kb.extract import clean_text

# Measured (bench/ocr_bench.py, README): 150 and 200 dpi read the same (median CER 0.011 on 20 good
# pages, 249 words per flagged page, Chinese recall 1.0) and 200 costs 1.1-1.2x the CPU; 300 costs
# 1.2-1.7x with no gain. Raise it for small print: ocr_version() puts the dpi in the cache key.
DEFAULT_DPI = 150
DEFAULT_PAGE_TIMEOUT_S = 120.0  # a dense page takes ~20 s on two busy cores; a hang is killed
MAX_PIXELS = 16_000_000  # ~A3 at 300 dpi; bigger pages are rendered at a lower resolution
# Bundled with the rapidocr wheel (checked at engine start; nothing is ever downloaded).
MODEL_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
MIN_LINE_SCORE = 0.5  # rapidocr's default: lines recognised with less confidence are dropped

# Bump when rendering, reading order or the engine settings change: cached OCR texts become stale.
_CODE_VERSION = "1"


def _lib_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def ocr_version(dpi: int = DEFAULT_DPI) -> str:
    """Cache key part for OCR results: our code, the engine's version and the resolution."""
    return f"kb{_CODE_VERSION}-rapidocr-{_lib_version('rapidocr')}-{dpi}dpi"


class OcrUnavailable(RuntimeError):
    """rapidocr, its bundled models or opencv are missing: OCR cannot run on this machine."""


@dataclass
class OcrLine:
    """One recognised line: its text, confidence and box (left, top, right, bottom) in pixels."""

    text: str
    score: float
    box: tuple[float, float, float, float]
    # Widest blank vertical band inside the box's middle (x from, x to), when wider than the line is
    # high: a word space is narrower, the gutter between two columns the detector joined is not.
    gap: tuple[float, float] | None = None


@dataclass
class OcrPage:
    """The OCR reading of one page.

    ``text`` went through ``clean_text`` like extracted text. ``confidence`` is the recognition score
    averaged over characters (0.0 when nothing was read). ``error`` is a one-line reason when the page
    could not be read at all (then ``text`` is empty); an empty ``text`` without ``error`` means OCR
    found no text on the page.
    """

    page: int  # 1-based
    text: str = ""
    confidence: float = 0.0
    seconds: float = 0.0
    dpi: int = DEFAULT_DPI
    lines: int = 0
    error: str | None = None

    @property
    def words(self) -> int:
        return len(_WORD.findall(self.text))


_WORD = re.compile(r"[^\W\d_]{2,}")


# --------------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------------

_ENGINES: dict[tuple[int | None, int], Any] = {}


def model_dir() -> Path:
    """Where the rapidocr wheel keeps its bundled ONNX models (found without importing rapidocr)."""
    try:
        dist = metadata.distribution("rapidocr")
    except metadata.PackageNotFoundError as e:
        raise OcrUnavailable("rapidocr is not installed (pip install rapidocr)") from e
    return Path(str(dist.locate_file("rapidocr"))) / "models"


def engine_params(threads: int | None = None, rec_batch: int = 6) -> dict[str, Any]:
    """rapidocr settings: bundled models by explicit path (never a download), no orientation classifier,
    the resolution left to us, quiet logging."""
    models = model_dir()
    missing = [name for name in MODEL_FILES.values() if not (models / name).is_file()]
    if missing:
        raise OcrUnavailable(f"rapidocr's bundled models are missing in {models}: {', '.join(missing)}")
    params: dict[str, Any] = {
        "Global.use_cls": False,
        "Global.log_level": "error",
        "Global.max_side_len": 100_000,  # we choose the resolution (dpi, MAX_PIXELS), not rapidocr
        "Global.text_score": MIN_LINE_SCORE,
        "Global.model_root_dir": str(models),
        "Rec.rec_batch_num": rec_batch,
    }
    for task, name in MODEL_FILES.items():
        params[f"{task}.model_path"] = str(models / name)
    if threads:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
        params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
    return params


def engine(threads: int | None = None, rec_batch: int = 6) -> Any:
    """A rapidocr engine on the bundled models, built once per process and settings."""
    key = (threads, rec_batch)
    if key not in _ENGINES:
        params = engine_params(threads, rec_batch)
        try:
            from rapidocr import RapidOCR
        except ImportError as e:  # opencv-python-headless or onnxruntime missing
            raise OcrUnavailable(f"rapidocr cannot load: {e}") from e
        _ENGINES[key] = RapidOCR(params=params)
    return _ENGINES[key]


def render_page(pdf_path: Path, page_no: int, dpi: int = DEFAULT_DPI) -> Any:
    """Page ``page_no`` (1-based) as a grayscale numpy image at ``dpi`` (lower for huge pages)."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf_path))
    try:
        if not 1 <= page_no <= len(doc):
            raise ValueError(f"page {page_no} out of range (1-{len(doc)})")
        page = doc[page_no - 1]
        try:
            width, height = page.get_size()
            scale = min(dpi / 72.0, (MAX_PIXELS / max(1.0, width * height)) ** 0.5)
            bitmap = page.render(scale=scale, grayscale=True)
            try:
                img = bitmap.to_numpy().copy()
            finally:
                bitmap.close()
        finally:
            page.close()
    finally:
        doc.close()
    return img.reshape(img.shape[0], img.shape[1]) if img.ndim == 3 and img.shape[2] == 1 else img


def recognise(img: Any, ocr: Any = None) -> list[OcrLine]:
    """Lines that a rapidocr engine (default: ``engine()``) reads in an image, top to bottom."""
    result = (ocr or engine())(img)
    if result is None or not getattr(result, "txts", None):
        return []
    lines = []
    for box, text, score in zip(result.boxes, result.txts, result.scores, strict=False):
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        line = OcrLine(text=str(text), score=float(score), box=(min(xs), min(ys), max(xs), max(ys)))
        line.gap = _blank_band(img, line.box)
        lines.append(line)
    return lines


def _blank_band(img: Any, box: tuple[float, float, float, float]) -> tuple[float, float] | None:
    """The widest run of ink-free pixel columns in the middle 60% of a box of a grayscale image, when
    it is wider than the box is high (else None)."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    height = y1 - y0
    lo, hi = x0 + (x1 - x0) // 5, x1 - (x1 - x0) // 5
    if height <= 0 or hi - lo <= height or getattr(img, "ndim", 0) != 2:
        return None
    ink = (img[max(0, y0) : y1, lo:hi] < 128).any(axis=0).tolist()
    best, start = (0, 0), None
    for k, dark in enumerate([*ink, True]):
        if not dark and start is None:
            start = k
        elif dark and start is not None:
            best = max(best, (k - start, start))
            start = None
    width, first = best
    return (float(lo + first), float(lo + first + width)) if width > height else None


# --------------------------------------------------------------------------------------------------
# Reading order
# --------------------------------------------------------------------------------------------------


def _column_split(lines: list[OcrLine], width: float) -> float | None:
    """The x of a gutter between two columns, or None for a single-column page.

    A gutter is an x in the middle of the page that no more than a fifth of the lines cross, with at
    least three lines wholly on each side; the x crossed by the fewest lines wins.
    """
    if len(lines) < 6 or width <= 0:
        return None
    best: tuple[int, float] | None = None
    steps = 40
    for k in range(steps + 1):
        x = width * (0.3 + 0.4 * k / steps)
        crossing = sum(1 for ln in lines if ln.box[0] < x < ln.box[2])
        left = sum(1 for ln in lines if ln.box[2] <= x)
        right = sum(1 for ln in lines if ln.box[0] >= x)
        if left >= 3 and right >= 3 and crossing * 5 <= len(lines) and (best is None or crossing < best[0]):
            best = (crossing, x)
    return best[1] if best else None


def _rows(lines: list[OcrLine]) -> list[str]:
    """Lines of one column top to bottom; boxes on the same row (vertical overlap) joined left to right."""
    rows: list[list[OcrLine]] = []
    for ln in sorted(lines, key=lambda ln: (ln.box[1], ln.box[0])):
        if rows:
            last = rows[-1][-1]
            overlap = min(last.box[3], ln.box[3]) - max(last.box[1], ln.box[1])
            if overlap > 0.5 * min(last.box[3] - last.box[1], ln.box[3] - ln.box[1]):
                rows[-1].append(ln)
                continue
        rows.append([ln])
    return [" ".join(ln.text for ln in sorted(row, key=lambda ln: ln.box[0])) for row in rows]


def reading_order(lines: list[OcrLine], width: float) -> list[list[OcrLine]]:
    """Blocks of lines in reading order: on a two-column page each column section down (left, then
    right), with the full-width lines (titles, abstracts, wide captions) between the sections."""
    split = _column_split(lines, width)
    ordered = sorted(lines, key=lambda ln: (ln.box[1], ln.box[0]))
    if split is None:
        return [ordered] if ordered else []
    blocks: list[list[OcrLine]] = []
    left: list[OcrLine] = []
    right: list[OcrLine] = []
    for ln in ordered:
        if ln.box[2] <= split:
            left.append(ln)
        elif ln.box[0] >= split:
            right.append(ln)
        elif ln.gap and ln.gap[0] <= split <= ln.gap[1]:  # two column lines the detector joined
            first, second = _split_line(ln)
            left.append(first)
            right.append(second)
        else:  # a full-width line closes the column section above it
            blocks += [b for b in (left, right) if b] + [[ln]]
            left, right = [], []
    return blocks + [b for b in (left, right) if b]


def _split_line(ln: OcrLine) -> tuple[OcrLine, OcrLine]:
    """Cut a line joined across the gutter at its blank band: the text at the space nearest to the
    band's share of the box width (glyph widths vary, so this can miss by a short word)."""
    x0, y0, x1, y1 = ln.box
    gap0, gap1 = ln.gap or (x0, x0)
    at = round(len(ln.text) * (gap0 + gap1 - 2 * x0) / (2 * (x1 - x0)))
    spaces = [k for k, c in enumerate(ln.text) if c == " "]
    cut = min(spaces, key=lambda k: abs(k - at)) if spaces else at
    return (
        OcrLine(ln.text[:cut].strip(), ln.score, (x0, y0, gap0, y1)),
        OcrLine(ln.text[cut:].strip(), ln.score, (gap1, y0, x1, y1)),
    )


def lines_to_text(lines: list[OcrLine], width: float) -> str:
    """Page text from recognised lines: reading order, rows joined, then the same ``clean_text`` as
    extracted text (line-end hyphens joined, spaces normalised)."""
    return clean_text("\n".join(row for block in reading_order(lines, width) for row in _rows(block)))


# --------------------------------------------------------------------------------------------------
# One page
# --------------------------------------------------------------------------------------------------


def ocr_page(
    pdf_path: Path, page_no: int, *, dpi: int = DEFAULT_DPI, threads: int | None = None, rec_batch: int = 6
) -> OcrPage:
    """OCR one page (1-based) in this process: no time limit (use ``OcrWorker`` for that).

    Never raises for a bad page or file: the reason goes to ``OcrPage.error``. Raises
    ``OcrUnavailable`` when the engine or its bundled models are missing (a setup problem that every
    page would hit).
    """
    start = time.perf_counter()
    try:
        img = render_page(Path(pdf_path), page_no, dpi)
    except Exception as e:  # noqa: BLE001 - damaged page or file: one line, not a traceback
        return OcrPage(
            page=page_no, dpi=dpi, seconds=time.perf_counter() - start, error=f"cannot render: {e}"
        )
    try:
        lines = recognise(img, engine(threads, rec_batch))
    except OcrUnavailable:
        raise
    except Exception as e:  # noqa: BLE001 - an engine error on one page must not stop the others
        msg = " ".join(str(e).split())[:120] or type(e).__name__
        return OcrPage(page=page_no, dpi=dpi, seconds=time.perf_counter() - start, error=f"OCR failed: {msg}")
    text = lines_to_text(lines, float(img.shape[1]))
    chars = sum(len(ln.text) for ln in lines)
    confidence = sum(ln.score * len(ln.text) for ln in lines) / chars if chars else 0.0
    return OcrPage(
        page=page_no,
        text=text,
        confidence=round(confidence, 4),
        seconds=time.perf_counter() - start,
        dpi=dpi,
        lines=len(lines),
    )


# --------------------------------------------------------------------------------------------------
# Time-limited worker
# --------------------------------------------------------------------------------------------------


def _worker_ocr(path: str, page_no: int, dpi: int, threads: int | None) -> OcrPage:
    return ocr_page(Path(path), page_no, dpi=dpi, threads=threads)


@dataclass
class OcrWorker:
    """OCR in a child process with a limit per page: a page that hangs or crashes costs only itself.

    The engine (about a second to load) stays loaded in the child between pages. On a timeout or a
    crash the child is killed and the next page starts a new one. Use as a context manager, or call
    ``close()``. ``OcrUnavailable`` from the child is raised again here (every page would fail).
    """

    dpi: int = DEFAULT_DPI
    timeout_s: float = DEFAULT_PAGE_TIMEOUT_S
    threads: int | None = None
    _pool: cf.ProcessPoolExecutor | None = field(default=None, repr=False)

    def __enter__(self) -> OcrWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def ocr(self, pdf_path: Path, page_no: int) -> OcrPage:
        """OCR one page (1-based) within ``timeout_s``; never raises except ``OcrUnavailable``."""
        start = time.perf_counter()
        future = self._executor().submit(_worker_ocr, str(pdf_path), page_no, self.dpi, self.threads)
        try:
            return future.result(timeout=self.timeout_s)
        except cf.TimeoutError:
            self.kill()
            error = f"OCR took over {self.timeout_s:g} s"
        except cf.process.BrokenProcessPool:
            self.kill()
            error = "the page crashed the OCR engine"
        except OcrUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - e.g. an unpicklable error from the child
            error = f"OCR failed: {type(e).__name__}"
        return OcrPage(page=page_no, dpi=self.dpi, seconds=time.perf_counter() - start, error=error)

    def kill(self) -> None:
        """Stop the child now (a hung page), without waiting for it."""
        if self._pool is not None:
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    proc.kill()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
