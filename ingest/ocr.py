"""Offline OCR for PDF pages without a usable text layer, and for images.

RapidOCR 3 runs PP-OCR text detection and recognition models that ship inside its wheel, on
onnxruntime: nothing is downloaded. The engine is built on first use (about a second) and shared
by every caller in the process; calls go through one lock, since the engine keeps per-call
settings on itself and two cores gain nothing from running two OCRs at once.

Bounds, so one hostile file cannot take the machine:
- images over MAX_IMAGE_PIXELS are refused from their header, before any pixel is decoded
  (a 30,000 x 30,000 PNG, a decompression bomb); truncated images fail with that reason (the
  image loader, ingest/formats/image.py, applies these bounds and calls `read_image`);
- every page is rendered or scaled to at most MAX_SIDE pixels on its longest side (RapidOCR
  scales to that anyway), so memory and time per page are bounded whatever the page size says;
- at most `max_pages` pages of one file are OCR'd (RAG_OCR_MAX_PAGES); the rest are reported;
- a caller may set a meter (`metered(meter)`): asked before each page (`allow_page()` returns None
  or the reason it is refused) and told each page's OCR seconds (`spent(seconds)`). The web app's
  public mode meters each visitor's OCR pages and seconds per hour (rag/quota.OcrMeter); pages
  past it are reported as not read, like pages past RAG_OCR_MAX_PAGES.

`OcrOptions` reach the loaders through a context variable set by the caller (`using(options)`),
so loaders keep their one-argument signature; outside it the defaults apply.
"""

from __future__ import annotations

import contextlib
import threading
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ingest import stats
from ingest.formats.base import LoadError, detail

OCR_MODES = ("auto", "off", "force")
MAX_SIDE = 2000  # px: RapidOCR's own max_side_len; rendering more only costs memory
RENDER_DPI = 200  # PDF pages: 200 dpi, unless that makes the longest side exceed MAX_SIDE
MAX_IMAGE_PIXELS = 64_000_000  # a 600-dpi A4 scan is 35 MP, a phone photo 12-48 MP
MIN_TEXT_CHARS = 16  # a PDF page with fewer letters and digits than this has no usable text layer
#: Files whose text depends on the OCR settings.
OCR_EXTENSIONS = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class OcrOptions:
    mode: str = "auto"  # auto: pages without usable text; force: every page; off: never
    max_pages: int = 50  # pages OCR'd per file at most

    def __post_init__(self):
        if self.mode not in OCR_MODES:
            raise ValueError(f"OCR mode must be one of {', '.join(OCR_MODES)}, not {self.mode!r}")

    def fingerprint(self) -> str:
        """Part of a PDF's or image's version hash: changing the setting re-reads those files."""
        return f"ocr={self.mode},{self.max_pages}"


_options: ContextVar[OcrOptions] = ContextVar("ocr_options", default=OcrOptions())


@contextlib.contextmanager
def using(options: OcrOptions) -> Iterator[OcrOptions]:
    token = _options.set(options)
    try:
        yield options
    finally:
        _options.reset(token)


def current() -> OcrOptions:
    return _options.get()


_meter: ContextVar[object | None] = ContextVar("ocr_meter", default=None)


@contextlib.contextmanager
def metered(meter) -> Iterator[object]:
    """OCR in this block asks `meter.allow_page()` before each page and reports `meter.spent(s)`."""
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def page_refused() -> str | None:
    """Why the next page may not be OCR'd (the meter's reason), or None."""
    meter = _meter.get()
    return meter.allow_page() if meter is not None else None


# ---------------------------------------------------------------- the engine

_engine = None
_engine_lock = threading.Lock()
_pdfium_lock = threading.Lock()  # PDFium is not thread-safe


#: Text detection runs on the page scaled so its longest side is DET_MAX_SIDE (RapidOCR's default
#: scales the *shortest* side to at least 736, i.e. detects on the whole 2000 px page). See
#: bench/ocr_speed.py for the measurements behind this value.
DET_MAX_SIDE = 1280


