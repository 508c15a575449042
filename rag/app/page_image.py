"""One PDF page rendered as an image with a passage's quote highlighted (the Sources panel's "open page").

pypdfium2 renders the page and finds the quote in the page's text layer (whitespace and case
ignored); the rectangles of those characters are painted translucent yellow. A quote it cannot find
(OCR'd pages have no text layer) leaves the page unmarked, and `found` says so.

`PageCache` keeps the last renders by (file SHA-256, page, quote): opening the same passage again
costs a hash of the file, not a render (a page of 100k vector curves takes ~15 CPU s to draw).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

SCALE = 1.5  # 108 dpi: readable on a laptop, ~1 MB PNG per page at most
MAX_PIXELS = 3000 * 3000


@dataclass
class PageImage:
    image: object  # PIL.Image
    page: int
    pages: int
    found: bool  # the quote was found and marked


def _normalised_with_map(text: str) -> tuple[str, list[int]]:
    """Lower-cased text with runs of whitespace as one space, and each kept char's index in `text`."""
    out, index, space = [], [], False
    for i, ch in enumerate(text):
        if ch.isspace() or ch in "\ufffe\u0002":
            if not space and out:
                out.append(" ")
                index.append(i)
            space = True
            continue
        space = False
        out.append(ch.lower())
        index.append(i)
    return "".join(out), index


def find_span(page_text: str, quote: str) -> tuple[int, int] | None:
    """(first char, char count) of `quote` in `page_text`, whitespace and case ignored; hyphens at
    line ends are not special. None when it is not there."""
    hay, index = _normalised_with_map(page_text)
    needle = " ".join(quote.lower().split())
    if not needle:
        return None
    at = hay.find(needle)
    if at < 0:
        # a long quote may run onto the next page: mark the part on this one (its first 8 words)
        short = " ".join(needle.split()[:8])
        at = hay.find(short) if len(short) >= 20 else -1
        if at < 0:
            return None
        needle = short
    start, end = index[at], index[at + len(needle) - 1]
    return start, end - start + 1


def render_page(path: Path, page: int, quote: str | None) -> PageImage:
    """Page `page` (1-based) of the PDF at `path`, with `quote` highlighted. Raises ValueError for a
    page the file does not have, and pypdfium2's PdfiumError for a file it cannot open."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    pdf = pdfium.PdfDocument(str(path))
    try:
        if not 1 <= page <= len(pdf):
            raise ValueError(f"{Path(path).name} has {len(pdf)} pages, not a page {page}")
        pdf_page = pdf[page - 1]
        width, height = pdf_page.get_size()
        scale = min(SCALE, (MAX_PIXELS / max(1.0, width * height)) ** 0.5)
        image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
        found = False
        if quote:
            textpage = pdf_page.get_textpage()
            span = find_span(textpage.get_text_range(), quote)
            if span:
                overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
                draw = ImageDraw.Draw(overlay)
                for i in range(textpage.count_rects(*span)):
                    left, bottom, right, top = textpage.get_rect(i)
                    draw.rectangle([left * scale - 1, (height - top) * scale - 1,
                                    right * scale + 1, (height - bottom) * scale + 1], fill=(255, 220, 0, 110))
                image = Image.alpha_composite(image, overlay)
                found = True
        return PageImage(image.convert("RGB"), page, len(pdf), found)
    finally:
        pdf.close()


def pick_quote(passage_text: str, quote: str | None) -> str | None:
    """What to mark: the answer's quote when there is one, else the passage's first sentence."""
    if quote and quote.strip():
        return quote
    first = re.split(r"(?<=[.!?])\s", " ".join(str(passage_text).split()), maxsplit=1)[0]
    return first or None


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class PageCache:
    """The last `size` rendered pages, by (file SHA-256, page, quote); `renders` counts real renders."""

    def __init__(self, size: int = 12):
        self.size = size
        self.renders = 0
        self._images: OrderedDict[tuple, PageImage] = OrderedDict()
        self._lock = threading.Lock()

    def render(self, path: Path, page: int, quote: str | None) -> PageImage:
        key = (file_digest(path), page, " ".join((quote or "").split()))
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        image = render_page(path, page, quote)
        with self._lock:
            self.renders += 1
            self._images[key] = image
            while len(self._images) > self.size:
                self._images.popitem(last=False)
        return image
