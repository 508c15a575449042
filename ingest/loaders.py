"""Read one file into text *sections* with location metadata.

`load_file(path)` returns a list of `Document`s. Each is one section of the file:
it never crosses a page/slide or heading boundary, and paragraphs inside it are
separated by a blank line ("\\n\\n") so a splitter can prefer those boundaries.
Sections may be long; another module splits them into chunks.

`metadata` holds only these keys, each omitted when it does not apply (never None):
  page    int  1-based PDF page, PPTX slide or multi-page TIFF page number
  heading str  heading path, e.g. "Install > Linux" (PPTX: the slide title)
  sheet   str  XLSX sheet name
  row     int  spreadsheet row number as shown by a spreadsheet program (header = 1)
  ocr     bool True when the text was read by OCR (ingest/ocr.py), so it may hold misreadings
The caller adds `source` and ids. Headings live in metadata, not in the text
(except PPTX, where the title is also slide text).

Every failure raises `LoadError`, whose message is a reason without the file path.
Heavy parsers are imported inside the per-format functions.
"""
from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import logging
import math
import os
import re
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from langchain_core.documents import Document


class LoadError(Exception):
    """A file could not be turned into text; `reason` (== str(exc)) says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_MB = 1024 * 1024
_ZIP_MAX_TOTAL = 200 * _MB
_ZIP_MAX_RATIO = 200
_ZIP_RATIO_MIN_SIZE = 10 * _MB
_BOMS = [(b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32-le"),
         (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")]


#: Work bounds per file: paragraphs + table rows (DOCX), shapes (PPTX), rows (XLSX, CSV), and
#: seconds of parsing. A 130 KB DOCX of 700,000 empty paragraphs stays under the zip-bomb limits;
#: these bounds make such a file fail in about a second with a reason, instead of parsing for minutes.
MAX_ELEMENTS = 200_000
MAX_SECONDS = 60.0


# ---------------------------------------------------------------- helpers

class _Budget:
    """Counts the elements one file's parser visits; raises LoadError past MAX_ELEMENTS or MAX_SECONDS."""

    def __init__(self, what: str, limit: int | None = None, seconds: float | None = None):
        self.what, self.count = what, 0
        self.limit = MAX_ELEMENTS if limit is None else limit
        self.deadline = time.monotonic() + (MAX_SECONDS if seconds is None else seconds)

    def tick(self, n: int = 1) -> None:
        self.count += n
        if self.count > self.limit:
            raise LoadError(f"more than {self.limit:,} {self.what} — refusing (the limit per file)")
        if self.count % 512 == 0:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise LoadError(f"parsing took longer than {MAX_SECONDS:g} s — refusing (the limit per file)")


def _doc(text: str, **meta) -> Document:
    return Document(page_content=text, metadata={k: v for k, v in meta.items() if v not in (None, "")})


def _squash(text: str) -> str:
    return " ".join(text.split())


def _detail(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    msg = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return msg if len(msg) <= 160 else msg[:157] + "..."


class _Sections:
    """Collects paragraphs under a heading stack; a new heading closes the section."""

    def __init__(self):
        self.docs: list[Document] = []
        self.stack: list[tuple[int, str]] = []
        self.paras: list[str] = []

    def heading(self, level: int, text: str) -> None:
        self.flush()
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, _squash(text)))

    def add(self, text: str) -> None:
        if text.strip():
            self.paras.append(text.strip())

    def flush(self) -> None:
        if self.paras:
            path = " > ".join(t for _, t in self.stack if t)
            self.docs.append(_doc("\n\n".join(self.paras), heading=path))
        self.paras = []

    def finish(self) -> list[Document]:
        self.flush()
        return self.docs