#: RapidOCR's per-line 0/180 degree classifier turns some long lines of English upside down and
#: reads them as junk (word recall 0.87 and 0.78 on two 11 pt pages with it, 1.00 and 0.998
#: without). Off; a page that reads badly is tried once turned 180 degrees instead (UPSIDE_DOWN_SCORE).
USE_LINE_CLASSIFIER = False
UPSIDE_DOWN_SCORE = 0.8  # mean recognition confidence below which the page is also read turned over


def make_engine(det_max_side: int | None = DET_MAX_SIDE, line_classifier: bool = USE_LINE_CLASSIFIER):
    """A RapidOCR engine on the models in its wheel (no download). det_max_side None: its default."""
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:  # pragma: no cover - a broken install
        raise LoadError(f"OCR is not available ({detail(exc)}); pip install rapidocr onnxruntime") from exc
    params = {"Global.log_level": "error", "Global.max_side_len": MAX_SIDE, "Global.use_cls": line_classifier}
    if det_max_side:
        params.update({"Det.limit_type": "max", "Det.limit_side_len": det_max_side})
    return RapidOCR(params=params)


def _get_engine():
    global _engine
    if _engine is None:
        _engine = make_engine()
    return _engine


def read_image(image, engine=None) -> str:
    """The text of a PIL image: lines in reading order, a blank line between paragraphs."""
    import time

    image = _bounded(image)
    with _engine_lock:
        started = time.perf_counter()  # after the lock: a visitor pays for their own pages only
        engine = engine or _get_engine()
        result = engine(image)
        if result.txts and _confidence(result) < UPSIDE_DOWN_SCORE:  # a page scanned upside down?
            turned = engine(image.rotate(180))
            if turned.txts and _confidence(turned) > _confidence(result):
                result = turned
        meter = _meter.get()
        if meter is not None:
            meter.spent(time.perf_counter() - started)
    if not result.txts:
        return ""
    return _layout(result.boxes, result.txts)


def _confidence(result) -> float:
    """Mean recognition score, weighted by text length."""
    total = sum(len(t) for t in result.txts)
    return sum(s * len(t) for s, t in zip(result.scores, result.txts)) / max(1, total)


def _bounded(image):
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGBA").convert("RGB") if "A" in image.getbands() or image.mode == "P" else image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def _layout(boxes, txts) -> str:
    """Group recognised boxes into lines (overlapping vertically) and lines into paragraphs
    (a vertical gap over 1.2 line heights), so the chunker can split where the page does.
    Boxes without a letter or digit are dropped: OCR reads rules and filled shapes as "_" or "|"."""
    items = []
    for box, text in zip(boxes, txts):
        text = " ".join(str(text).split())
        if any(c.isalnum() for c in text):  # a lone "_" or "|" is a ruled line or a shape, not text
            ys, xs = [p[1] for p in box], [p[0] for p in box]
            items.append((min(ys), max(ys), min(xs), text))
    items.sort(key=lambda it: ((it[0] + it[1]) / 2, it[2]))
    lines: list[list] = []  # [top, bottom, [(x, text)]]
    for top, bottom, x, text in items:
        if lines:
            line = lines[-1]
            overlap = min(bottom, line[1]) - max(top, line[0])
            if overlap > 0.5 * min(bottom - top, line[1] - line[0]):
                line[0], line[1] = min(top, line[0]), max(bottom, line[1])
                line[2].append((x, text))
                continue
        lines.append([top, bottom, [(x, text)]])
    out: list[str] = []
    previous = None
    for top, bottom, parts in lines:
        text = " ".join(t for _, t in sorted(parts))
        if previous is not None:
            height = max(1.0, min(bottom - top, previous[1] - previous[0]))
            out.append("\n\n" if top - previous[1] > 1.2 * height else "\n")
        out.append(text)
        previous = (top, bottom)
    return "".join(out)


