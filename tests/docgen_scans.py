"""Generators of scans, photos of text, multi-page TIFFs, EPUBs and hostile images.

Text is drawn with Pillow's built-in scalable font (no system font needed), so OCR tests read
real pixels; PDFs embed those pixels as images with reportlab, so they have no text layer.
"""
from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

from docgen import _write

A4_PX = (1240, 1754)  # A4 at 150 dpi


def text_image(lines: list[str], size=A4_PX, font_size: int = 34, angle: float = 0.0, noise: int = 0,
               background: int = 255, seed: int = 0):
    """A page image: `lines` drawn top-left, a blank line in `lines` leaves a paragraph gap."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_size)
    y = 100
    for line in lines:
        if line:
            draw.text((90, y), line, fill=20, font=font)
        y += int(font_size * 1.6)
    if angle:
        image = image.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=background)
    if noise:
        rng = random.Random(seed)
        pixels = image.load()
        for _ in range(size[0] * size[1] // 50):
            x, yy = rng.randrange(size[0]), rng.randrange(size[1])
            pixels[x, yy] = max(0, min(255, pixels[x, yy] + rng.randint(-noise, noise)))
    return image


def _pdf_page_image(c, image) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader

    c.drawImage(ImageReader(image), 0, 0, width=A4[0], height=A4[1])


def make_scanned_pdf(path, pages: list[list[str]]) -> Path:
    """A PDF of page images only (a scan): no text layer at all."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    for lines in pages:
        _pdf_page_image(c, text_image(lines).convert("RGB"))
        c.showPage()
    c.save()
    return _write(path, buf.getvalue())


def make_mixed_pdf(path, pages: list[tuple[str, list[str]]]) -> Path:
    """Pages of kind "text" (a real text layer) or "scan" (an image of text) in one PDF."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    for kind, lines in pages:
        if kind == "scan":
            _pdf_page_image(c, text_image(lines).convert("RGB"))
        else:
            c.setFont("Helvetica", 11)
            for i, line in enumerate(lines):
                c.drawString(72, A4[1] - 72 - 14 * i, line)
        c.showPage()
    c.save()
    return _write(path, buf.getvalue())


def make_photo(path, lines: list[str], fmt: str = "PNG") -> Path:
    """A 'photo' of a printed note: grey paper, slightly rotated, with sensor noise."""
    image = text_image(lines, size=(1400, 700), font_size=40, angle=2.0, noise=40, background=225, seed=1)
    buf = io.BytesIO()
    image.convert("RGB").save(buf, fmt)
    return _write(path, buf.getvalue())


def make_tiff(path, pages: list[list[str]]) -> Path:
    """A multi-page TIFF (one frame per page), as a fax or document scanner writes."""
    frames = [text_image(lines, size=(1240, 900)) for lines in pages]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    return _write(path, buf.getvalue())


def make_epub(path, chapters: list[tuple[str, str]], epub3: bool = True) -> Path:
    """An EPUB whose chapters are (title, XHTML body) pairs; EPUB 3 nav or EPUB 2 NCX as table of contents."""
    manifest, spine, nav_items, ncx_points, files = [], [], [], [], {}
    for i, (title, body) in enumerate(chapters, 1):
        name = f"text/chapter{i}.xhtml"
        files[f"OEBPS/{name}"] = (
            '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
            f"<head><title>{title}</title></head><body>{body}</body></html>"
        )
        manifest.append(f'<item id="c{i}" href="{name}" media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="c{i}"/>')
        nav_items.append(f'<li><a href="{name}">{title}</a></li>')
        ncx_points.append(f'<navPoint id="p{i}" playOrder="{i}"><navLabel><text>{title}</text></navLabel>'
                          f'<content src="{name}"/></navPoint>')
    if epub3:
        files["OEBPS/nav.xhtml"] = (
            '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" '
            'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>Contents</title></head><body>'
            f'<nav epub:type="toc"><h1>Contents</h1><ol>{"".join(nav_items)}</ol></nav></body></html>'
        )
        manifest.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>')
        spine.insert(0, '<itemref idref="nav"/>')
        spine_open = "<spine>"
    else:
        files["OEBPS/toc.ncx"] = (
            '<?xml version="1.0" encoding="utf-8"?>\n<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" '
            f'version="2005-1"><navMap>{"".join(ncx_points)}</navMap></ncx>'
        )
        manifest.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
        spine_open = '<spine toc="ncx">'
    files["OEBPS/content.opf"] = (
        '<?xml version="1.0" encoding="utf-8"?>\n<package xmlns="http://www.idpf.org/2007/opf" '
        f'version="{"3.0" if epub3 else "2.0"}" unique-identifier="id"><metadata '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Test book</dc:title>'
        '<dc:identifier id="id">urn:test:1</dc:identifier></metadata>'
        f'<manifest>{"".join(manifest)}</manifest>{spine_open}{"".join(spine)}</spine></package>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")  # stored, first, as the spec asks
        zf.writestr("META-INF/container.xml",
                    '<?xml version="1.0"?><container version="1.0" '
                    'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
                    '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
                    "</rootfiles></container>")
        for name, text in files.items():
            zf.writestr(name, text, compress_type=zipfile.ZIP_DEFLATED)
    return _write(path, buf.getvalue())


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_png_header_only(path, width: int = 30_000, height: int = 30_000) -> Path:
    """A PNG that claims width x height pixels (30,000 x 30,000 = 900 MP) with a tiny body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    body = zlib.compress(b"\x00" * (width + 1))  # one row; the rest is missing
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")
    return _write(path, data)


def make_png_bomb(path, side: int = 12_000) -> Path:
    """A real decompression bomb: a complete side x side greyscale PNG of zeros, a few hundred KB
    on disk, 144 MB once decoded. Written row by row, so making it takes no such memory."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")
    return _write(path, data)


def make_truncated_image(path, fmt: str = "PNG", keep: float = 0.5) -> Path:
    """A real image of text, cut off part-way (an interrupted download)."""
    buf = io.BytesIO()
    text_image(["This image was cut short."], size=(800, 400)).save(buf, fmt)
    data = buf.getvalue()
    return _write(path, data[: int(len(data) * keep)])