def decode_text(data: bytes) -> str:
    """Bytes -> str: BOM, else strict UTF-8, else cp1252, else latin-1. Rejects binary."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise LoadError(f"text has a {codec} byte-order mark but is not valid {codec}") from exc
            break
    else:
        for codec in ("utf-8", "cp1252", "latin-1"):
            try:
                text = data.decode(codec)
                break
            except UnicodeDecodeError:
                continue
    text = text.lstrip("\ufeff")
    sample = text[:65536]
    bad = sum(1 for c in sample if not c.isprintable() and c not in "\n\r\t\f\v")
    if "\x00" in text or (sample and bad / len(sample) > 0.3):
        raise LoadError("binary data, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_zip(path: Path, kind: str) -> None:
    """Refuse non-zips and zip bombs before an Office parser unpacks anything."""
    with open(path, "rb") as fh:
        if fh.read(8) == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            raise LoadError(f"not a valid {kind} (OLE2 file: password-protected, or legacy .doc/.xls/.ppt)")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise LoadError(f"not a valid {kind} (not a zip archive: {_detail(exc)})") from exc
    total = sum(i.file_size for i in infos)
    ratio_bomb = any(i.file_size > _ZIP_RATIO_MIN_SIZE and i.file_size > _ZIP_MAX_RATIO * max(i.compress_size, 1)
                     for i in infos)
    if total > _ZIP_MAX_TOTAL or ratio_bomb:
        raise LoadError(f"{kind} expands to {total // _MB} MB when unzipped — refusing (possible zip bomb)")


# ---------------------------------------------------------------- formats

@contextlib.contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(old)


def _load_pdf(path: Path) -> list[Document]:
    from pypdf import PdfReader

    with open(path, "rb") as fh:
        if b"%PDF-" not in fh.read(1024):
            raise LoadError("not a valid PDF (no %PDF- header)")
    with _quiet("pypdf"):
        try:
            reader = PdfReader(path)
            if reader.is_encrypted and not reader.decrypt(""):
                raise LoadError("encrypted PDF (password required)")
            pages = [_pdf_lines(page) for page in reader.pages]
            outline = _pdf_outline(reader)
        except LoadError:
            raise
        except Exception as exc:  # pypdf raises many types for broken files
            raise LoadError(f"not a valid PDF ({_detail(exc)})") from exc
    if not pages:
        raise LoadError("PDF has no pages")
    from ingest import ocr  # pages without a usable text layer are read by OCR (RAG_OCR)

    layer = ["\n".join(line.text for line in lines).replace("\x00", "").strip() for lines in pages]
    texts, by_ocr = ocr.complete_pdf_pages(path, layer)
    for i in by_ocr:  # OCR text has no font information: plain lines (numbered headings still count)
        pages[i] = [_PdfLine(line) for line in texts[i].split("\n") if line.strip()]
    if not any(t.strip() for t in texts):
        raise LoadError(ocr.no_text_reason(len(texts)))
    return _pdf_sections(pages, outline, by_ocr)


@dataclass
class _PdfLine:
    text: str
    size: float = 0.0  # the largest effective font size on the line, in points
    bold: bool = False  # every visible character of the line is in a bold font


_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
#: "7.31 Why does the lamp flicker?", "2.4 Installation", "A.3 Limits": a dotted section number
#: and a capitalised title that is not a sentence ending in a full stop; a single number ("7. ",
#: "7 ") only before a question, as numbered list items are not headings.
_NUMBERED_HEADING = re.compile(
    r"^((?:\d{1,3}|[A-Z])(?:\.\d{1,3})+\.?|\d{1,3}\.?(?=[ \t].*\?$))[ \t]+([A-Z\u00C0-\u024F\"'(].{1,118})$"
)


def _pdf_lines(page) -> list[_PdfLine]:
    """The page's text lines (as pypdf extracts them), each with its font size and weight, from
    pypdf's text visitor: the visited pieces concatenate to the extracted text."""
    pieces: list[tuple[str, float, bool]] = []

    def visit(text, cm, tm, font, font_size):
        scale = math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3])
        name = str((font or {}).get("/BaseFont", "")) if hasattr(font, "get") else ""
        pieces.append((text, float(font_size or 0) * (scale or 1.0), bool(_BOLD_FONT.search(name))))

    page.extract_text(visitor_text=visit)
    lines, current = [], _PdfLine("", 0.0, True)
    for text, size, bold in pieces:
        for i, part in enumerate(text.replace("\x00", "").split("\n")):
            if i:
                lines.append(current)
                current = _PdfLine("", 0.0, True)
            if part.strip():
                current.size = max(current.size, size)
                current.bold = current.bold and bold
            current.text += part
    lines.append(current)
    return [line for line in lines if line.text.strip()]