# ---------------------------------------------------------------- PDF pages

def usable_text(text: str) -> bool:
    """Does a page's text layer hold real text? Not when it is (nearly) empty, and not when it is
    junk: a font without a Unicode map gives private-use or replacement characters, or symbols."""
    visible = [c for c in text if not c.isspace()]
    good = sum(c.isalnum() and not 0xE000 <= ord(c) <= 0xF8FF for c in visible)
    return good >= MIN_TEXT_CHARS and good >= 0.5 * len(visible)


def complete_pdf_pages(path: Path, texts: list[str]) -> tuple[list[str], set[int]]:
    """Fill in, by OCR, the pages (0-based index into `texts`) whose text layer is not usable
    (every page with RAG_OCR=force). Returns the texts and the 0-based indexes read by OCR, and
    reports the file's page counts to `ingest.stats`."""
    options = current()
    texts = list(texts)
    wanted = [i for i, t in enumerate(texts) if options.mode == "force" or not usable_text(t)]
    if options.mode == "off":
        wanted = []
    todo, skipped = wanted[: options.max_pages], wanted[options.max_pages:]
    by_ocr: set[int] = set()
    refused, done = None, 0
    for index, image in render_pdf_pages(path, todo):
        refused = page_refused()
        if refused:
            image.close()
            break
        text = read_image(image).strip()
        image.close()
        done += 1
        if text:
            texts[index] = text
            by_ocr.add(index)
    empty = sum(1 for t in texts if not t.strip())
    warning = None
    if refused:
        warning = f"{len(wanted) - done} pages without a usable text layer were not read: {refused}"
    elif skipped:
        warning = (f"OCR stopped at RAG_OCR_MAX_PAGES={options.max_pages}: {len(skipped)} more pages "
                   "without a usable text layer were not read")
    stats.report(pages=len(texts), ocr_pages=len(by_ocr), empty_pages=empty,
                 text_pages=sum(1 for i, t in enumerate(texts) if t.strip() and i not in by_ocr), warning=warning)
    return texts, by_ocr


def no_text_reason(pages: int) -> str:
    """Why a PDF gave no text at all, for LoadError."""
    options = current()
    if options.mode == "off":
        return f"no extractable text — scanned? ({pages} pages with no text layer; OCR is off: set RAG_OCR=auto)"
    refused = getattr(_meter.get(), "refused", None)
    if refused:
        return f"no extractable text — scanned? ({pages} pages with no text layer, not read by OCR: {refused})"
    return f"no extractable text — scanned? ({pages} pages with no text layer, and OCR found no text on them)"


def render_pdf_pages(path: Path, indexes: list[int], dpi: int = RENDER_DPI) -> Iterator[tuple[int, object]]:
    """Render the given pages (0-based) to PIL images at `dpi`, longest side <= MAX_SIDE."""
    if not indexes:
        return
    import pypdfium2 as pdfium

    try:
        with _pdfium_lock:
            pdf = pdfium.PdfDocument(str(path))
    except Exception as exc:  # PdfiumError, or a password it cannot open
        raise LoadError(f"cannot render the PDF for OCR ({detail(exc)})") from exc
    try:
        for index in indexes:
            with _pdfium_lock:
                if index >= len(pdf):
                    return
                page = pdf[index]
                try:
                    width, height = page.get_size()
                    scale = min(dpi / 72, MAX_SIDE / max(width, height, 1))
                    bitmap = page.render(scale=scale)
                    image = bitmap.to_pil().copy()  # owns its pixels: the bitmap buffer is freed next
                    bitmap.close()
                except Exception as exc:
                    raise LoadError(f"cannot render page {index + 1} for OCR ({detail(exc)})") from exc
                finally:
                    page.close()
            yield index, image
    finally:
        with _pdfium_lock:
            pdf.close()
