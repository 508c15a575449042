"""PDF (pypdf) into sections: one page at a time, under a heading path that runs across pages.

Headings come from the outline (bookmarks) where there is one, else from lines set larger than
the body text (or in bold where the body is not); numbered headings ("7.31 Why…?") count in both.
Pages without a usable text layer are read by OCR (ingest/ocr.py, RAG_OCR).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from langchain_core.documents import Document

from ingest.formats.base import LoadError, detail, doc, quiet, squash


def load(path: Path) -> list[Document]:
    from pypdf import PdfReader

    with open(path, "rb") as fh:
        if b"%PDF-" not in fh.read(1024):
            raise LoadError("not a valid PDF (no %PDF- header)")
    with quiet("pypdf"):
        try:
            reader = PdfReader(path)
            if reader.is_encrypted and not reader.decrypt(""):
                raise LoadError("encrypted PDF (password required)")
            pages = [_lines(page) for page in reader.pages]
            outline = _outline(reader)
        except LoadError:
            raise
        except Exception as exc:  # pypdf raises many types for broken files
            raise LoadError(f"not a valid PDF ({detail(exc)})") from exc
    if not pages:
        raise LoadError("PDF has no pages")
    from ingest import ocr  # pages without a usable text layer are read by OCR (RAG_OCR)

    layer = ["\n".join(line.text for line in lines).replace("\x00", "").strip() for lines in pages]
    texts, by_ocr = ocr.complete_pdf_pages(path, layer)
    for i in by_ocr:  # OCR text has no font information: plain lines (numbered headings still count)
        pages[i] = [_Line(line) for line in texts[i].split("\n") if line.strip()]
    if not any(t.strip() for t in texts):
        raise LoadError(ocr.no_text_reason(len(texts)))
    return _sections(pages, outline, by_ocr)


@dataclass
class _Line:
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


def _lines(page) -> list[_Line]:
    """The page's text lines (as pypdf extracts them), each with its font size and weight, from
    pypdf's text visitor: the visited pieces concatenate to the extracted text."""
    pieces: list[tuple[str, float, bool]] = []

    def visit(text, cm, tm, font, font_size):
        scale = math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3])
        name = str((font or {}).get("/BaseFont", "")) if hasattr(font, "get") else ""
        pieces.append((text, float(font_size or 0) * (scale or 1.0), bool(_BOLD_FONT.search(name))))

    page.extract_text(visitor_text=visit)
    lines, current = [], _Line("", 0.0, True)
    for text, size, bold in pieces:
        for i, part in enumerate(text.replace("\x00", "").split("\n")):
            if i:
                lines.append(current)
                current = _Line("", 0.0, True)
            if part.strip():
                current.size = max(current.size, size)
                current.bold = current.bold and bold
            current.text += part
    lines.append(current)
    return [line for line in lines if line.text.strip()]


def _outline(reader) -> dict[int, list[tuple[int, str]]]:
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
            title = squash(str(getattr(item, "title", "") or ""))
            if title and page is not None and page >= 0:
                found.setdefault(page, []).append((depth, title))

    try:
        walk(reader.outline, 1)
    except Exception:  # a broken outline is no reason to refuse the text
        return {}
    return found


def _sections(pages: list[list[_Line]], outline: dict[int, list[tuple[int, str]]],
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

    def font_level(line: _Line) -> int | None:
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
                docs.append(doc(text, page=number, heading=" > ".join(t for _, t in stack),
                                ocr=(number - 1) in by_ocr or None))
            paragraph.clear()

        for line in lines:
            text = squash(line.text)
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