def _pdf_outline(reader) -> dict[int, list[tuple[int, str]]]:
    """Outline (bookmark) entries by 0-based page: [(depth, title)], in outline order."""
    found: dict[int, list[tuple[int, str]]] = {}

    def walk(items, depth):
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:
                continue
            title = _squash(str(getattr(item, "title", "") or ""))
            if title and page is not None and page >= 0:
                found.setdefault(page, []).append((depth, title))

    try:
        walk(reader.outline, 1)
    except Exception:  # a broken outline is no reason to refuse the text
        return {}
    return found


def _pdf_sections(pages: list[list[_PdfLine]], outline: dict[int, list[tuple[int, str]]],
                  by_ocr: set[int] = frozenset()) -> list[Document]:
    """Lines -> sections under a heading path that runs across pages; a section never crosses a
    page. Headings: the outline's titles where there is an outline, else lines set larger than
    the body text (or in bold where the body is not); numbered headings ("7.31 Why…?") in both."""
    sizes: dict[float, int] = {}
    bold_chars = chars = 0
    for line in (line for lines in pages for line in lines):
        n = len(line.text.strip())
        sizes[round(line.size, 1)] = sizes.get(round(line.size, 1), 0) + n
        chars += n
        bold_chars += n if line.bold else 0
    body = max(sizes, key=sizes.get) if sizes else 0.0
    body_bold = bold_chars > chars / 2
    larger = sorted({s for s in sizes if body and s >= body * 1.15}, reverse=True)

    def font_level(line: _PdfLine) -> int | None:
        if not _heading_shaped(line.text):
            return None
        if round(line.size, 1) in larger:
            return 1 + larger.index(round(line.size, 1))
        if line.bold and not body_bold and body and line.size >= body * 0.95:
            return 1 + len(larger)
        return None

    docs: list[Document] = []
    stack: list[tuple[int, str]] = []

    def push(level: int, title: str) -> None:
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))

    for number, lines in enumerate(pages, 1):
        pending = list(outline.get(number - 1, []))
        if pending:  # titles not found as a line of their page start it
            keys = {_match_key(line.text) for line in lines}
            for depth, title in [p for p in pending if _match_key(p[1]) not in keys]:
                push(depth, title)
            pending = [p for p in pending if _match_key(p[1]) in keys]
        paragraph: list[str] = []

        def flush():
            text = "\n".join(paragraph).strip()
            if text:
                docs.append(_doc(text, page=number, heading=" > ".join(t for _, t in stack),
                                 ocr=(number - 1) in by_ocr or None))
            paragraph.clear()

        for line in lines:
            text = _squash(line.text)
            key = _match_key(text)
            numbered = _NUMBERED_HEADING.match(text) if _heading_shaped(text) else None
            level = None
            if pending and key == _match_key(pending[0][1]):
                level = pending.pop(0)[0]
            elif not outline:
                level = font_level(line)
            if level is None and numbered:
                level = 100 + len(re.findall(r"\d+|[A-Z]", numbered.group(1)))  # under outline/font headings
            if level is None:
                paragraph.append(line.text.strip())
                continue
            flush()
            push(level, text)
        flush()
    return docs


def _heading_shaped(text: str) -> bool:
    text = text.strip()
    return 2 <= len(text) <= 120 and any(c.isalpha() for c in text) and not text.endswith((".", ",", ";", ":"))


def _match_key(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


_DOCX_HEADING = re.compile(r"heading\s*(\d)", re.IGNORECASE)
_W_T = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}t"  # a run's text element


def _load_docx(path: Path) -> list[Document]:
    _check_zip(path, "DOCX")
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except Exception as exc:
        raise LoadError(f"not a valid DOCX ({_detail(exc)})") from exc
    # Style names looked up once: `paragraph.style` searches the styles part on every call, which
    # took 150+ s for a file of 700,000 empty paragraphs.
    from docx.enum.style import WD_STYLE_TYPE

    styles = {s.style_id: s.name or "" for s in document.styles}
    default = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    default_style = (default.name if default is not None else "") or ""
    budget = _Budget("paragraphs and table rows")
    out = _Sections()
    for block in document.iter_inner_content():  # paragraphs and tables in body order
        budget.tick()
        if isinstance(block, Table):
            for row in _table_rows(block, budget):
                out.add(row)
            continue
        if next(block._p.iter(_W_T), None) is None:
            continue  # no text run: nothing to index (and `block.text`'s XPath is the costly part)
        style_id = block._p.style
        style = styles.get(style_id, default_style) if style_id else default_style
        m = _DOCX_HEADING.match(style)
        if (m or style == "Title") and block.text.strip():
            out.heading(int(m.group(1)) if m else 0, block.text)
        else:
            out.add(block.text)
    return out.finish()


