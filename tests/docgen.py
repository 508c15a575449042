"""Generators of real test documents.

Each function writes a file with the real library for its format (reportlab, pypdf,
python-docx, python-pptx, openpyxl, zipfile, csv) and returns its Path, so tests
exercise the real parsers on real files instead of mocks or hand-written fixtures.
"""
from __future__ import annotations

import codecs
import csv
import io
import random
import zipfile
from pathlib import Path

_BOM_FOR = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE,
            "utf-32-le": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE}


def _encode(text: str, encoding: str) -> bytes:
    """Encode; UTF-16/32 always get a BOM (Python's "utf-16"/"utf-32" add one themselves)."""
    return _BOM_FOR.get(codecs.lookup(encoding).name.replace("_", "-"), b"") + text.encode(encoding)


def _write(path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _pdf_bytes(pages: list[str]) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    width, height = A4
    for text in pages:
        c.setFont("Helvetica", 11)
        y = height - 72
        for paragraph in text.split("\n"):
            for line in simpleSplit(paragraph, "Helvetica", 11, width - 144) or [""]:
                if y < 72:
                    raise ValueError("text does not fit on one page")
                c.drawString(72, y, line)
                y -= 14
        c.showPage()
    c.save()
    return buf.getvalue()


def make_pdf(path, pages: list[str]) -> Path:
    """A PDF with one page per string; long text is wrapped, so it is all in the text layer."""
    return _write(path, _pdf_bytes(pages))


def make_encrypted_pdf(path, text: str, password: str = "secret") -> Path:
    """A one-page PDF encrypted with `password` as user password ("" = opens without one)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf_bytes([text]))))
    writer.encrypt(user_password=password, owner_password="owner-" + password, algorithm="AES-128")
    buf = io.BytesIO()
    writer.write(buf)
    return _write(path, buf.getvalue())


def make_image_only_pdf(path, n_pages: int = 2) -> Path:
    """A PDF whose pages hold only drawn shapes and a bitmap: no text layer at all."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas
    from PIL import Image

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    image = ImageReader(Image.new("RGB", (64, 32), (200, 30, 30)))
    for i in range(n_pages):
        c.rect(72, 500, 200, 100, fill=1)
        c.circle(300, 300, 50 + 10 * i)
        c.drawImage(image, 72, 100, width=128, height=64)
        c.showPage()
    c.save()
    return _write(path, buf.getvalue())


def make_truncated_pdf(path) -> Path:
    """A real multi-page PDF cut to half its bytes (no xref table, no trailer)."""
    data = _pdf_bytes([f"Page {i} of a document that will be cut in half." for i in range(1, 5)])
    return _write(path, data[: len(data) // 2])


def make_docx(path, blocks: list[tuple]) -> Path:
    """blocks: ("heading", level, text) (level 0 = Title) | ("para", text) | ("table", rows)."""
    import docx

    document = docx.Document()
    for block in blocks:
        if block[0] == "heading":
            document.add_heading(block[2], level=block[1])
        elif block[0] == "para":
            document.add_paragraph(block[1])
        elif block[0] == "table":
            rows = block[1]
            table = document.add_table(rows=len(rows), cols=max(len(r) for r in rows))
            for r, row in enumerate(rows):
                for col, value in enumerate(row):
                    table.cell(r, col).text = str(value)
        else:
            raise ValueError(f"unknown block kind {block[0]!r}")
    path = Path(path)
    document.save(str(path))
    return path


def make_pptx(path, slides: list[tuple[str, str]], notes: list[str] | None = None) -> Path:
    """One "Title and Content" slide per (title, body); notes[i] becomes slide i's speaker notes."""
    from pptx import Presentation

    prs = Presentation()
    for i, (title, body) in enumerate(slides):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes and i < len(notes) and notes[i]:
            slide.notes_slide.notes_text_frame.text = notes[i]
    path = Path(path)
    prs.save(str(path))
    return path


def make_xlsx(path, sheets: dict[str, list[list]]) -> Path:
    """A workbook with one sheet per entry; each list is a row starting at A1 (None = empty cell)."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    path = Path(path)
    wb.save(path)
    return path


def make_csv(path, rows: list[list], encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return _write(path, _encode(buf.getvalue(), encoding))


def make_html(path, html: str, encoding: str = "utf-8") -> Path:
    return _write(path, _encode(html, encoding))


def make_text(path, text: str, encoding: str = "utf-8") -> Path:
    return _write(path, _encode(text, encoding))


def make_random_bytes(path, n: int = 4096, seed: int = 0) -> Path:
    return _write(path, random.Random(seed).randbytes(n))


def make_empty(path) -> Path:
    return _write(path, b"")


def make_zip_bomb_docx(path, megabytes: int = 300) -> Path:
    """A DOCX-shaped zip with a ~300 MB member of zeros (file ~300 KB), streamed 1 MB at a time."""
    path = Path(path)
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package'
        '/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package'
        '.relationships+xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package'
        '/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument'
        '/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        "word/document.xml": '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
        'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>boom</w:t></w:r></w:p></w:body></w:document>',
    }
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in parts.items():
            zf.writestr(name, text)
        with zf.open("word/media/image1.png", "w", force_zip64=True) as member:
            for _ in range(megabytes):
                member.write(chunk)
    return path


def make_long_line(path, megabytes: float = 2.0, needle: str = "", seed: int = 0) -> Path:
    """`megabytes` MB of text on one line (no newline anywhere): space-separated 128-digit hex
    tokens, as in a dump of hashes, a short sentence every hundred tokens, and `needle` in the
    middle. A token that long is one word piece ([UNK]) to a BERT tokenizer, so the splitter faces
    the whole line while the embedder gets about 80 chunks, not the ~2,000 of 2 MB of prose."""
    rng = random.Random(seed)
    target = int(megabytes * 1024 * 1024)
    words, size, i = [], 0, 0
    middle = None
    while size < target:
        if needle and middle is None and size >= target // 2:
            word, middle = needle, i
        elif i % 100 == 0:
            word = f"Checksum block {i // 100} verified."
        else:
            word = f"{rng.getrandbits(512):0128x}"
        words.append(word)
        size += len(word) + 1
        i += 1
    return _write(path, " ".join(words).encode("utf-8"))


def make_unspaced_text(path, n_chars: int = 200_000, seed: int = 0, alphabet: str = "ACGT") -> Path:
    """`n_chars` characters with no white space at all (a sequence line, a pasted blob)."""
    rng = random.Random(seed)
    return _write(path, "".join(rng.choice(alphabet) for _ in range(n_chars)).encode("ascii"))


def make_empty_paragraph_docx(path: Path, paragraphs: int) -> Path:
    """A real DOCX (python-docx's template) whose body is `paragraphs` empty <w:p/>: ~130 KB zipped."""
    import docx

    base = path.with_suffix(".base.docx")
    docx.Document().save(str(base))
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "word/document.xml":
                text = data.decode()
                head, _, tail = text.partition("<w:body>")
                data = (head + "<w:body>" + "<w:p/>" * paragraphs + tail).encode()
            dst.writestr(item, data)
    base.unlink()
    return path
