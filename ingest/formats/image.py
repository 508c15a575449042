"""Images (PNG, JPEG, TIFF, WebP): text only by OCR (the engine is ingest/ocr.py), one section
per frame; a multi-page TIFF's frames are its pages. Sizes are checked from the header before
any pixel is decoded, so a decompression bomb is refused with that reason."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from langchain_core.documents import Document

from ingest import stats
from ingest.formats.base import LoadError, detail, doc

IMAGE_FORMATS = {"PNG", "JPEG", "MPO", "TIFF", "WEBP"}


def load(path: Path) -> list[Document]:
    """PNG, JPEG, TIFF (every frame a page), WebP: OCR each frame into one section."""
    from ingest import ocr  # on use, as in the PDF loader: ocr imports this package's base

    options = ocr.current()
    if options.mode == "off":
        raise LoadError("an image can only be read by OCR, and OCR is off (RAG_OCR=off)")
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # _frame checks sizes itself
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as exc:  # over twice Pillow's own limit
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            size = f"{int(pixels.group(1)) // 1_000_000:,} megapixels" if pixels else "too large"
            raise LoadError(f"image is {size}, over the {ocr.MAX_IMAGE_PIXELS // 1_000_000} megapixel limit — "
                            "refusing (possible decompression bomb)") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise LoadError(f"not a valid or complete image ({detail(exc)})") from exc
        with image:
            if image.format not in IMAGE_FORMATS:
                raise LoadError(f"image format {image.format} is not supported here (PNG, JPEG, TIFF, WebP)")
            frames = getattr(image, "n_frames", 1)
            docs, empty, ocr_pages, refused = [], 0, 0, None
            for frame in range(min(frames, options.max_pages)):
                refused = ocr.page_refused()
                if refused:
                    if not docs:
                        raise LoadError(f"this image can only be read by OCR: {refused}")
                    empty += min(frames, options.max_pages) - frame
                    break
                text = ocr.read_image(_frame(image, frame))
                if text.strip():
                    docs.append(doc(text, page=frame + 1 if frames > 1 else None, ocr=True))
                    ocr_pages += 1
                else:
                    empty += 1
    skipped = max(0, frames - options.max_pages)
    warning = (f"OCR stopped at RAG_OCR_MAX_PAGES={options.max_pages}: {skipped} more frames were not read"
               if skipped else None)
    if refused:
        warning = f"some frames were not read: {refused}" + (f"; {warning}" if warning else "")
    stats.report(pages=frames, ocr_pages=ocr_pages, empty_pages=empty + skipped, warning=warning)
    if not docs:
        raise LoadError(f"OCR found no text in this image ({frames} {'page' if frames == 1 else 'pages'})")
    return docs


def _frame(image, index: int):
    """Frame `index`, decoded, after refusing sizes that would exhaust memory."""
    from PIL import Image

    from ingest import ocr

    try:
        image.seek(index)
    except (EOFError, OSError, ValueError) as exc:
        raise LoadError(f"image page {index + 1} cannot be read ({detail(exc)})") from exc
    width, height = image.size
    if width * height > ocr.MAX_IMAGE_PIXELS:
        raise LoadError(f"image is {width:,} x {height:,} pixels, over the {ocr.MAX_IMAGE_PIXELS // 1_000_000} "
                        "megapixel limit — refusing (possible decompression bomb)")
    try:
        if image.format == "JPEG" and max(width, height) > ocr.MAX_SIDE:
            image.draft("RGB", (ocr.MAX_SIDE, ocr.MAX_SIDE))  # decode at reduced scale: less memory and time
        image.load()
        return image.copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise LoadError(f"truncated or corrupt image ({detail(exc)})") from exc