def _table_rows(table, budget: _Budget) -> list[str]:
    rows = []
    for row in table.rows:
        budget.tick()
        seen, cells = set(), []
        for cell in row.cells:  # merged cells repeat the same <w:tc>; keep it once
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(_squash(cell.text))
        rows.append(" | ".join(c for c in cells if c))
    return rows


def _load_pptx(path: Path) -> list[Document]:
    _check_zip(path, "PPTX")
    from pptx import Presentation

    try:
        prs = Presentation(str(path))
        slides = list(prs.slides)
    except Exception as exc:
        raise LoadError(f"not a valid PPTX ({_detail(exc)})") from exc
    docs, budget = [], _Budget("slides and shapes")
    for number, slide in enumerate(slides, 1):
        budget.tick()
        parts = [t for shape in slide.shapes for t in _shape_texts(shape, budget)]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            parts.append(slide.notes_slide.notes_text_frame.text)
        title = slide.shapes.title
        text = "\n\n".join(p.strip() for p in parts if p.strip()).replace("\x0b", "\n")
        docs.append(_doc(text, page=number, heading=_squash(title.text) if title is not None else None))
    return docs


def _shape_texts(shape, budget: _Budget) -> list[str]:
    budget.tick()
    if hasattr(shape, "shapes"):  # group shape
        return [t for child in shape.shapes for t in _shape_texts(child, budget)]
    if getattr(shape, "has_text_frame", False):
        return [shape.text_frame.text]
    if getattr(shape, "has_table", False):
        rows = [" | ".join(c for c in (_squash(cell.text) for cell in row.cells) if c) for row in shape.table.rows]
        return ["\n".join(r for r in rows if r)]
    return []


def _cell_str(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return _squash(str(value))


def _rows_to_docs(rows, sheet: str | None = None, budget: _Budget | None = None) -> list[Document]:
    """(row number, values) pairs -> one "Header: value | ..." section per data row."""
    header, docs = None, []
    budget = budget or _Budget("rows")
    for number, values in rows:
        budget.tick()
        cells = [_cell_str(v) for v in values]
        if not any(cells):
            continue
        if header is None:
            header = cells
            continue
        parts = [f"{header[i] if i < len(header) and header[i] else f'Column {i + 1}'}: {v}"
                 for i, v in enumerate(cells) if v]
        docs.append(_doc(" | ".join(parts), sheet=sheet, row=number))
    return docs


def _load_xlsx(path: Path) -> list[Document]:
    _check_zip(path, "XLSX")
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise LoadError(f"not a valid XLSX ({_detail(exc)})") from exc
    docs, budget = [], _Budget("rows")
    try:
        for ws in wb.worksheets:
            ws.reset_dimensions()  # stored dimensions are often wrong; read every row
            docs += _rows_to_docs(enumerate(ws.iter_rows(min_row=1, values_only=True), 1), ws.title, budget)
    except LoadError:
        raise
    except Exception as exc:
        raise LoadError(f"not a valid XLSX ({_detail(exc)})") from exc
    finally:
        wb.close()
    if not docs:
        raise LoadError("no data rows in any sheet (a header row alone is not indexed)")
    return docs


def _load_csv(path: Path) -> list[Document]:
    text = decode_text(path.read_bytes())
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        docs = _rows_to_docs(enumerate(csv.reader(io.StringIO(text), dialect), 1))
    except csv.Error as exc:
        raise LoadError(f"not a valid CSV ({_detail(exc)})") from exc
    if not docs:
        raise LoadError("no data rows (a header row alone is not indexed)")
    return docs


_HTML_DROP = ["script", "style", "noscript", "template", "svg", "iframe", "form", "nav", "header", "footer", "aside"]
_HTML_BLOCK = {"address", "article", "blockquote", "body", "caption", "dd", "details", "div", "dl", "dt",
               "fieldset", "figcaption", "figure", "hr", "li", "main", "ol", "p", "section", "summary",
               "table", "tbody", "tfoot", "thead", "ul"}


#: A start tag: "<" and a letter, also in UTF-16 (either byte order puts a NUL between them).
_START_TAG = re.compile(rb"<\x00?[A-Za-z]")


def count_elements(data: bytes, budget: _Budget) -> None:
    """Charge the budget with the document's elements, counted by their start tags before any
    parsing: 2,000,000 empty <p> (16 MB) took 74 s and 2.3 GB to parse; now it is refused in
    well under a second. The walk after parsing then only watches the clock."""
    budget.tick(len(_START_TAG.findall(data)))


def _load_html(path: Path) -> list[Document]:
    from bs4 import BeautifulSoup

    data = path.read_bytes()
    if b"\x00" in data[:4096] and not any(data.startswith(bom) for bom, _ in _BOMS):
        raise LoadError("binary data, not text")
    budget = _Budget("HTML elements")
    count_elements(data, budget)
    soup = BeautifulSoup(data, "html.parser")  # bytes: bs4 honours BOMs and <meta charset>
    roles = soup.find_all(attrs={"role": ["navigation", "banner", "contentinfo"]})
    for tag in [*soup.find_all(["head", *_HTML_DROP]), *roles]:
        if tag.name == "header" and tag.find_parent(["main", "article"]):
            continue  # an article's own header usually holds its title
        tag.decompose()
    roots = [t for t in soup.find_all("main") if not t.find_parent("main")]
    roots = roots or [t for t in soup.find_all("article") if not t.find_parent("article")]
    out, buf = _Sections(), []
    for root in roots or [soup]:
        _html_walk(root, out, buf, budget)
        _html_flush(out, buf)
    return out.finish()


def _html_flush(out: _Sections, buf: list[str]) -> None:
    out.add(_squash("".join(buf)))
    buf.clear()


def _html_walk(node, out: _Sections, buf: list[str], budget: _Budget) -> None:
    """Sections from an element tree; `budget` was charged with the elements (count_elements):
    the walk watches its clock."""
    from bs4 import NavigableString, Tag
    from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

    for i, child in enumerate(node.children):
        if i % 512 == 511:
            budget.check_time()
        if isinstance(child, NavigableString):
            if not isinstance(child, (Comment, Declaration, Doctype, ProcessingInstruction)):
                buf.append(str(child))
        elif not isinstance(child, Tag):
            continue
        elif re.fullmatch(r"h[1-6]", child.name):
            _html_flush(out, buf)
            out.heading(int(child.name[1]), child.get_text(" "))
        elif child.name == "tr":
            _html_flush(out, buf)
            cells = [_squash(c.get_text(" ")) for c in child.find_all(["td", "th"], recursive=False)]
            out.add(" | ".join(c for c in cells if c))
        elif child.name == "pre":
            _html_flush(out, buf)
            out.add(child.get_text().strip("\n"))
        elif child.name == "br":
            buf.append("\n")
        elif child.name in _HTML_BLOCK:
            _html_flush(out, buf)
            budget.check_time()
            _html_walk(child, out, buf, budget)
            _html_flush(out, buf)
        else:
            _html_walk(child, out, buf, budget)


_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MD_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _load_markdown(path: Path) -> list[Document]:
    lines = decode_text(path.read_bytes()).split("\n")
    if lines and lines[0].strip() == "---":  # YAML front matter
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() in ("---", "...")), None)
        if end is not None:
            lines = lines[end + 1:]
    out, buf, fence = _Sections(), [], None

    def end_paragraph():
        out.add("\n".join(buf))
        buf.clear()

    for line in lines:
        if fence:
            buf.append(line)
            if re.match(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", line):
                fence = None
                end_paragraph()
        elif m := _MD_FENCE.match(line):
            end_paragraph()
            fence = m.group(1)
            buf.append(line)
        elif m := _MD_ATX.match(line):
            end_paragraph()
            out.heading(len(m.group(1)), re.sub(r"(^|[ \t]+)#+$", "", m.group(2) or ""))
        elif (m := _MD_SETEXT.match(line)) and buf and not re.match(r"^ {0,3}([-*+>]|\d+[.)])[ \t]", buf[0]):
            # Setext: the paragraph above an underline of = (level 1) or - (level 2) is a heading.
            out.heading(1 if m.group(1)[0] == "=" else 2, " ".join(b.strip() for b in buf))
            buf.clear()
        elif line.strip():
            buf.append(line)
        else:
            end_paragraph()
    end_paragraph()
    return out.finish()


def _load_text(path: Path) -> list[Document]:
    text = decode_text(path.read_bytes())
    return [_doc(text.strip())] if text.strip() else []


def _load_epub(path: Path) -> list[Document]:
    from ingest.epub import load_epub

    return load_epub(path)


def _load_image(path: Path) -> list[Document]:
    from ingest.ocr import load_image

    return load_image(path)


@dataclass(frozen=True)
class Loader:
    load: Callable[[Path], list[Document]]
    kind: str  # what a person calls the format, in messages


#: The one list of what can be ingested: extension (lowercase, with the dot) -> loader.
LOADERS: dict[str, Loader] = {
    ".pdf": Loader(_load_pdf, "PDF"),
    ".docx": Loader(_load_docx, "Word (DOCX)"),
    ".pptx": Loader(_load_pptx, "PowerPoint (PPTX)"),
    ".xlsx": Loader(_load_xlsx, "Excel (XLSX)"),
    ".csv": Loader(_load_csv, "CSV"),
    ".html": Loader(_load_html, "HTML"),
    ".htm": Loader(_load_html, "HTML"),
    ".md": Loader(_load_markdown, "Markdown"),
    ".markdown": Loader(_load_markdown, "Markdown"),
    ".txt": Loader(_load_text, "plain text"),
    ".text": Loader(_load_text, "plain text"),
    ".log": Loader(_load_text, "plain text"),
    ".rst": Loader(_load_text, "plain text"),
    ".epub": Loader(_load_epub, "EPUB"),
    ".png": Loader(_load_image, "PNG image"),
    ".jpg": Loader(_load_image, "JPEG image"),
    ".jpeg": Loader(_load_image, "JPEG image"),
    ".tif": Loader(_load_image, "TIFF image"),
    ".tiff": Loader(_load_image, "TIFF image"),
    ".webp": Loader(_load_image, "WebP image"),
}


def check_file(path: Path, max_mb: float | None = None) -> None:
    """Refuse, before any parsing, what cannot be ingested: missing, not a file, unsupported
    type, empty, over `max_mb` (RAG_MAX_FILE_MB), unreadable. Raises LoadError."""
    path = Path(path)
    if not path.exists():
        raise LoadError("file not found (no such file or directory)")
    if not path.is_file():
        raise LoadError("not a regular file")
    ext = path.suffix.lower()
    if ext not in LOADERS:
        supported = ", ".join(sorted(LOADERS))
        raise LoadError(f"unsupported file type '{ext or '(no extension)'}' (supported: {supported})")
    size = path.stat().st_size
    if size == 0:
        raise LoadError("empty file (0 bytes)")
    if max_mb is not None and size > max_mb * 2**20:
        raise LoadError(f"file is {size / 2**20:.1f} MB, over the {max_mb:g} MB limit (RAG_MAX_FILE_MB)")
    if not os.access(path, os.R_OK):
        raise LoadError("permission denied")


def load_file(path: Path) -> list[Document]:
    """Load one file into sections. Raises LoadError (never anything else) on failure."""
    path = Path(path)
    loader = LOADERS.get(path.suffix.lower())
    fmt = loader.kind if loader else "this"
    cause: BaseException | None = None
    try:
        check_file(path)
        docs = loader.load(path)
    except LoadError as exc:
        reason, cause = exc.reason, exc.__cause__
    except OSError as exc:
        reason, cause = f"cannot read file ({exc.strerror or type(exc).__name__})", exc
    except MemoryError as exc:
        reason, cause = "file too large to load into memory", exc
    except RecursionError as exc:
        reason, cause = f"{fmt} structure is too deeply nested", exc
    except Exception as exc:  # a parser bug or an unforeseen malformation
        reason, cause = f"could not parse {fmt} file ({_detail(exc)})", exc
    else:
        docs = [d for d in docs if d.page_content.strip()]
        if docs:
            return docs
        reason = f"no text found in this {fmt} file"
    raise LoadError(reason.replace(str(path.resolve()), "file").replace(str(path), "file")) from cause
